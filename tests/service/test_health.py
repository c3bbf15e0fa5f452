"""Liveness and readiness: ``/health`` and ``/ready`` of the HTTP roles and of the Faust worker.

``/ready`` answers 200 only while the backends a role calls answer (``Container.check``), 503
with a reason per backend otherwise; the Kubernetes chart probes both (docs/kubernetes.md).
The processes (``pacsflow qido``, the Faust worker) are probed in tests/e2e/test_roles.py.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest

from pacsflow.config import Settings
from pacsflow.container import ROLE_BACKENDS, Container, build_container
from services.app import create_app


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
        "console": (),  # its status page asks every backend (docs/console.md)
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


async def test_not_ready_until_every_http_worker_of_the_process_has_started(
    tmp_path: Path,
) -> None:
    """A supervisor's HTTP workers each wait for the backends; readiness counts their marks."""
    started = tmp_path / "started"
    started.mkdir()
    settings = Settings(data_dir=tmp_path / "data", http_workers=3, started_dir=started)
    created = build_container(settings)
    await created.start(listen_for_outcomes=False)
    try:
        (started / "0").touch()
        one = await _get(created, ("qido",), "/ready")
        (started / "2").touch()
        two = await _get(created, ("qido",), "/ready")
        (started / "1").touch()
        three = await _get(created, ("qido",), "/ready")
    finally:
        await created.close()

    assert one.status_code == 503 and one.headers["retry-after"]
    assert one.json()["reasons"] == {
        "workers": "2 of 3 HTTP workers still waiting for their backends"
    }
    assert two.json()["reasons"] == {
        "workers": "1 of 3 HTTP workers still waiting for their backends"
    }
    assert three.status_code == 200 and three.json()["status"] == "ready"
