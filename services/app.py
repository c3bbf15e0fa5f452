"""The FastAPI application: the DICOMweb services of one process under /dicom-web."""

from __future__ import annotations

from collections.abc import Sequence

from fastapi import FastAPI
from fastapi.responses import JSONResponse

from pacsflow import __version__
from pacsflow.container import Container
from services import qido, rendered, stow, wado, wado_uri
from services.common import DICOMWEB_ROOT
from services.errors import install_error_handlers

__all__ = ["create_app"]


ROUTERS = {
    "stow": [stow.router],
    "qido": [qido.router],
    "wado": [wado.router, rendered.router, wado_uri.router],
}


def create_app(container: Container, roles: Sequence[str] = tuple(ROUTERS)) -> FastAPI:
    """Build the app around a started ``container`` serving the DICOMweb ``roles`` given."""
    app = FastAPI(title="pacsflow", version=__version__, docs_url=None, redoc_url=None)
    app.state.container = container
    install_error_handlers(app)
    for role in roles:
        for router in ROUTERS[role]:
            app.include_router(router, prefix=DICOMWEB_ROOT)

    @app.get("/health")
    async def health() -> JSONResponse:
        """Liveness: the process answers."""
        return JSONResponse({"status": "ok"})

    return app
