"""Health endpoints of an HTTP process: ``/health`` (liveness) and ``/ready`` (readiness).

``/health`` answers while the process serves; ``/ready`` answers 200 only while every backend
the process's roles call (``pacsflow.container.ROLE_BACKENDS``) answers a cheap request, and
503 with the reason of each backend that does not. Kubernetes probes both (docs/kubernetes.md).
``waiting_app`` serves the same two while a pipeline process waits for its backends to answer
at start (``pacsflow.startup``): alive, not ready, every other request 503.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse

from pacsflow.config import Settings
from services.common import ContainerDep
from services.errors import RETRY_AFTER
from services.head import Router

__all__ = ["router", "waiting_app"]

router = Router()


@router.get("/health")
async def health() -> JSONResponse:
    """Liveness: the process answers (no backend is asked)."""
    return JSONResponse({"status": "ok"})


@router.get("/ready")
async def ready(request: Request, container: ContainerDep) -> JSONResponse:
    """Readiness: 200 when the role's backends answer; 503 with a reason per backend otherwise."""
    roles: Sequence[str] = request.app.state.roles
    checked = await container.check(roles)
    reasons: dict[str, str] = {str(backend): reason for backend, reason in checked.items()}
    waiting = _workers_waiting(container.settings)
    if waiting:
        reasons["workers"] = waiting
    if reasons:
        return JSONResponse(
            {"status": "unavailable", "roles": list(roles), "reasons": reasons},
            status_code=503,
            headers=RETRY_AFTER,
        )
    return JSONResponse({"status": "ready", "roles": list(roles)})


def _workers_waiting(settings: Settings) -> str:
    """Why not ready while other HTTP workers of this process's supervisor have not started
    (each marks ``started_dir``, ``pacsflow.supervisor``); "" when all have, or alone."""
    if settings.started_dir is None:
        return ""
    expected = settings.resolved_http_workers()
    try:
        started = sum(1 for _ in settings.started_dir.iterdir())
    except OSError:  # the supervisor is stopping: its directory is gone
        started = 0
    if started >= expected:
        return ""
    return f"{expected - started} of {expected} HTTP workers still waiting for their backends"


def waiting_app(roles: Sequence[str], waiting: Mapping[str, str]) -> FastAPI:
    """The app of a process waiting for its backends: ``/health`` 200, ``/ready`` 503 with
    the reason per backend waited for (``waiting``, kept current by the start), anything else
    503 with Retry-After."""
    app = FastAPI(docs_url=None, redoc_url=None, openapi_url=None)

    @app.get("/health")
    async def alive() -> JSONResponse:
        """Liveness: the process runs (it waits for its backends)."""
        return JSONResponse({"status": "ok"})

    @app.get("/ready")
    async def starting() -> JSONResponse:
        """Readiness while waiting: 503 naming each backend waited for."""
        reasons = dict(waiting) or {"backends": "connecting to the backends"}
        body = {"status": "starting", "roles": list(roles), "reasons": reasons}
        return JSONResponse(body, status_code=503, headers=RETRY_AFTER)

    @app.api_route("/{path:path}", methods=["GET", "POST", "PUT", "DELETE", "PATCH", "OPTIONS"])
    async def unavailable(path: str) -> JSONResponse:
        """Any other request: the service is not available yet."""
        reasons = "; ".join(waiting.values()) or "connecting to the backends"
        body = {"status": "starting", "reason": f"waiting for the backends: {reasons}"}
        return JSONResponse(body, status_code=503, headers=RETRY_AFTER)

    return app
