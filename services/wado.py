"""WADO-RS HTTP endpoints (PS3.18 10.4): instances, metadata, frames, pixel data, bulk data."""

from __future__ import annotations

import gzip

from fastapi import APIRouter, Request, Response
from fastapi.responses import StreamingResponse

from pacsflow.wado.bulkdata import retrieve_bulkdata
from pacsflow.wado.frames import retrieve_frames
from pacsflow.wado.instances import retrieve_instances
from pacsflow.wado.metadata import retrieve_metadata
from services.common import ContainerDep, dicomweb_root_url

__all__ = ["router"]

router = APIRouter()

_GZIP_MIN_BYTES = 1024


async def _instances(
    request: Request,
    container: ContainerDep,
    study: str,
    series: str | None = None,
    sop: str | None = None,
) -> StreamingResponse:
    result = await retrieve_instances(
        container.index,
        container.objects,
        container.settings.site,
        request.headers.get("accept", ""),
        study,
        series,
        sop,
    )
    return StreamingResponse(result.body, media_type=result.content_type)


@router.get("/studies/{study}")
async def retrieve_study(study: str, request: Request, container: ContainerDep) -> Response:
    """Retrieve Study (PS3.18 10.4.1.1.1)."""
    return await _instances(request, container, study)


@router.get("/studies/{study}/series/{series}")
async def retrieve_series(
    study: str, series: str, request: Request, container: ContainerDep
) -> Response:
    """Retrieve Series (PS3.18 10.4.1.1.1)."""
    return await _instances(request, container, study, series)


@router.get("/studies/{study}/series/{series}/instances/{instance}")
async def retrieve_instance(
    study: str, series: str, instance: str, request: Request, container: ContainerDep
) -> Response:
    """Retrieve Instance (PS3.18 10.4.1.1.1)."""
    return await _instances(request, container, study, series, instance)


async def _metadata(
    request: Request,
    container: ContainerDep,
    study: str,
    series: str | None = None,
    sop: str | None = None,
) -> Response:
    result = await retrieve_metadata(
        container.index,
        container.objects,
        container.settings.site,
        dicomweb_root_url(request, container),
        request.headers.get("accept", ""),
        request.headers.get("if-none-match"),
        study,
        series,
        sop,
    )
    headers = {"ETag": result.etag, "Vary": "Accept, Accept-Encoding"}
    if result.body is None:
        return Response(status_code=304, headers=headers)
    body = result.body
    if len(body) >= _GZIP_MIN_BYTES and "gzip" in request.headers.get("accept-encoding", ""):
        body = gzip.compress(body, compresslevel=4)
        headers["Content-Encoding"] = "gzip"
    return Response(body, media_type=result.content_type, headers=headers)


@router.get("/studies/{study}/metadata")
async def retrieve_study_metadata(
    study: str, request: Request, container: ContainerDep
) -> Response:
    """Retrieve Study Metadata (PS3.18 10.4.1.1.2)."""
    return await _metadata(request, container, study)


@router.get("/studies/{study}/series/{series}/metadata")
async def retrieve_series_metadata(
    study: str, series: str, request: Request, container: ContainerDep
) -> Response:
    """Retrieve Series Metadata (PS3.18 10.4.1.1.2)."""
    return await _metadata(request, container, study, series)


@router.get("/studies/{study}/series/{series}/instances/{instance}/metadata")
async def retrieve_instance_metadata(
    study: str, series: str, instance: str, request: Request, container: ContainerDep
) -> Response:
    """Retrieve Instance Metadata (PS3.18 10.4.1.1.2)."""
    return await _metadata(request, container, study, series, instance)


async def _frames(
    request: Request,
    container: ContainerDep,
    study: str,
    series: str,
    sop: str,
    frames: str | None,
) -> Response:
    result = await retrieve_frames(
        container.index,
        container.objects,
        container.settings.site,
        request.headers.get("accept", ""),
        study,
        series,
        sop,
        frames,
    )
    return StreamingResponse(result.body, media_type=result.content_type)


@router.get("/studies/{study}/series/{series}/instances/{instance}/frames/{frames}")
async def retrieve_instance_frames(
    study: str, series: str, instance: str, frames: str, request: Request, container: ContainerDep
) -> Response:
    """Retrieve Frames (PS3.18 10.4.1.1.3): the listed frames, in the order listed."""
    return await _frames(request, container, study, series, instance, frames)


@router.get("/studies/{study}/series/{series}/instances/{instance}/pixeldata")
async def retrieve_instance_pixeldata(
    study: str, series: str, instance: str, request: Request, container: ContainerDep
) -> Response:
    """Retrieve the Pixel Data of an instance (PS3.18 10.4.1.1.4): every frame."""
    return await _frames(request, container, study, series, instance, None)


@router.get("/studies/{study}/series/{series}/instances/{instance}/bulkdata/{path:path}")
async def retrieve_bulkdata_route(
    study: str, series: str, instance: str, path: str, request: Request, container: ContainerDep
) -> Response:
    """Retrieve Bulkdata (PS3.18 10.4.1.1.5), with a single HTTP Range."""
    result = await retrieve_bulkdata(
        container.index,
        container.objects,
        container.settings.site,
        request.headers.get("accept", ""),
        request.headers.get("range"),
        study,
        series,
        instance,
        path,
    )
    return StreamingResponse(
        result.body, result.status, headers=result.headers, media_type=result.content_type
    )
