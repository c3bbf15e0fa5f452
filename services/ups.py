"""UPS-RS HTTP and WebSocket endpoints: the Worklist Service (PS3.18 Chapter 11, 8.10).

``/workitems`` resources (Table 11.3-1) and the event channel ``/subscribers/{aetitle}``
(the WebSocket of PS3.18 8.10.4, named in the Content-Location of a Subscribe response).
Payloads are DICOM JSON or the Native DICOM Model (``pacsflow.ups.dataset``); responses are
``application/dicom+json`` or, when asked, XML. Failures carry the PS3.18 Warning texts
(``services.errors``); every rule is in ``pacsflow.ups``.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import Annotated, Any, Final

import orjson
from fastapi import Depends, Request, Response, WebSocket
from starlette.websockets import WebSocketDisconnect, WebSocketState

from pacsflow.auth import Right
from pacsflow.dicom.uids import is_valid_uid
from pacsflow.dicom.xml import dataset_to_xml
from pacsflow.errors import BadRequest, PacsflowError
from pacsflow.media.accept import DatasetMedia, MetadataMedia, choose
from pacsflow.media.multipart_out import Multipart
from pacsflow.ups.dataset import parse_payload
from pacsflow.ups.service import DEFAULT_REQUESTER
from pacsflow.ups.states import Outcome
from pacsflow.ups.subscriptions import check_ae_title
from pacsflow.ups.watch import GLOBAL_TARGETS
from pacsflow.ups.worklist import SiteWorklist
from services.auth import Audited, guard
from services.common import ContainerDep, SiteDep, dicomweb_root_url, read_body
from services.errors import warning_header
from services.head import Router
from services.openapi import (
    ACCEPT,
    DATASET_TYPES,
    METADATA_TYPES,
    QIDO,
    STATUS_REPORT,
    Parameter,
    parameters,
    request_body,
    responses,
)

__all__ = ["TOTAL_HEADER", "router"]

log = logging.getLogger(__name__)

router = Router()
READ, WRITE = [guard(Right.READ)], [guard(Right.WRITE)]

TOTAL_HEADER: Final = "X-Total-Count"
_TRUNCATED: Final = (
    "The number of results exceeded the maximum supported by the server."
    " Additional results can be requested."
)
_REPLACED: Final = 4000  # WebSocket close code: a newer channel of the same AE title took over


def _worklist(container: ContainerDep, site: SiteDep) -> SiteWorklist:
    """The Worklist of the request's site."""
    return container.ups.at(site)


WorklistDep = Annotated[SiteWorklist, Depends(_worklist)]


async def _payload(
    request: Request, container: ContainerDep, *, optional: bool = False
) -> dict[str, Any]:
    """The request's data set, read up to PACSFLOW_UPS_MAX_REQUEST_BYTES and checked."""
    limit = container.settings.ups_max_request_bytes
    body = await read_body(request, limit, "PACSFLOW_UPS_MAX_REQUEST_BYTES")
    if optional and not body.strip():
        return {}
    return parse_payload(body, request.headers.get("content-type", ""))


def _warning(request: Request, text: str | None) -> dict[str, str]:
    return {"Warning": warning_header(text, request.url.hostname)} if text else {}


def _status(request: Request, status: int, message: str, outcome: Outcome | None) -> Response:
    """A success response with a small status report (PS3.18 8.6) and its Warning."""
    headers = _warning(request, outcome.warning if outcome else None)
    body = orjson.dumps({"status": status, "message": message})
    return Response(body, status, media_type="application/json", headers=headers)


def _single(name: str, request: Request) -> str | None:
    values = request.query_params.getlist(name)
    if len(values) > 1:
        raise BadRequest(f"query parameter {name!r} is given more than once")
    return values[0] if values else None


@router.post(
    "/workitems",
    responses=responses((), status=201, description="Created: Location names the workitem"),
    openapi_extra=parameters(
        Parameter("workitem", "the SOP Instance UID of the new workitem"),
        extra=request_body(DATASET_TYPES),
    ),
    dependencies=WRITE,
)
async def create_workitem(
    request: Request, container: ContainerDep, worklist: WorklistDep
) -> Response:
    """Create Workitem (PS3.18 11.4): 201 with the workitem's URL in Location."""
    dataset = await _payload(request, container)
    uid = await worklist.workitems.create(dataset, _single("workitem", request))
    location = f"{dicomweb_root_url(request, container)}/workitems/{uid}"
    headers = {"Location": location, "Content-Location": location}
    return Response(status_code=201, headers=headers)


