"""The FastAPI application: the DICOMweb services of one process under /dicom-web."""

from __future__ import annotations

from collections.abc import Sequence

from fastapi import FastAPI

from pacsflow import __version__
from pacsflow.container import Container
from services import commitment, health, qido, rendered, stow, ups, wado, wado_uri, wado_ws
from services.common import DICOMWEB_ROOT
from services.errors import install_error_handlers

__all__ = ["create_app"]


ROUTERS = {
    "stow": [stow.router],
    "qido": [qido.router],
    "wado": [wado.router, rendered.router, wado_uri.router, wado_ws.router],
    "ups": [ups.router],
    "commitment": [commitment.router],
}


def create_app(container: Container, roles: Sequence[str] = tuple(ROUTERS)) -> FastAPI:
    """Build the app around a started ``container`` serving the DICOMweb ``roles`` given.

    ``/health`` and ``/ready`` (``services.health``) sit beside ``/dicom-web``.
    """
    app = FastAPI(title="pacsflow", version=__version__, docs_url=None, redoc_url=None)
    app.state.container = container
    app.state.roles = tuple(roles)
    install_error_handlers(app)
    app.include_router(health.router)
    for role in roles:
        for router in ROUTERS[role]:
            app.include_router(router, prefix=DICOMWEB_ROOT)
    return app
