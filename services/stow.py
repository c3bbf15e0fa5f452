"""STOW-RS HTTP endpoints: POST /studies and /studies/{study} (PS3.18 10.5)."""

from __future__ import annotations

from typing import Literal

import orjson
from fastapi import Request, Response

from pacsflow.errors import PayloadTooLarge
from pacsflow.media.multipart_in import require_multipart_related
from services.common import ContainerDep, SiteDep, dicomweb_root_url
from services.head import Router
from services.openapi import multipart, request_body, responses

__all__ = ["router"]

router = Router()
_RESPONSE = responses(
    ("application/dicom+json",),
    {
        202: {"description": "some instances failed, carry a warning or are in processing"},
        409: {"description": "no instance was stored (the Store Instances Response Module)"},
    },
)
_BODY = request_body((multipart("application/dicom"),))

_TYPES = frozenset({"application/dicom"})
_MAX_WARNINGS = 50


async def _store(
    request: Request, container: ContainerDep, site: str, study: str | None
) -> Response:
    boundary = require_multipart_related(request.headers.get("content-type", ""), _TYPES)
    length = request.headers.get("content-length")
    limit = container.settings.max_request_bytes
    if length is not None and length.isdigit() and int(length) > limit:
        raise PayloadTooLarge(f"the request exceeds {limit} bytes (PACSFLOW_MAX_REQUEST_BYTES)")
    prefer = request.headers.get("prefer", "").lower()
    consistency: Literal["durable"] | None = "durable" if "respond-async" in prefer else None
    stow = container.stow
    result = await stow.store_instances(request.stream(), boundary, study, consistency, site=site)
    headers = {}
    warnings = result.warnings()[:_MAX_WARNINGS]
    if warnings:
        host = request.url.hostname or "pacsflow"
        headers["Warning"] = ", ".join(f'299 {host} "{_header_text(w)}"' for w in warnings)
    if consistency == "durable":
        headers["Preference-Applied"] = "respond-async"
    return Response(
        orjson.dumps(result.to_json(dicomweb_root_url(request, container))),
        status_code=result.status_code,
        media_type="application/dicom+json",
        headers=headers,
    )


@router.post("/studies", responses=_RESPONSE, openapi_extra=_BODY)
async def store_instances(request: Request, container: ContainerDep, site: SiteDep) -> Response:
    """Store Instances (PS3.18 10.5.1)."""
    return await _store(request, container, site, None)


@router.post("/studies/{study}", responses=_RESPONSE, openapi_extra=_BODY)
async def store_study_instances(
    study: str, request: Request, container: ContainerDep, site: SiteDep
) -> Response:
    """Store Instances of one study (PS3.18 10.5.1)."""
    return await _store(request, container, site, study)


def _header_text(text: str) -> str:
    """A warning text safe inside a quoted, latin-1 header value."""
    return text.replace('"', "'").replace("\\", "/").encode("ascii", "replace").decode()