@router.get(
    "/workitems",
    responses=responses(METADATA_TYPES),
    openapi_extra=parameters(*QIDO),
    dependencies=[guard(Right.READ, Audited.QUERY)],
)
async def search_workitems(
    request: Request, container: ContainerDep, worklist: WorklistDep
) -> Response:
    """Search Workitems (PS3.18 11.9): matches, with X-Total-Count."""
    media = choose(request.headers.get("accept", ""), list(MetadataMedia))
    parameters = list(request.query_params.multi_items())
    asked = next((int(v) for k, v in parameters if k == "limit" and v.isdigit()), None)
    page = await worklist.workitems.search(parameters, asked)
    headers = {TOTAL_HEADER: str(page.total)}
    if page.truncated:
        headers |= _warning(request, _TRUNCATED)
    if media is not MetadataMedia.DICOM_XML:
        return Response(orjson.dumps(page.results), media_type=media.media_type, headers=headers)
    multipart = Multipart("application/dicom+xml")
    xml = multipart.body(dataset_to_xml(r) for r in page.results)
    return Response(xml, media_type=multipart.content_type, headers=headers)


@router.get(
    "/workitems/{workitem}",
    responses=responses(DATASET_TYPES),
    openapi_extra=parameters(ACCEPT),
    dependencies=READ,
)
async def retrieve_workitem(
    workitem: str, request: Request, container: ContainerDep, worklist: WorklistDep
) -> Response:
    """Retrieve Workitem (PS3.18 11.5): the workitem, without its Transaction UID."""
    media = choose(request.headers.get("accept", ""), list(DatasetMedia))
    dataset = await worklist.workitems.retrieve(workitem)
    location = {"Content-Location": str(request.url)}
    if media is DatasetMedia.DICOM_XML:
        return Response(dataset_to_xml(dataset), media_type=media.media_type, headers=location)
    return Response(orjson.dumps([dataset]), media_type=media.media_type, headers=location)


@router.post(
    "/workitems/{workitem}",
    responses=responses(STATUS_REPORT),
    openapi_extra=parameters(
        Parameter("transaction", "the Transaction UID of the owner"),
        extra=request_body(DATASET_TYPES),
    ),
    dependencies=WRITE,
)
async def update_workitem(
    workitem: str, request: Request, container: ContainerDep, worklist: WorklistDep
) -> Response:
    """Update Workitem (PS3.18 11.6): ``?transaction=`` names the owner's Transaction UID."""
    changes = await _payload(request, container)
    bare = [
        k for k, v in request.query_params.multi_items() if not v and is_valid_uid(k, strict=False)
    ]
    transaction = _single("transaction", request) or next(iter(bare), None)
    outcome = await worklist.workitems.update(workitem, changes, transaction)
    return _status(request, 200, f"workitem {workitem} updated", outcome)


@router.put(
    "/workitems/{workitem}/state",
    responses=responses(STATUS_REPORT),
    openapi_extra=request_body(DATASET_TYPES),
    dependencies=WRITE,
)
async def change_workitem_state(
    workitem: str, request: Request, container: ContainerDep, worklist: WorklistDep
) -> Response:
    """Change Workitem State (PS3.18 11.7)."""
    payload = await _payload(request, container)
    outcome = await worklist.workitems.change_state(workitem, payload)
    return _status(request, 200, f"workitem {workitem} is {outcome.state}", outcome)


@router.post(
    "/workitems/{workitem}/cancelrequest",
    responses=responses(STATUS_REPORT, status=202, description="Accepted"),
    openapi_extra=parameters(
        Parameter("requester", "the AE title asking"),
        extra=request_body(DATASET_TYPES, required=False),
    ),
    dependencies=WRITE,
)
async def request_cancellation(
    workitem: str, request: Request, container: ContainerDep, worklist: WorklistDep
) -> Response:
    """Request Cancellation (PS3.18 11.8): 202; ``?requester=`` names the Requesting AE."""
    payload = await _payload(request, container, optional=True)
    requester = check_ae_title(_single("requester", request) or DEFAULT_REQUESTER)
    outcome = await worklist.workitems.request_cancellation(workitem, payload, requester)
    return _status(request, 202, f"the cancellation of workitem {workitem} was requested", outcome)


