"""The FastAPI application: the DICOMweb services of one process, per site.

Every router is mounted twice: under ``/dicom-web`` (the default site) and under
``/sites/{site}/dicom-web`` (any site the process serves); ``services.common.request_site``
tells them apart. Every DICOMweb route is guarded (``services.auth``); ``create_app`` refuses
a route without a guard.
"""

from __future__ import annotations

from collections.abc import Sequence

from fastapi import FastAPI
from fastapi.dependencies.models import Dependant
from fastapi.middleware.cors import CORSMiddleware
from fastapi.routing import APIRoute, APIWebSocketRoute

from pacsflow import __version__
from pacsflow.container import Container
from services import changefeed, health, metrics, qido, rendered, stow, ups, wado, wado_uri, wado_ws
from services.auth import TokenQueryParameter, is_guarded
from services.common import DICOMWEB_ROOT, SITE_ROOT
from services.errors import install_error_handlers
from services.requests import RequestContext

__all__ = ["create_app"]


ROUTERS = {
    "stow": [stow.router],
    "qido": [qido.router, changefeed.router],
    "wado": [wado.router, rendered.router, wado_uri.router, wado_ws.router],
    "ups": [ups.router],
}
# Headers a viewer on another origin reads from DICOMweb responses (CORS, off by default).
_EXPOSED = ["Content-Location", "Location", "ETag", "Warning", "X-Total-Count", "Content-Range"]


def _guarded(dependant: Dependant) -> bool:
    return any(is_guarded(d.call) or _guarded(d) for d in dependant.dependencies)


def create_app(container: Container, roles: Sequence[str] = tuple(ROUTERS)) -> FastAPI:
    """Build the app around a started ``container`` serving the DICOMweb ``roles`` given.

    ``/health`` and ``/ready`` (``services.health``) and ``/metrics`` (``services.metrics``)
    sit beside ``/dicom-web``.
    """
    app = FastAPI(
        title="pacsflow",
        version=__version__,
        docs_url=None,
        redoc_url=None,
        # FastAPI's own spans would record query strings (a patient's name or ID):
        # services.requests makes the server span, without them (pacsflow.telemetry)
        telemetry={"tracing": False, "metrics": False, "logs": False, "operation_spans": False},
    )
    app.state.container = container
    app.state.roles = tuple(roles)
    install_error_handlers(app)
    app.include_router(health.router)
    app.include_router(metrics.router)
    for role in roles:
        for router in ROUTERS[role]:
            app.include_router(router, prefix=DICOMWEB_ROOT)
            app.include_router(router, prefix=SITE_ROOT)
    for route in app.routes:
        if not isinstance(route, APIRoute | APIWebSocketRoute):
            continue
        dicomweb = route.path.startswith((DICOMWEB_ROOT, "/sites/"))
        if dicomweb and not _guarded(route.dependant):
            raise RuntimeError(f"route {route.path} has no services.auth.guard")
    origins = container.settings.cors_origins
    if origins:
        app.add_middleware(
            CORSMiddleware,
            allow_origins=origins,
            allow_methods=["GET", "HEAD", "POST", "PUT", "DELETE", "OPTIONS"],
            allow_headers=["Authorization", "Accept", "Content-Type", "Range", "If-None-Match"],
            expose_headers=_EXPOSED,
            max_age=600,
        )
    app.add_middleware(TokenQueryParameter)
    app.add_middleware(RequestContext)  # outermost: the id covers every other middleware
    return app
