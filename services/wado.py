"""WADO-RS HTTP endpoints (PS3.18 10.4): instances, metadata, frames, pixel data, bulk data."""

from __future__ import annotations

from fastapi import APIRouter, Request, Response

from pacsflow.auth import Right
from services.auth import Audited, guard
from services.retrieval import InstanceKey, RetrievalDep, SeriesKey, StudyKey, WadoDep, respond

__all__ = ["router"]

router = APIRouter()
TRANSFER = [guard(Right.READ, Audited.TRANSFER)]  # instances, frames, bulk data leave
ACCESS = [guard(Right.READ, Audited.ACCESS)]  # metadata is read


@router.get("/studies/{study}", dependencies=TRANSFER)
async def retrieve_study(
    key: StudyKey, retrieval: RetrievalDep, wado: WadoDep, request: Request
) -> Response:
    """Retrieve Study (PS3.18 10.4.1.1.1)."""
    return respond(await wado.retrieve_instances(key, retrieval), request)


@router.get("/studies/{study}/series/{series}", dependencies=TRANSFER)
async def retrieve_series(
    key: SeriesKey, retrieval: RetrievalDep, wado: WadoDep, request: Request
) -> Response:
    """Retrieve Series (PS3.18 10.4.1.1.1)."""
    return respond(await wado.retrieve_instances(key, retrieval), request)


@router.get("/studies/{study}/series/{series}/instances/{instance}", dependencies=TRANSFER)
async def retrieve_instance(
    key: InstanceKey, retrieval: RetrievalDep, wado: WadoDep, request: Request
) -> Response:
    """Retrieve Instance (PS3.18 10.4.1.1.1)."""
    return respond(await wado.retrieve_instances(key, retrieval), request)


@router.get("/studies/{study}/metadata", dependencies=ACCESS)
async def retrieve_study_metadata(
    key: StudyKey, retrieval: RetrievalDep, wado: WadoDep, request: Request
) -> Response:
    """Retrieve Study Metadata (PS3.18 10.4.1.1.2)."""
    return respond(await wado.retrieve_metadata(key, retrieval), request)


@router.get("/studies/{study}/series/{series}/metadata", dependencies=ACCESS)
async def retrieve_series_metadata(
    key: SeriesKey, retrieval: RetrievalDep, wado: WadoDep, request: Request
) -> Response:
    """Retrieve Series Metadata (PS3.18 10.4.1.1.2)."""
    return respond(await wado.retrieve_metadata(key, retrieval), request)


@router.get("/studies/{study}/series/{series}/instances/{instance}/metadata", dependencies=ACCESS)
async def retrieve_instance_metadata(
    key: InstanceKey, retrieval: RetrievalDep, wado: WadoDep, request: Request
) -> Response:
    """Retrieve Instance Metadata (PS3.18 10.4.1.1.2)."""
    return respond(await wado.retrieve_metadata(key, retrieval), request)


@router.get(
    "/studies/{study}/series/{series}/instances/{instance}/frames/{frames}", dependencies=TRANSFER
)
async def retrieve_instance_frames(
    key: InstanceKey, frames: str, retrieval: RetrievalDep, wado: WadoDep, request: Request
) -> Response:
    """Retrieve Frames (PS3.18 10.4.1.1.3): the listed frames, in the order listed."""
    return respond(await wado.retrieve_frames(key, frames, retrieval), request)


@router.get(
    "/studies/{study}/series/{series}/instances/{instance}/pixeldata", dependencies=TRANSFER
)
async def retrieve_instance_pixeldata(
    key: InstanceKey, retrieval: RetrievalDep, wado: WadoDep, request: Request
) -> Response:
    """Retrieve the Pixel Data of an instance (PS3.18 10.4.1.1.4): every frame."""
    return respond(await wado.retrieve_frames(key, None, retrieval), request)


@router.get(
    "/studies/{study}/series/{series}/instances/{instance}/bulkdata/{path:path}",
    dependencies=TRANSFER,
)
async def retrieve_bulkdata(
    key: InstanceKey, path: str, retrieval: RetrievalDep, wado: WadoDep, request: Request
) -> Response:
    """Retrieve Bulkdata (PS3.18 10.4.1.1.5), with a single HTTP Range."""
    return respond(await wado.retrieve_bulkdata(key, path, retrieval), request)
