"""WADO-URI endpoint (PS3.18 9): ``GET /dicom-web/wado?requestType=WADO&...``."""

from __future__ import annotations

from fastapi import APIRouter, Request, Response

from pacsflow.uri.retrieve import retrieve_wado_uri
from services.common import ContainerDep

__all__ = ["router"]

router = APIRouter()


@router.get("/wado")
async def wado_uri(request: Request, container: ContainerDep) -> Response:
    """Retrieve an object or a rendering of it by its UIDs (PS3.18 9.1)."""
    result = await retrieve_wado_uri(
        container.index,
        container.objects,
        container.settings.site,
        container.settings.anonymize_secret or container.settings.site,
        list(request.query_params.multi_items()),
    )
    return Response(result.body, media_type=result.content_type)
