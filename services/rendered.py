"""WADO-RS Rendered and Thumbnail endpoints (PS3.18 10.4.1.1.4, 8.3.5, 8.3.6)."""

from __future__ import annotations

from fastapi import APIRouter, Request, Response

from pacsflow.wado.rendered import RenderedResult, retrieve_rendered, retrieve_thumbnail
from services.common import ContainerDep

__all__ = ["router"]

router = APIRouter()


async def _rendered(
    request: Request,
    container: ContainerDep,
    study: str,
    series: str | None = None,
    sop: str | None = None,
    frames: str | None = None,
    *,
    thumbnail: bool = False,
) -> Response:
    use_case = retrieve_thumbnail if thumbnail else retrieve_rendered
    result: RenderedResult = await use_case(
        container.index,
        container.objects,
        container.settings.site,
        request.headers.get("accept", ""),
        list(request.query_params.multi_items()),
        study,
        series,
        sop,
        frames,
    )
    return Response(result.body, media_type=result.content_type)


@router.get("/studies/{study}/rendered")
async def retrieve_rendered_study(
    study: str, request: Request, container: ContainerDep
) -> Response:
    """Rendered Study: one part per instance."""
    return await _rendered(request, container, study)


@router.get("/studies/{study}/series/{series}/rendered")
async def retrieve_rendered_series(
    study: str, series: str, request: Request, container: ContainerDep
) -> Response:
    """Rendered Series: one part per instance."""
    return await _rendered(request, container, study, series)


@router.get("/studies/{study}/series/{series}/instances/{instance}/rendered")
async def retrieve_rendered_instance(
    study: str, series: str, instance: str, request: Request, container: ContainerDep
) -> Response:
    """Rendered Instance: an image (every frame for image/gif), an SR, a PDF."""
    return await _rendered(request, container, study, series, instance)


@router.get("/studies/{study}/series/{series}/instances/{instance}/frames/{frames}/rendered")
async def retrieve_rendered_frames(
    study: str, series: str, instance: str, frames: str, request: Request, container: ContainerDep
) -> Response:
    """Rendered Frames: one image, or an animated GIF of the frames listed."""
    return await _rendered(request, container, study, series, instance, frames)


@router.get("/studies/{study}/thumbnail")
async def retrieve_study_thumbnail(
    study: str, request: Request, container: ContainerDep
) -> Response:
    """Study Thumbnail (PS3.18 8.3.6)."""
    return await _rendered(request, container, study, thumbnail=True)


@router.get("/studies/{study}/series/{series}/thumbnail")
async def retrieve_series_thumbnail(
    study: str, series: str, request: Request, container: ContainerDep
) -> Response:
    """Series Thumbnail (PS3.18 8.3.6)."""
    return await _rendered(request, container, study, series, thumbnail=True)


@router.get("/studies/{study}/series/{series}/instances/{instance}/thumbnail")
async def retrieve_instance_thumbnail(
    study: str, series: str, instance: str, request: Request, container: ContainerDep
) -> Response:
    """Instance Thumbnail (PS3.18 8.3.6)."""
    return await _rendered(request, container, study, series, instance, thumbnail=True)


@router.get("/studies/{study}/series/{series}/instances/{instance}/frames/{frames}/thumbnail")
async def retrieve_frame_thumbnail(
    study: str, series: str, instance: str, frames: str, request: Request, container: ContainerDep
) -> Response:
    """Frame Thumbnail (PS3.18 8.3.6)."""
    return await _rendered(request, container, study, series, instance, frames, thumbnail=True)