def _deletion_lock(request: Request) -> bool:
    value = _single("deletionlock", request)
    if value not in (None, "true", "false"):
        raise BadRequest("query parameter 'deletionlock' must be 'true' or 'false'")
    return value == "true"


@router.post(
    "/workitems/{workitem}/subscribers/{aetitle}",
    responses=responses(STATUS_REPORT, status=201, description="Created"),
    openapi_extra=parameters(
        Parameter("deletionlock", "true or false"),
        Parameter("filter", "the matching keys of a Filtered Worklist Subscription"),
    ),
    dependencies=READ,
)
async def subscribe(
    workitem: str, aetitle: str, request: Request, container: ContainerDep, worklist: WorklistDep
) -> Response:
    """Subscribe (PS3.18 11.10): 201 with the WebSocket URL of the event channel."""
    ae = check_ae_title(aetitle)
    parameters = list(request.query_params.multi_items())
    await worklist.watch.subscribe(workitem, ae, _deletion_lock(request), parameters)
    root = dicomweb_root_url(request, container)
    channel = "ws" + root.removeprefix("http") + f"/subscribers/{ae}"
    return Response(status_code=201, headers={"Content-Location": channel})


@router.delete(
    "/workitems/{workitem}/subscribers/{aetitle}",
    responses=responses(STATUS_REPORT),
    dependencies=READ,
)
async def unsubscribe(
    workitem: str, aetitle: str, request: Request, container: ContainerDep, worklist: WorklistDep
) -> Response:
    """Unsubscribe (PS3.18 11.11)."""
    ae = check_ae_title(aetitle)
    await worklist.watch.unsubscribe(workitem, ae)
    return _status(request, 200, f"{ae} unsubscribed from {workitem}", None)


@router.post(
    "/workitems/{workitem}/subscribers/{aetitle}/suspend",
    responses=responses(STATUS_REPORT),
    dependencies=READ,
)
async def suspend_global_subscription(
    workitem: str, aetitle: str, request: Request, container: ContainerDep, worklist: WorklistDep
) -> Response:
    """Suspend Global Subscription (PS3.18 11.12)."""
    if workitem not in GLOBAL_TARGETS:
        raise BadRequest(f"only a Worklist Subscription ({' or '.join(GLOBAL_TARGETS)}) suspends")
    ae = check_ae_title(aetitle)
    await worklist.watch.suspend(ae)
    return _status(request, 200, f"the Worklist Subscription of {ae} is suspended", None)


@router.websocket("/subscribers/{aetitle}", dependencies=READ)
async def open_event_channel(
    websocket: WebSocket, aetitle: str, container: ContainerDep, worklist: WorklistDep
) -> None:
    """Open Event Channel (PS3.18 8.10.4) and Send Event Report (8.10.5) for one AE title."""
    try:
        ae = check_ae_title(aetitle)
    except BadRequest as exc:
        await websocket.close(code=1008, reason=str(exc)[:120])
        return
    channels = container.ups.channels
    await websocket.accept()
    closed = channels.open(worklist.site, ae)

    async def receive() -> None:
        with contextlib.suppress(WebSocketDisconnect):
            while True:
                await websocket.receive_text()  # the subscriber sends nothing we act on

    listener = asyncio.create_task(receive())
    listener.add_done_callback(lambda _: closed.set())
    code = 1000
    try:
        await worklist.channel(ae).run(websocket.send_text, closed)
        code = _REPLACED if not listener.done() else 1000
    except (WebSocketDisconnect, RuntimeError):
        log.info("the event channel of %s closed while sending", ae)
    except PacsflowError as exc:
        log.warning("the event channel of %s stopped: %s", ae, exc)
        code = 1011
    finally:
        channels.release(worklist.site, ae, closed)
        listener.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await listener
        connected = WebSocketState.CONNECTED
        if websocket.application_state is connected and websocket.client_state is connected:
            with contextlib.suppress(RuntimeError, WebSocketDisconnect):
                await websocket.close(code=code)
