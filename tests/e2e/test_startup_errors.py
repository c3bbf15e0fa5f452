"""A bad backend URL stops ``pacsflow <role>`` at start with one line; an unreachable backend
stops ``pacsflow serve`` so, while a pipeline role waits for it, not ready, saying why.

Every role, as a real subprocess: exit status 2 for a configuration the settings refuse, 1 for
``serve`` when a backend does not answer (nothing listens on port 1 of the loopback); one line
on stderr that names the variable; no traceback. A pipeline role (issue 23) answers
``/health`` 200 and ``/ready`` 503 naming the backend and its variable instead, and becomes
ready once the backend answers.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import pytest

from tests.support.servers import free_port, run_osmem, stop_process

ROLES = ["serve", "stow", "qido", "wado", "worker"]
# serve refuses an unreachable backend (a pipeline role waits for it: WAITED_FOR below)
UNREACHABLE = ("PACSFLOW_INDEX_URL", "http://127.0.0.1:1")


def _run(role: str, data_dir: Path, **env: str) -> subprocess.CompletedProcess[str]:
    clean = {k: v for k, v in os.environ.items() if not k.startswith("PACSFLOW_")}
    return subprocess.run(
        [sys.executable, "-m", "pacsflow", role, "--data-dir", str(data_dir)],
        env={**clean, "PACSFLOW_PORT": "1", **env},  # never listens: it stops before
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_an_unreachable_backend_stops_serve_with_one_line_and_status_1(tmp_path: Path) -> None:
    role = "serve"
    name, url = UNREACHABLE
    done = _run(role, tmp_path, **{name: url})
    assert done.returncode == 1, done.stderr
    assert done.stdout == ""
    [line] = done.stderr.splitlines()
    assert line.startswith(f"pacsflow {role}: cannot start: ") and f"({name})" in line
    assert "secret" not in line


@pytest.mark.parametrize("role", ROLES)
def test_a_bad_backend_url_is_one_line_and_status_2(role: str, tmp_path: Path) -> None:
    done = _run(role, tmp_path, PACSFLOW_BUS_URL="amqp://broker:5672")
    assert done.returncode == 2, done.stderr
    [line] = done.stderr.splitlines()
    assert line.startswith(f"pacsflow {role}: invalid configuration: PACSFLOW_BUS_URL")
    assert "kafka://" in line  # says what is accepted


@contextmanager
def _waiting_role(role: str, data_dir: Path, **env: str) -> Iterator[tuple[str, Path]]:
    """``pacsflow <role>`` as a child on a free port (a worker: its health port); yields its
    base URL and log once ``/health`` answers (bounded), and stops it (by its pid) after."""
    port = free_port()
    clean = {k: v for k, v in os.environ.items() if not k.startswith("PACSFLOW_")}
    variable = "PACSFLOW_WORKER_HEALTH_PORT" if role == "worker" else "PACSFLOW_PORT"
    log = data_dir.parent / f"{role}.log"
    with log.open("wb") as out:
        process = subprocess.Popen(
            [sys.executable, "-m", "pacsflow", role, "--data-dir", str(data_dir)],
            env={**clean, variable: str(port), **env},
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            assert process.poll() is None, log.read_text()
            try:
                if httpx.get(f"{base}/health", timeout=2).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            assert time.monotonic() < deadline, log.read_text()
            time.sleep(0.2)
        yield base, log
        assert process.poll() is None, log.read_text()  # it waited: no exit, no restart loop
    finally:
        status = stop_process(process, signal.SIGTERM, timeout=30)
    assert status == 0, log.read_text()


def _once_tried(url: str) -> httpx.Response:
    """The 503 of ``url`` once the first start attempt of the process answering failed: each
    HTTP worker process waits on its own (bounded wait)."""
    deadline = time.monotonic() + 60
    while True:
        answer = httpx.get(url, timeout=5)
        assert answer.status_code == 503, answer.text
        assert answer.headers["Retry-After"]
        if "connecting to the backends" not in answer.text or time.monotonic() > deadline:
            return answer
        time.sleep(0.2)


def _reasons_once_tried(base: str) -> dict[str, str]:
    """The reasons of ``/ready`` once the first start attempt failed."""
    reasons: dict[str, str] = _once_tried(f"{base}/ready").json()["reasons"]
    return reasons


WAITED_FOR = {
    "stow": ("bus", "PACSFLOW_BUS_URL", "kafka://127.0.0.1:1"),
    "qido": ("index", "PACSFLOW_INDEX_URL", "http://127.0.0.1:1"),
    "wado": ("objects", "PACSFLOW_OBJECT_STORE_URL", "s3://key:secret@127.0.0.1:1/bucket"),
    "worker": ("bus", "PACSFLOW_BUS_URL", "kafka://127.0.0.1:1"),
}


@pytest.mark.parametrize("role", list(WAITED_FOR))
def test_a_pipeline_role_waits_not_ready_naming_the_backend(role: str, tmp_path: Path) -> None:
    backend, name, url = WAITED_FOR[role]
    with _waiting_role(role, tmp_path / "data", **{name: url}) as (base, _):
        reasons = _reasons_once_tried(base)
        assert list(reasons) == [backend]
        assert f"({name})" in reasons[backend] and "secret" not in reasons[backend]
        if role != "worker":
            refused = _once_tried(f"{base}/dicom-web/studies")
            assert f"({name})" in refused.json()["reason"]


def test_a_waiting_role_gets_ready_once_its_backend_answers(tmp_path: Path) -> None:
    port = free_port()
    index_url = f"http://127.0.0.1:{port}"
    with _waiting_role(
        "qido", tmp_path / "data", PACSFLOW_INDEX_URL=index_url, PACSFLOW_HTTP_WORKERS="2"
    ) as (base, _):
        assert list(_reasons_once_tried(base)) == ["index"]
        with run_osmem(tmp_path, port=port):
            deadline = time.monotonic() + 90
            while httpx.get(f"{base}/ready", timeout=10).status_code != 200:
                assert time.monotonic() < deadline
                time.sleep(0.5)
            # ready means every HTTP worker of the process (two here, one per core) serves:
            # each search opens a new connection, which the kernel spreads over the workers
            for _ in range(20):
                search = httpx.get(f"{base}/dicom-web/studies", timeout=10)
                assert search.status_code == 200 and search.json() == [], search.text


@pytest.mark.parametrize("role", ROLES)
def test_an_unusable_data_dir_is_one_line_and_status_1(role: str, tmp_path: Path) -> None:
    taken = tmp_path / "a-file"
    taken.write_bytes(b"")
    done = _run(role, taken, PACSFLOW_BUS_URL=f"kafka://127.0.0.1:{free_port()}")
    assert done.returncode == 1, done.stderr
    [line] = done.stderr.splitlines()
    assert line.startswith(f"pacsflow {role}: cannot start: ") and str(taken) in line
