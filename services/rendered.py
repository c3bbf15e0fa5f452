"""WADO-RS Rendered and Thumbnail endpoints (PS3.18 10.4.1.1.4, 8.3.5, 8.3.6)."""

from __future__ import annotations

from fastapi import Request, Response

from pacsflow.auth import Right
from services.auth import Audited, guard
from services.head import Router
from services.openapi import RENDERED, RENDERED_TYPES, THUMBNAIL_TYPES, multipart, parameters
from services.openapi import responses as answers
from services.retrieval import InstanceKey, RetrievalDep, SeriesKey, StudyKey, WadoDep, respond

__all__ = ["router"]

router = Router(dependencies=[guard(Right.READ, Audited.ACCESS)])

_INSTANCE = "/studies/{study}/series/{series}/instances/{instance}"
_QUERY = parameters(*RENDERED)
_ONE = answers(RENDERED_TYPES)
_PARTS = answers(tuple(multipart(m) for m in RENDERED_TYPES))
_THUMBNAIL = answers(THUMBNAIL_TYPES)


@router.get("/studies/{study}/rendered", responses=_PARTS, openapi_extra=_QUERY)
async def retrieve_rendered_study(
    key: StudyKey, retrieval: RetrievalDep, wado: WadoDep, request: Request
) -> Response:
    """Rendered Study: one part per instance."""
    return respond(await wado.retrieve_rendered(key, None, retrieval), request)


@router.get("/studies/{study}/series/{series}/rendered", responses=_PARTS, openapi_extra=_QUERY)
async def retrieve_rendered_series(
    key: SeriesKey, retrieval: RetrievalDep, wado: WadoDep, request: Request
) -> Response:
    """Rendered Series: one part per instance."""
    return respond(await wado.retrieve_rendered(key, None, retrieval), request)


@router.get(f"{_INSTANCE}/rendered", responses=_ONE, openapi_extra=_QUERY)
async def retrieve_rendered_instance(
    key: InstanceKey, retrieval: RetrievalDep, wado: WadoDep, request: Request
) -> Response:
    """Rendered Instance: an image (every frame for image/gif), an SR, a PDF."""
    return respond(await wado.retrieve_rendered(key, None, retrieval), request)


@router.get(f"{_INSTANCE}/frames/{{frames}}/rendered", responses=_ONE, openapi_extra=_QUERY)
async def retrieve_rendered_frames(
    key: InstanceKey, frames: str, retrieval: RetrievalDep, wado: WadoDep, request: Request
) -> Response:
    """Rendered Frames: one image, or an animated GIF of the frames listed."""
    return respond(await wado.retrieve_rendered(key, frames, retrieval), request)


@router.get("/studies/{study}/thumbnail", responses=_THUMBNAIL, openapi_extra=_QUERY)
async def retrieve_study_thumbnail(
    key: StudyKey, retrieval: RetrievalDep, wado: WadoDep, request: Request
) -> Response:
    """Study Thumbnail (PS3.18 8.3.6)."""
    return respond(await wado.retrieve_thumbnail(key, None, retrieval), request)


@router.get(
    "/studies/{study}/series/{series}/thumbnail", responses=_THUMBNAIL, openapi_extra=_QUERY
)
async def retrieve_series_thumbnail(
    key: SeriesKey, retrieval: RetrievalDep, wado: WadoDep, request: Request
) -> Response:
    """Series Thumbnail (PS3.18 8.3.6)."""
    return respond(await wado.retrieve_thumbnail(key, None, retrieval), request)


@router.get(f"{_INSTANCE}/thumbnail", responses=_THUMBNAIL, openapi_extra=_QUERY)
async def retrieve_instance_thumbnail(
    key: InstanceKey, retrieval: RetrievalDep, wado: WadoDep, request: Request
) -> Response:
    """Instance Thumbnail (PS3.18 8.3.6)."""
    return respond(await wado.retrieve_thumbnail(key, None, retrieval), request)


@router.get(f"{_INSTANCE}/frames/{{frames}}/thumbnail", responses=_THUMBNAIL, openapi_extra=_QUERY)
async def retrieve_frame_thumbnail(
    key: InstanceKey, frames: str, retrieval: RetrievalDep, wado: WadoDep, request: Request
) -> Response:
    """Frame Thumbnail (PS3.18 8.3.6)."""
    return respond(await wado.retrieve_thumbnail(key, frames, retrieval), request)
