"""Shared test fixtures: the real DICOM corpus and a running ``pacsflow serve``."""

from __future__ import annotations

import csv
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

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


@dataclass
class Server:
    """A ``pacsflow serve`` child process."""

    process: subprocess.Popen[bytes]
    port: int
    data_dir: Path
    log: Path

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/dicom-web"

    def stop(self, sig: int = signal.SIGTERM) -> None:
        if self.process.poll() is None:
            self.process.send_signal(sig)
            self.process.wait(timeout=60)


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
    server = Server(process, port, data_dir, log)
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


@pytest.fixture
def server(tmp_path: Path) -> Iterator[Server]:
    """A fresh embedded archive per test."""
    srv = start_server(tmp_path / "data")
    try:
        yield srv
    finally:
        srv.stop()


@pytest.fixture(scope="module")
def server_module(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """One embedded archive shared by the tests of a module."""
    srv = start_server(tmp_path_factory.mktemp("archive") / "data")
    try:
        yield srv
    finally:
        srv.stop()
