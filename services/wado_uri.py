"""WADO-URI endpoint (PS3.18 9): ``GET /dicom-web/wado?requestType=WADO&...``."""

from __future__ import annotations

from fastapi import Request, Response

from pacsflow.auth import Right
from services.auth import Audited, guard
from services.head import Router
from services.openapi import RENDERED_TYPES, WADO_URI, parameters, responses
from services.retrieval import RetrievalDep, WadoDep, respond

__all__ = ["router"]

router = Router(dependencies=[guard(Right.READ, Audited.TRANSFER)])


@router.get(
    "/wado",
    responses=responses(("application/dicom", *RENDERED_TYPES)),
    openapi_extra=parameters(*WADO_URI),
)
async def wado_uri(retrieval: RetrievalDep, wado: WadoDep, request: Request) -> Response:
    """Retrieve an object or a rendering of it by its UIDs (PS3.18 9.1)."""
    return respond(await wado.retrieve_wado_uri(retrieval), request)
