"""Storage Commitment Service HTTP endpoints (PS3.18 Chapter 13).

``POST /commitment-requests/{transactionUID}`` (Request, 13.4) and ``GET`` of the same resource
(Result Check, 13.5): 200 with the Storage Commitment Response Module (Annex J.2) in
``application/dicom+json`` (default) or ``application/dicom+xml``, or 202 without a payload
and with ``Retry-After`` while the origin server is still working on it (13.4.3, 13.5.3).
"""

from __future__ import annotations

from typing import Annotated, Any

import orjson
from fastapi import Header, Path, Request, Response

from pacsflow.auth import Right
from pacsflow.commitment.service import Outcome
from pacsflow.dicom.xml import dataset_to_xml
from pacsflow.errors import RETRY_AFTER
from pacsflow.media.accept import DatasetMedia, choose
from services.auth import guard
from services.common import ContainerDep, SiteDep, read_body
from services.head import Router
from services.openapi import DATASET_TYPES, responses

__all__ = ["router"]

router = Router(dependencies=[guard(Right.READ)])

_RESOURCE = "/commitment-requests/{transaction}"
TransactionUID = Annotated[
    str, Path(description="Transaction UID (0008,1195) of the commitment request")
]
_WORKING: dict[int | str, dict[str, Any]] = {
    202: {"description": "Working: check the result later (13.4.3, 13.5.3); no payload"},
    409: {"description": "the Transaction UID is already in use"},
}


def _answer(outcome: Outcome, accept: str) -> Response:
    media = choose(accept, list(DatasetMedia))
    if outcome.result is None:
        return Response(status_code=202, headers=RETRY_AFTER)
    if media is DatasetMedia.DICOM_XML:
        return Response(dataset_to_xml(outcome.result), media_type=media.media_type)
    return Response(orjson.dumps(outcome.result), media_type=media.media_type)


@router.post(_RESOURCE, responses=responses(DATASET_TYPES, _WORKING))
async def request_storage_commitment(
    transaction: TransactionUID,
    request: Request,
    container: ContainerDep,
    site: SiteDep,
    accept: Annotated[str, Header()] = "",
) -> Response:
    """Request Storage Commitment (PS3.18 13.4) of the instances the payload names (J.1)."""
    choose(accept, list(DatasetMedia))  # 406 before the request is recorded
    limit = container.settings.commitment_max_request_bytes
    body = await read_body(request, limit, "PACSFLOW_COMMITMENT_MAX_REQUEST_BYTES")
    content_type = request.headers.get("content-type", "")
    service = container.commitment
    outcome = await service.request_commitment(site, transaction, body, content_type)
    return _answer(outcome, accept)


@router.get(_RESOURCE, responses=responses(DATASET_TYPES, _WORKING))
async def check_storage_commitment_result(
    transaction: TransactionUID,
    container: ContainerDep,
    site: SiteDep,
    accept: Annotated[str, Header()] = "",
) -> Response:
    """Result Check (PS3.18 13.5) of an earlier Storage Commitment request."""
    choose(accept, list(DatasetMedia))
    return _answer(await container.commitment.check_result(site, transaction), accept)
