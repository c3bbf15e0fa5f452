"""WADO-RS HTTP endpoints (PS3.18 10.4): instances, metadata, frames, pixel data, bulk data."""

from __future__ import annotations

from fastapi import Request, Response

from pacsflow.auth import Right
from services.auth import Audited, guard
from services.head import Router
from services.openapi import (
    BULKDATA_TYPES,
    FRAME_TYPES,
    INSTANCE_TYPES,
    METADATA_TYPES,
    responses,
)
from services.retrieval import InstanceKey, RetrievalDep, SeriesKey, StudyKey, WadoDep, respond

__all__ = ["router"]

router = Router()
TRANSFER = [guard(Right.READ, Audited.TRANSFER)]  # instances, frames, bulk data leave
ACCESS = [guard(Right.READ, Audited.ACCESS)]  # metadata is read

_INSTANCE = "/studies/{study}/series/{series}/instances/{instance}"
_INSTANCES = responses(INSTANCE_TYPES)
_METADATA = responses(METADATA_TYPES, {304: {"description": "Not Modified (If-None-Match)"}})
_FRAMES = responses(FRAME_TYPES)
_BULKDATA = responses(BULKDATA_TYPES, {206: {"description": "Partial Content (Range)"}})
_ALL_BULKDATA = responses(FRAME_TYPES)


@router.get("/studies/{study}", responses=_INSTANCES, dependencies=TRANSFER)
async def retrieve_study(
    key: StudyKey, retrieval: RetrievalDep, wado: WadoDep, request: Request
) -> Response:
    """Retrieve Study (PS3.18 10.4.1.1.1)."""
    return respond(await wado.retrieve_instances(key, retrieval), request)


@router.get("/studies/{study}/series/{series}", responses=_INSTANCES, dependencies=TRANSFER)
async def retrieve_series(
    key: SeriesKey, retrieval: RetrievalDep, wado: WadoDep, request: Request
) -> Response:
    """Retrieve Series (PS3.18 10.4.1.1.1)."""
    return respond(await wado.retrieve_instances(key, retrieval), request)


@router.get(
    "/studies/{study}/series/{series}/instances/{instance}",
    responses=_INSTANCES,
    dependencies=TRANSFER,
)
async def retrieve_instance(
    key: InstanceKey, retrieval: RetrievalDep, wado: WadoDep, request: Request
) -> Response:
    """Retrieve Instance (PS3.18 10.4.1.1.1)."""
    return respond(await wado.retrieve_instances(key, retrieval), request)


@router.get("/studies/{study}/metadata", responses=_METADATA, dependencies=ACCESS)
async def retrieve_study_metadata(
    key: StudyKey, retrieval: RetrievalDep, wado: WadoDep, request: Request
) -> Response:
    """Retrieve Study Metadata (PS3.18 10.4.1.1.2)."""
    return respond(await wado.retrieve_metadata(key, retrieval), request)


@router.get("/studies/{study}/series/{series}/metadata", responses=_METADATA, dependencies=ACCESS)
async def retrieve_series_metadata(
    key: SeriesKey, retrieval: RetrievalDep, wado: WadoDep, request: Request
) -> Response:
    """Retrieve Series Metadata (PS3.18 10.4.1.1.2)."""
    return respond(await wado.retrieve_metadata(key, retrieval), request)


@router.get(f"{_INSTANCE}/metadata", responses=_METADATA, dependencies=ACCESS)
async def retrieve_instance_metadata(
    key: InstanceKey, retrieval: RetrievalDep, wado: WadoDep, request: Request
) -> Response:
    """Retrieve Instance Metadata (PS3.18 10.4.1.1.2)."""
    return respond(await wado.retrieve_metadata(key, retrieval), request)


@router.get(f"{_INSTANCE}/frames/{{frames}}", responses=_FRAMES, dependencies=TRANSFER)
async def retrieve_instance_frames(
    key: InstanceKey, frames: str, retrieval: RetrievalDep, wado: WadoDep, request: Request
) -> Response:
    """Retrieve Frames (PS3.18 10.4.1.1.3): the listed frames, in the order listed."""
    return respond(await wado.retrieve_frames(key, frames, retrieval), request)


@router.get(f"{_INSTANCE}/pixeldata", responses=_FRAMES, dependencies=TRANSFER)
async def retrieve_instance_pixeldata(
    key: InstanceKey, retrieval: RetrievalDep, wado: WadoDep, request: Request
) -> Response:
    """Retrieve the Pixel Data of an instance (PS3.18 10.4.1.1.4): every frame."""
    return respond(await wado.retrieve_frames(key, None, retrieval), request)


@router.get("/studies/{study}/bulkdata", responses=_ALL_BULKDATA, dependencies=TRANSFER)
async def retrieve_study_bulkdata(
    key: StudyKey, retrieval: RetrievalDep, wado: WadoDep, request: Request
) -> Response:
    """Retrieve Study Bulkdata (PS3.18 10.4.1.1.5): every bulk value of the study."""
    return respond(await wado.retrieve_resource_bulkdata(key, retrieval), request)


@router.get(
    "/studies/{study}/series/{series}/bulkdata", responses=_ALL_BULKDATA, dependencies=TRANSFER
)
async def retrieve_series_bulkdata(
    key: SeriesKey, retrieval: RetrievalDep, wado: WadoDep, request: Request
) -> Response:
    """Retrieve Series Bulkdata (PS3.18 10.4.1.1.5): every bulk value of the series."""
    return respond(await wado.retrieve_resource_bulkdata(key, retrieval), request)


@router.get(f"{_INSTANCE}/bulkdata", responses=_ALL_BULKDATA, dependencies=TRANSFER)
async def retrieve_instance_bulkdata(
    key: InstanceKey, retrieval: RetrievalDep, wado: WadoDep, request: Request
) -> Response:
    """Retrieve Instance Bulkdata (PS3.18 10.4.1.1.5): every bulk value of the instance."""
    return respond(await wado.retrieve_resource_bulkdata(key, retrieval), request)


@router.get("/studies/{study}/pixeldata", responses=_FRAMES, dependencies=TRANSFER)
async def retrieve_study_pixeldata(
    key: StudyKey, retrieval: RetrievalDep, wado: WadoDep, request: Request
) -> Response:
    """Retrieve Study Pixel Data (PS3.18 10.4.1.1.6): the frames of every instance."""
    return respond(await wado.retrieve_pixel_data(key, retrieval), request)


@router.get("/studies/{study}/series/{series}/pixeldata", responses=_FRAMES, dependencies=TRANSFER)
async def retrieve_series_pixeldata(
    key: SeriesKey, retrieval: RetrievalDep, wado: WadoDep, request: Request
) -> Response:
    """Retrieve Series Pixel Data (PS3.18 10.4.1.1.6): the frames of every instance."""
    return respond(await wado.retrieve_pixel_data(key, retrieval), request)


@router.get(f"{_INSTANCE}/bulkdata/{{path:path}}", responses=_BULKDATA, dependencies=TRANSFER)
async def retrieve_bulkdata(
    key: InstanceKey, path: str, retrieval: RetrievalDep, wado: WadoDep, request: Request
) -> Response:
    """Retrieve Bulkdata (PS3.18 10.4.1.1.5), with a single HTTP Range."""
    return respond(await wado.retrieve_bulkdata(key, path, retrieval), request)
