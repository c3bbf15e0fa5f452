"""QIDO-RS HTTP endpoints (PS3.18 10.6); here: GET /studies."""

from __future__ import annotations

from typing import Annotated

import orjson
from fastapi import APIRouter, Query, Request, Response

from pacsflow.qido import search_for_studies
from services.common import ContainerDep, dicomweb_root_url

__all__ = ["router"]

router = APIRouter()


@router.get("/studies")
async def search_studies(
    request: Request,
    container: ContainerDep,
    limit: Annotated[int | None, Query()] = None,
    offset: Annotated[int | None, Query()] = None,
) -> Response:
    """Search for Studies; 200 with an empty array when nothing matches (PS3.18 10.6.3)."""
    results = await search_for_studies(
        container.index,
        container.settings.site,
        dicomweb_root_url(request, container),
        limit,
        offset,
    )
    return Response(orjson.dumps(results), media_type="application/dicom+json")
