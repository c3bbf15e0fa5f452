"""Small-CT ingest of two pacsflow sources beside Orthanc, interleaved (A/B on a shared machine).

``python -m bench.ingest_ab --rounds 2 --concurrency 4,8 before=DIR after=DIR orthanc``
stores the small-CT workload (``bench.ingest_data``) on each target in turn, each on a fresh
data directory, the order reversed every other turn, under new UIDs for every round and
concurrency; it prints instances/s, the cores the server kept busy, its CPU per instance and
the machine's load average of each turn, then each target's instances/s per concurrency.
A target ``NAME=DIR?PACSFLOW_X=1&PACSFLOW_Y=2`` serves DIR with those settings.
``python -m bench --scenarios ingest`` measures one source; on a machine that other work
shares, only turns taken side by side compare two sources.
"""

from __future__ import annotations

import sys
from pathlib import Path

if not __package__:  # run as a script: make ``bench`` importable
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import argparse
import os
import shutil
import tempfile

from bench import disk, ingest_data, stow
from bench.servers import Server, start_orthanc, start_pacsflow

__all__ = ["main"]

SEED = 50_000


def _start(source: Path | None, work: Path, settings: dict[str, str]) -> Server:
    if source is None:
        return start_orthanc(work)
    return start_pacsflow(work / "data", source=source, settings=settings)


def main(argv: list[str] | None = None) -> int:
    """Run the turns; print one line per turn and a summary."""
    parser = argparse.ArgumentParser(prog="python -m bench.ingest_ab", description=__doc__)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--concurrency", default="4,8")
    parser.add_argument("targets", nargs="+", help="NAME=SOURCE_DIR of pacsflow, or orthanc")
    args = parser.parse_args(argv)
    targets: list[tuple[str, Path | None, dict[str, str]]] = []
    for target in args.targets:
        name, _, value = target.partition("=")
        source, _, query = value.partition("?")
        settings = dict(pair.split("=", 1) for pair in query.split("&") if pair)
        targets.append((name, Path(source) if source else None, settings))
    workload = ingest_data.WORKLOADS["small-ct"]
    rates: dict[tuple[str, int], list[float]] = {}
    for number in range(args.rounds):
        for concurrency in (int(c) for c in args.concurrency.split(",")):
            work = ingest_data.uploads(workload, SEED + 100 * number + concurrency)
            turn = targets if (number + concurrency) % 2 == 0 else targets[::-1]
            for name, source, settings in turn:
                directory = Path(tempfile.mkdtemp(prefix="pacsflow-ab-"))
                server = _start(source, directory, settings)
                try:
                    before = disk.cpu_seconds([server.process.pid])
                    run = stow.stow_throughput(server.dicomweb_root, work, concurrency)
                    cores = (disk.cpu_seconds([server.process.pid]) - before) / run.seconds
                finally:
                    server.stop()
                    shutil.rmtree(directory, ignore_errors=True)
                rate = run.instances_per_s
                print(
                    f"round {number} c={concurrency} {name:10} {rate:7.1f} instances/s, "
                    f"{cores:.2f} cores, {1000 * cores / rate if rate else 0:.2f} ms CPU an "
                    f"instance, load {os.getloadavg()[0]:.1f} {run.error or ''}",
                    flush=True,
                )
                rates.setdefault((name, concurrency), []).append(rate)
    for (name, concurrency), found in sorted(rates.items()):
        print(f"{name} c={concurrency}: " + ", ".join(f"{r:.0f}" for r in found))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
