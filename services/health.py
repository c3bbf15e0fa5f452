"""Health endpoints of an HTTP process: ``/health`` (liveness) and ``/ready`` (readiness).

``/health`` answers while the process serves; ``/ready`` answers 200 only while every backend
the process's roles call (``pacsflow.container.ROLE_BACKENDS``) answers a cheap request, and
503 with the reason of each backend that does not. Kubernetes probes both (docs/kubernetes.md).
"""

from __future__ import annotations

from collections.abc import Sequence

from fastapi import Request
from fastapi.responses import JSONResponse

from services.common import ContainerDep
from services.errors import RETRY_AFTER
from services.head import Router

__all__ = ["router"]

router = Router()


@router.get("/health")
async def health() -> JSONResponse:
    """Liveness: the process answers (no backend is asked)."""
    return JSONResponse({"status": "ok"})


@router.get("/ready")
async def ready(request: Request, container: ContainerDep) -> JSONResponse:
    """Readiness: 200 when the role's backends answer; 503 with a reason per backend otherwise."""
    roles: Sequence[str] = request.app.state.roles
    reasons = await container.check(roles)
    if reasons:
        return JSONResponse(
            {"status": "unavailable", "roles": list(roles), "reasons": reasons},
            status_code=503,
            headers=RETRY_AFTER,
        )
    return JSONResponse({"status": "ready", "roles": list(roles)})
