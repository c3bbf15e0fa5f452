"""WADO-URI endpoint (PS3.18 9): ``GET /dicom-web/wado?requestType=WADO&...``."""

from __future__ import annotations

from fastapi import APIRouter, Request, Response

from pacsflow.auth import Right
from services.auth import Audited, guard
from services.retrieval import RetrievalDep, WadoDep, respond

__all__ = ["router"]

router = APIRouter(dependencies=[guard(Right.READ, Audited.TRANSFER)])


@router.get("/wado")
async def wado_uri(retrieval: RetrievalDep, wado: WadoDep, request: Request) -> Response:
    """Retrieve an object or a rendering of it by its UIDs (PS3.18 9.1)."""
    return respond(await wado.retrieve_wado_uri(retrieval), request)
