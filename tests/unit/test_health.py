"""Liveness and readiness: ``/health`` and ``/ready`` of the HTTP roles and of the Faust worker.

``/ready`` answers 200 only while the backends a role calls answer (``Container.check``), 503
with a reason per backend otherwise; the Kubernetes chart probes both (docs/kubernetes.md).
"""

from __future__ import annotations

import os
import time
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import httpx
import pytest

from pacsflow.config import Settings
from pacsflow.container import ROLE_BACKENDS, Container, build_container
from services.app import create_app
from tests.conftest import free_port, pipeline_env, start_server, start_worker, stop_process


@pytest.fixture
async def container(tmp_path: Path) -> AsyncIterator[Container]:
    """A started container on the embedded backends."""
    created = build_container(Settings(data_dir=tmp_path))
    await created.start(listen_for_outcomes=False)
    try:
        yield created
    finally:
        await created.close()


async def _get(container: Container, roles: tuple[str, ...], path: str) -> httpx.Response:
    transport = httpx.ASGITransport(app=create_app(container, roles))
    async with httpx.AsyncClient(transport=transport, base_url="http://pacsflow") as client:
        return await client.get(path)


def test_every_role_has_its_backends() -> None:
    assert ROLE_BACKENDS == {
        "stow": ("bus", "objects"),
        "qido": ("index",),
        "wado": ("index", "objects"),
        "worker": ("bus", "objects", "index"),
        "ups": ("bus", "workitems"),
        "commitment": ("bus", "objects", "index", "commitments"),
    }


@pytest.mark.parametrize(
    "roles",
    [("stow",), ("qido",), ("wado",), ("ups",), ("commitment",), ("stow", "qido", "wado", "ups")],
)
async def test_ready_while_the_backends_answer(
    container: Container, roles: tuple[str, ...]
) -> None:
    response = await _get(container, roles, "/ready")
    assert response.status_code == 200
    assert response.json() == {"status": "ready", "roles": list(roles)}
    assert (await _get(container, roles, "/health")).json() == {"status": "ok"}


async def test_not_ready_while_a_backend_is_gone(container: Container) -> None:
    await container.index.close()

    qido = await _get(container, ("qido",), "/ready")
    stow = await _get(container, ("stow",), "/ready")
    health = await _get(container, ("qido",), "/health")

    assert qido.status_code == 503
    assert qido.headers["retry-after"] == "5"
    body = qido.json()
    assert body["status"] == "unavailable" and body["roles"] == ["qido"]
    assert list(body["reasons"]) == ["index"] and "closed" in body["reasons"]["index"]
    assert stow.status_code == 200  # STOW does not call the index
    assert health.status_code == 200  # liveness asks no backend


async def test_every_backend_a_role_uses_is_named(container: Container) -> None:
    await container.index.close()
    await container.bus.close()
    response = await _get(container, ("stow", "qido", "wado"), "/ready")
    assert response.status_code == 503
    assert sorted(response.json()["reasons"]) == ["bus", "index"]


async def test_the_worklist_is_not_ready_without_its_workitem_store(container: Container) -> None:
    assert container.workitems is not None
    await container.workitems.close()
    ups = await _get(container, ("ups",), "/ready")
    qido = await _get(container, ("qido",), "/ready")
    assert ups.status_code == 503 and list(ups.json()["reasons"]) == ["workitems"]
    assert "closed" in ups.json()["reasons"]["workitems"]
    assert qido.status_code == 200  # the other roles do not call it


def _wait_for(check: Callable[[], bool], what: str, log: Path, seconds: float = 180) -> None:
    deadline = time.monotonic() + seconds
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError(f"{what} within {seconds} s: {log.read_text()[-3000:]}")
        time.sleep(0.2)


def _status(url: str) -> tuple[int, dict[str, Any]]:
    try:
        response = httpx.get(url, timeout=10)
    except httpx.TransportError:
        return 0, {}
    return response.status_code, response.json()


def test_qido_process_is_not_ready_once_its_index_is_deleted(
    tmp_path: Path, kafka_bootstrap: str, s3_endpoint: str, es_url: str
) -> None:
    """``pacsflow qido`` on Kafka, S3 and Elasticsearch protocols: /ready follows the index."""
    name = f"t{os.urandom(4).hex()}"
    env = pipeline_env(kafka_bootstrap, s3_endpoint, es_url, name)
    server = start_server(tmp_path / "data", env, command="qido")
    try:
        ready = f"http://127.0.0.1:{server.port}/ready"
        assert _status(ready) == (200, {"status": "ready", "roles": ["qido"]})
        assert httpx.delete(f"{es_url}/{name}-studies", timeout=10).status_code == 200
        status, body = _status(ready)
        assert status == 503
        assert list(body["reasons"]) == ["index"]
        assert httpx.get(f"http://127.0.0.1:{server.port}/health").status_code == 200
    finally:
        server.stop()


def test_worker_health_port_serves_health_and_ready(
    tmp_path: Path, kafka_bootstrap: str, s3_endpoint: str, es_url: str
) -> None:
    """``pacsflow worker`` with PACSFLOW_WORKER_HEALTH_PORT: Faust's web server answers."""
    name = f"t{os.urandom(4).hex()}"
    port = free_port()
    env = pipeline_env(
        kafka_bootstrap, s3_endpoint, es_url, name, worker_health_port=str(port), host="127.0.0.1"
    )
    log = tmp_path / "worker.log"
    worker = start_worker(tmp_path / "worker", log, env)
    try:
        base = f"http://127.0.0.1:{port}"
        _wait_for(lambda: _status(f"{base}/health")[0] == 200, "no /health", log)
        assert _status(f"{base}/health")[1] == {"status": "ok"}
        _wait_for(lambda: _status(f"{base}/ready")[0] == 200, "not ready", log)
        assert _status(f"{base}/ready")[1] == {"status": "ready", "roles": ["worker"]}
        for page in ("/router/", "/table/"):  # Faust's own pages stay off
            assert httpx.get(base + page, timeout=10).status_code == 404

        assert httpx.delete(f"{es_url}/{name}-instances", timeout=10).status_code == 200

        status, body = _status(f"{base}/ready")
        assert status == 503 and list(body["reasons"]) == ["index"]
        assert _status(f"{base}/health")[0] == 200
    finally:
        stop_process(worker)
