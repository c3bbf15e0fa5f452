"""STOW-RS HTTP endpoints: POST /studies and /studies/{study} (PS3.18 10.5).

Instances (``type="application/dicom"``) or metadata with bulk data (``application/dicom+json``,
``application/dicom+xml``); the Store Instances Response Module in DICOM JSON, or in PS3.19 XML
when the Accept header prefers ``application/dicom+xml`` (10.5.3).
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Literal

import orjson
from fastapi import Request, Response

from pacsflow.auth import Right
from pacsflow.dicom.xml import dataset_to_xml
from pacsflow.errors import NotAcceptable, PayloadTooLarge
from pacsflow.media.accept import DatasetMedia, choose
from pacsflow.media.multipart_in import media_type_parameters, require_multipart_related
from pacsflow.stow.response import StowResult
from pacsflow.telemetry.metrics import stow_request
from services.auth import Audited, guard
from services.common import ContainerDep, SiteDep, dicomweb_root_url
from services.errors import warning_header
from services.head import Router
from services.openapi import DATASET_TYPES, multipart, request_body, responses

__all__ = ["STORE_BODY", "STORE_RESPONSES", "Store", "router", "store_response"]

router = Router(dependencies=[guard(Right.WRITE, Audited.STORE)])
STORE_RESPONSES = responses(
    DATASET_TYPES,
    {
        202: {"description": "some instances failed, carry a warning or are in processing"},
        409: {"description": "no instance was stored (the Store Instances Response Module)"},
    },
)
STORE_BODY = request_body(
    tuple(
        multipart(t)
        for t in ("application/dicom", "application/dicom+json", "application/dicom+xml")
    )
)

_TYPES = frozenset({"application/dicom", "application/dicom+json", "application/dicom+xml"})
_MAX_WARNINGS = 50


# Stores the parts of a body: (body, boundary, part type, consistency) -> the result.
Store = Callable[[AsyncIterator[bytes], str, str, Literal["durable"] | None], Awaitable[StowResult]]


async def store_response(request: Request, store: Store, limit: int, root_url: str) -> Response:
    """Check the request, ``store`` its body, render the Store Instances Response (10.5.3);
    shared by the Studies Service and the Non-Patient Instance Service (PS3.18 12.5)."""
    content_type = request.headers.get("content-type", "")
    boundary = require_multipart_related(content_type, _TYPES)
    part_type = media_type_parameters(content_type)[1].get("type", "application/dicom").lower()
    media = _response_media(request.headers.get("accept", ""))
    length = request.headers.get("content-length")
    if length is not None and length.isdigit() and int(length) > limit:
        raise PayloadTooLarge(f"the request exceeds {limit} bytes (PACSFLOW_MAX_REQUEST_BYTES)")
    prefer = request.headers.get("prefer", "").lower()
    consistency: Literal["durable"] | None = "durable" if "respond-async" in prefer else None
    result = await store(request.stream(), boundary, part_type, consistency)
    request.state.stored_parts = result.parts  # what the audit message names
    stow_request(
        result.status_code,
        [(p.stored, p.failure_reason, p.warning_reason, p.size) for p in result.parts],
    )
    headers = {}
    warnings = result.warnings()[:_MAX_WARNINGS]
    if warnings:
        host = request.url.hostname or "pacsflow"
        headers["Warning"] = ", ".join(warning_header(w, host) for w in warnings)
    if consistency == "durable":
        headers["Preference-Applied"] = "respond-async"
    dataset = result.to_json(root_url)
    body = dataset_to_xml(dataset) if media is DatasetMedia.DICOM_XML else orjson.dumps(dataset)
    return Response(body, result.status_code, headers, media.media_type)


async def _store(
    request: Request, container: ContainerDep, site: str, study: str | None
) -> Response:
    async def store(
        body: AsyncIterator[bytes],
        boundary: str,
        part_type: str,
        consistency: Literal["durable"] | None,
    ) -> StowResult:
        stow = container.stow
        return await stow.store_instances(
            body, boundary, study, consistency, site=site, part_type=part_type
        )

    limit = container.settings.max_request_bytes
    return await store_response(request, store, limit, dicomweb_root_url(request, container))


@router.post("/studies", responses=STORE_RESPONSES, openapi_extra=STORE_BODY)
async def store_instances(request: Request, container: ContainerDep, site: SiteDep) -> Response:
    """Store Instances (PS3.18 10.5.1)."""
    return await _store(request, container, site, None)


@router.post("/studies/{study}", responses=STORE_RESPONSES, openapi_extra=STORE_BODY)
async def store_study_instances(
    study: str, request: Request, container: ContainerDep, site: SiteDep
) -> Response:
    """Store Instances of one study (PS3.18 10.5.1)."""
    return await _store(request, container, site, study)


def _response_media(accept: str) -> DatasetMedia:
    """The Store Instances Response Module in DICOM JSON, or XML when asked (PS3.18 10.5.3);
    the default when nothing acceptable is offered (Table 8.7.3-1), never a refused upload."""
    try:
        return choose(accept, list(DatasetMedia))
    except NotAcceptable:
        return DatasetMedia.DICOM_JSON
