"""WADO-RS HTTP endpoints (PS3.18 10.4); here: retrieve one instance."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import StreamingResponse

from pacsflow.wado import retrieve_instance
from services.common import ContainerDep

__all__ = ["router"]

router = APIRouter()


@router.get("/studies/{study}/series/{series}/instances/{instance}")
async def retrieve_instance_route(
    study: str, series: str, instance: str, request: Request, container: ContainerDep
) -> StreamingResponse:
    """Retrieve Instance (PS3.18 10.4.1): the stored bytes, unchanged."""
    result = await retrieve_instance(
        container.index,
        container.objects,
        container.settings.site,
        study,
        series,
        instance,
        request.headers.get("accept", ""),
    )
    return StreamingResponse(result.body, media_type=result.content_type)
