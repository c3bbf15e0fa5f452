"""WADO-WS HTTP endpoint (PS3.18 2016 6.4, IHE RAD-69): ``POST /dicom-web/wado-ws`` (SOAP 1.2)
and ``GET /dicom-web/wado-ws?wsdl`` (with ``?xsd=NAME`` for each schema it imports)."""

from __future__ import annotations

from typing import Final

from fastapi import Request, Response

from pacsflow.auth import Right
from pacsflow.errors import BadRequest, NotFound
from services.auth import Audited, guard
from services.common import ContainerDep, SiteDep, dicomweb_root_url
from services.head import Router
from services.openapi import Parameter, parameters, request_body, responses
from services.retrieval import respond

__all__ = ["WADO_WS_PATH", "router"]

WADO_WS_PATH: Final = "/wado-ws"
_XML: Final = "text/xml; charset=utf-8"
_SOAP: Final = ("application/soap+xml", 'multipart/related; type="application/xop+xml"')

# Authentication is HTTP's (a bearer token), as for the RESTful services; WS-Security is not read.
router = Router(dependencies=[guard(Right.READ, Audited.TRANSFER)])


@router.get(
    WADO_WS_PATH,
    responses=responses(("text/xml",)),
    openapi_extra=parameters(
        Parameter("wsdl", "the WSDL of the service"),
        Parameter("xsd", "one schema the WSDL imports, by name"),
    ),
)
async def describe(request: Request, container: ContainerDep) -> Response:
    """The WSDL (``?wsdl``) or one schema it imports (``?xsd=NAME``), addressed to this URL."""
    endpoint = dicomweb_root_url(request, container) + WADO_WS_PATH
    parameters = request.query_params
    if "wsdl" in {name.lower() for name in parameters}:
        return Response(container.wado_ws.wsdl(endpoint), media_type=_XML)
    if (name := parameters.get("xsd")) is not None:
        if (schema := container.wado_ws.xsd(name, endpoint)) is None:
            raise NotFound(f"no schema {name!r}; the WSDL at ?wsdl names each one")
        return Response(schema, media_type=_XML)
    raise BadRequest(f"POST SOAP 1.2 requests here; GET {endpoint}?wsdl for the WSDL")


@router.post(
    WADO_WS_PATH,
    responses=responses(_SOAP, {413: {"description": "a Sender fault: too large"}}),
    openapi_extra=request_body(_SOAP),
)
async def soap(request: Request, container: ContainerDep, site: SiteDep) -> Response:
    """One SOAP 1.2 request: RetrieveImagingDocumentSet (RAD-69), its Rendered and Metadata
    siblings; the answer is MTOM/XOP, or a SOAP Fault."""
    service = container.wado_ws
    body = await _body(request, service.settings.max_request_bytes)
    if body is None:
        return respond(service.too_large(), request)
    payload = await service.answer(
        body,
        request.headers.get("content-type", ""),
        request.headers.get("accept", ""),
        site,
        dicomweb_root_url(request, container),
    )
    return respond(payload, request)


async def _body(request: Request, limit: int) -> bytes | None:
    """The request body, or None as soon as it exceeds ``limit`` bytes."""
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > limit:
        return None
    body = bytearray()
    async for chunk in request.stream():
        body.extend(chunk)
        if len(body) > limit:
            return None
    return bytes(body)
