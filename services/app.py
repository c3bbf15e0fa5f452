"""The FastAPI application: the DICOMweb services of one process, per site.

Every router is mounted twice: under ``/dicom-web`` (the default site) and under
``/sites/{site}/dicom-web`` (any site the process serves); ``services.common.request_site``
tells them apart. Every DICOMweb route is guarded (``services.auth``); ``create_app`` refuses
a route without a guard.

Besides the routes of its roles (``ROUTERS``), every app answers HEAD on each GET resource
(``services.head``), Retrieve Capabilities with ``OPTIONS`` (PS3.18 8.9, ``services.capabilities``)
and serves its OpenAPI document at ``/dicom-web/openapi.json``. Both descriptions are generated
from the routes of the roles the process describes: its own, or every role behind the gateway
in front of it (``PACSFLOW_GATEWAY_ROLES``), whose routes are those of ``ROUTERS`` as well.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any, Final

from fastapi import FastAPI, Response
from fastapi.dependencies.models import Dependant
from fastapi.middleware.cors import CORSMiddleware
from fastapi.openapi.utils import get_openapi
from fastapi.routing import APIRoute, APIRouter, APIWebSocketRoute, iter_route_contexts

from pacsflow import __version__
from pacsflow.container import Container
from services import (
    capabilities,
    changefeed,
    commitment,
    console,
    delete,
    health,
    metrics,
    nonpatient,
    qido,
    rendered,
    stow,
    ups,
    viewer,
    wado,
    wado_uri,
    wado_ws,
)
from services.auth import TokenQueryParameter, is_guarded
from services.common import DICOMWEB_ROOT, SITE_ROOT
from services.errors import install_error_handlers
from services.head import HeadWithoutContent
from services.limits import RequestLimits
from services.requests import RequestContext
from services.wadl import ResourceTree

__all__ = ["OPENAPI_PATH", "ROUTERS", "create_app", "openapi_document"]

JsonDict = dict[str, Any]

ROUTERS: dict[str, list[APIRouter]] = {
    "stow": [stow.router, delete.router, nonpatient.store_router],
    "qido": [qido.router, changefeed.router, nonpatient.search_router],
    "wado": [
        wado.router,
        rendered.router,
        wado_uri.router,
        wado_ws.router,
        nonpatient.retrieve_router,
    ],
    "ups": [ups.router],
    "commitment": [commitment.router],
    "console": [],
}
# Routers outside the DICOMweb roots: the web console at / and the viewer at /viewer, served by
# the console role and, in pipeline mode, by qido (the gateway routes them there, docs/console.md).
PAGES = {"console": [console.router, viewer.router], "qido": [console.router, viewer.router]}
# Headers a viewer on another origin reads from DICOMweb responses (CORS, off by default).
_EXPOSED = ["Content-Location", "Location", "ETag", "Warning", "X-Total-Count", "Content-Range"]
OPENAPI_PATH: Final = f"{DICOMWEB_ROOT}/openapi.json"
_GREEDY: Final = re.compile(r"\{(\w+):path\}")


def _operation_id(route: APIRoute) -> str:
    """The operation id of a route: its endpoint's name (``search_for_studies``)."""
    return route.name


def _guarded(dependant: Dependant) -> bool:
    return any(is_guarded(d.call) or _guarded(d) for d in dependant.dependencies)


def _app(roles: Sequence[str], *, sites: bool) -> FastAPI:
    """The routes of ``roles``, with HEAD and OPTIONS, and nothing that needs a container;
    with ``sites``, under each site's root too."""
    app = FastAPI(
        title="pacsflow",
        version=__version__,
        description="A DICOMweb archive (DICOM PS3.18): the services of this origin server.",
        docs_url=None,
        redoc_url=None,
        openapi_url=OPENAPI_PATH,
        default_response_class=Response,
        generate_unique_id_function=_operation_id,
        # FastAPI's own spans would record query strings (a patient's name or ID):
        # services.requests makes the server span, without them (pacsflow.telemetry)
        telemetry={"tracing": False, "metrics": False, "logs": False, "operation_spans": False},
    )
    app.include_router(health.router)
    app.include_router(metrics.router)
    roots = (DICOMWEB_ROOT, SITE_ROOT) if sites else (DICOMWEB_ROOT,)
    for root in roots:
        for role in roles:
            for router in ROUTERS[role]:
                app.include_router(router, prefix=root)
        app.include_router(capabilities.router, prefix=root)
    app.add_middleware(HeadWithoutContent)
    return app


def openapi_document(app: FastAPI) -> JsonDict:
    """The OpenAPI document of ``app``'s routes, WebSocket routes described as GET upgrades."""
    document = get_openapi(
        title=app.title,
        version=app.version,
        description=app.description,
        routes=app.routes,
    )
    for route in iter_route_contexts(app.routes):
        original = route.original_route
        if isinstance(original, APIWebSocketRoute) and route.path:
            path = re.sub(r"\{(\w+)(:\w+)?\}", r"{\1}", route.path)
            names = re.findall(r"\{(\w+)\}", path)
            document.setdefault("paths", {}).setdefault(path, {})["get"] = {
                "operationId": original.name,
                "summary": original.name.replace("_", " ").capitalize(),
                "description": (original.endpoint.__doc__ or "").strip(),
                "parameters": [
                    {"name": n, "in": "path", "required": True, "schema": {"type": "string"}}
                    for n in names
                ],
                "responses": {"101": {"description": "Switching Protocols: a WebSocket"}},
            }
    return document


def create_app(container: Container, roles: Sequence[str] = tuple(ROUTERS)) -> FastAPI:
    """Build the app around a started ``container`` serving the DICOMweb ``roles`` given.

    ``/health`` and ``/ready`` (``services.health``) and ``/metrics`` (``services.metrics``)
    sit beside ``/dicom-web``.
    """
    app = _app(roles, sites=True)
    app.state.container = container
    app.state.roles = tuple(roles)
    install_error_handlers(app)
    app.state.dicomweb_routers = [router for routers in ROUTERS.values() for router in routers]
    pages = {id(r): r for role in roles for r in PAGES.get(role, ())}  # once each, in order
    for router in pages.values():
        app.include_router(router)
    for route in app.routes:
        if not isinstance(route, APIRoute | APIWebSocketRoute):
            continue
        dicomweb = route.path.startswith((DICOMWEB_ROOT, "/sites/"))
        if dicomweb and not _guarded(route.dependant):
            raise RuntimeError(f"route {route.path} has no services.auth.guard")
    # The descriptions name the default site's resources (each site's are the same).
    described = _app(container.settings.described_roles(roles), sites=False)
    document = openapi_document(described)
    app.openapi = lambda: document  # type: ignore[method-assign]
    paths = [route.path or "" for route in iter_route_contexts(described.routes)]
    greedy = {name for path in paths for name in _GREEDY.findall(path)}
    app.state.resource_tree = ResourceTree(document, DICOMWEB_ROOT, greedy)
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
    app.add_middleware(  # a body timeout answers 408 whatever the route
        RequestLimits,
        body_timeout=container.settings.http_body_timeout_seconds,
        body_min_rate=container.settings.http_body_min_bytes_per_second,
    )
    app.add_middleware(RequestContext)  # outermost: the id covers every other middleware
    return app
