"""STOW-RS HTTP endpoints: POST /studies and /studies/{study} (PS3.18 10.5).

Instances (``type="application/dicom"``) or metadata with bulk data (``application/dicom+json``,
``application/dicom+xml``); the Store Instances Response Module in DICOM JSON, or in PS3.19 XML
when the Accept header prefers ``application/dicom+xml`` (10.5.3).
"""

from __future__ import annotations

from typing import Literal

import orjson
from fastapi import Request, Response

from pacsflow.auth import Right
from pacsflow.dicom.xml import dataset_to_xml
from pacsflow.errors import NotAcceptable, PayloadTooLarge
from pacsflow.media.accept import DatasetMedia, choose
from pacsflow.media.multipart_in import media_type_parameters, require_multipart_related
from pacsflow.telemetry.metrics import stow_request
from services.auth import Audited, guard
from services.common import ContainerDep, SiteDep, dicomweb_root_url
from services.errors import warning_header
from services.head import Router
from services.openapi import DATASET_TYPES, multipart, request_body, responses

__all__ = ["router"]

router = Router(dependencies=[guard(Right.WRITE, Audited.STORE)])
_RESPONSE = responses(
    DATASET_TYPES,
    {
        202: {"description": "some instances failed, carry a warning or are in processing"},
        409: {"description": "no instance was stored (the Store Instances Response Module)"},
    },
)
_BODY = request_body(
    tuple(
        multipart(t)
        for t in ("application/dicom", "application/dicom+json", "application/dicom+xml")
    )
)

_TYPES = frozenset({"application/dicom", "application/dicom+json", "application/dicom+xml"})
_MAX_WARNINGS = 50


async def _store(
    request: Request, container: ContainerDep, site: str, study: str | None
) -> Response:
    content_type = request.headers.get("content-type", "")
    boundary = require_multipart_related(content_type, _TYPES)
    part_type = media_type_parameters(content_type)[1].get("type", "application/dicom").lower()
    media = _response_media(request.headers.get("accept", ""))
    length = request.headers.get("content-length")
    limit = container.settings.max_request_bytes
    if length is not None and length.isdigit() and int(length) > limit:
        raise PayloadTooLarge(f"the request exceeds {limit} bytes (PACSFLOW_MAX_REQUEST_BYTES)")
    prefer = request.headers.get("prefer", "").lower()
    consistency: Literal["durable"] | None = "durable" if "respond-async" in prefer else None
    stow = container.stow
    result = await stow.store_instances(
        request.stream(), boundary, study, consistency, site=site, part_type=part_type
    )
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
    dataset = result.to_json(dicomweb_root_url(request, container))
    body = dataset_to_xml(dataset) if media is DatasetMedia.DICOM_XML else orjson.dumps(dataset)
    return Response(body, result.status_code, headers, media.media_type)


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


def _response_media(accept: str) -> DatasetMedia:
    """The Store Instances Response Module in DICOM JSON, or XML when asked (PS3.18 10.5.3);
    the default when nothing acceptable is offered (Table 8.7.3-1), never a refused upload."""
    try:
        return choose(accept, list(DatasetMedia))
    except NotAcceptable:
        return DatasetMedia.DICOM_JSON
