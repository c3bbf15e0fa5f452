"""The FastAPI application: every DICOMweb service under /dicom-web (embedded mode)."""

from __future__ import annotations

from fastapi import FastAPI
from fastapi.responses import JSONResponse

from pacsflow import __version__
from pacsflow.container import Container
from services import qido, stow, wado
from services.common import DICOMWEB_ROOT
from services.errors import install_error_handlers

__all__ = ["create_app"]


def create_app(container: Container) -> FastAPI:
    """Build the app around a started ``container`` (tests inject their own)."""
    app = FastAPI(title="pacsflow", version=__version__, docs_url=None, redoc_url=None)
    app.state.container = container
    install_error_handlers(app)
    for module in (stow, qido, wado):
        app.include_router(module.router, prefix=DICOMWEB_ROOT)

    @app.get("/health")
    async def health() -> JSONResponse:
        """Liveness: the process answers."""
        return JSONResponse({"status": "ok"})

    return app
