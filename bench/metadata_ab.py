"""WADO-RS metadata latency of two pacsflow sources side by side, on the same stored data.

``python -m bench.metadata_ab BEFORE_DIR AFTER_DIR`` starts ``pacsflow serve`` from each source
on a fresh data directory, stores the same 600 small-CT instances (6 studies of 100) in both,
then times study metadata (100 instances) and instance metadata requests, alternating the two
servers request round by request round (12 rounds), and prints the median and 90th percentile.
"""

from __future__ import annotations

import sys
from pathlib import Path

if not __package__:  # run as a script: make ``bench`` importable
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import argparse
import shutil
import statistics
import tempfile
import time

import httpx

from bench import ingest_data, stow
from bench.servers import Server, start_pacsflow

__all__ = ["main"]

ROUNDS = 12
INSTANCES = 20  # instance metadata requests a round, per server


def _instances(client: httpx.Client, study: str) -> list[tuple[str, str]]:
    answer = client.get(f"/studies/{study}/instances")
    answer.raise_for_status()
    return [(i["0020000E"]["Value"][0], i["00080018"]["Value"][0]) for i in answer.json()]


def _timed(client: httpx.Client, path: str) -> float:
    start = time.perf_counter()
    answer = client.get(path)
    took = time.perf_counter() - start
    if answer.status_code != 200 or not answer.json():
        raise RuntimeError(f"{path}: {answer.status_code}")
    return took


def main(argv: list[str] | None = None) -> int:
    """Store, time, print one line per server and kind of request."""
    parser = argparse.ArgumentParser(prog="python -m bench.metadata_ab", description=__doc__)
    parser.add_argument("before", type=Path)
    parser.add_argument("after", type=Path)
    args = parser.parse_args(argv)
    work = ingest_data.uploads(ingest_data.WORKLOADS["small-ct"], 77_000)[:60]
    studies = sorted({upload.study_uid for upload in work})
    servers: dict[str, Server] = {}
    directories = []
    try:
        for name, source in (("before", args.before), ("after", args.after)):
            directories.append(Path(tempfile.mkdtemp(prefix="pacsflow-metadata-ab-")))
            servers[name] = start_pacsflow(directories[-1] / "data", source=source)
            stow.stow_throughput(servers[name].dicomweb_root, work, 4)
        clients = {
            n: httpx.Client(base_url=s.dicomweb_root, timeout=60) for n, s in servers.items()
        }
        found = {n: _instances(c, studies[0])[:INSTANCES] for n, c in clients.items()}
        times: dict[tuple[str, str], list[float]] = {}
        for number in range(ROUNDS):
            for name in list(clients) if number % 2 == 0 else list(clients)[::-1]:
                client = clients[name]
                for study in studies:
                    took = _timed(client, f"/studies/{study}/metadata")
                    times.setdefault(("study", name), []).append(took)
                for series, sop in found[name]:
                    path = f"/studies/{studies[0]}/series/{series}/instances/{sop}/metadata"
                    times.setdefault(("instance", name), []).append(_timed(client, path))
        for (kind, name), found_times in sorted(times.items()):
            found_times.sort()
            p90 = found_times[int(len(found_times) * 0.9)]
            median = statistics.median(found_times)
            print(
                f"{kind:8} metadata {name:6} n={len(found_times)} median {1000 * median:.2f} ms"
                f" p90 {1000 * p90:.2f} ms"
            )
    finally:
        for server in servers.values():
            server.stop()
        for directory in directories:
            shutil.rmtree(directory, ignore_errors=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
