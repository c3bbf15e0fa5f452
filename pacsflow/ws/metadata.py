"""Retrieve Imaging Document Set Metadata (PS3.18 2016 6.4.3) from the metadata ingest wrote.

Each document's metadata is the DICOM JSON stored at ingest (the WADO-RS metadata path) as a
PS3.19 Native DICOM Model document (``pacsflow.dicom.xml``): no pixel data, bulk values by
BulkDataURI under the DICOMweb root. Without XPathList the whole document is the response's
``application/dicom+xml`` Document; with it, each XPath 1.0 expression is evaluated on that
document (6.4.3.2) and its result, serialized (nodes as XML, other values as text), is one
XPathResponse in request order, empty when nothing matches. Expressions see the prefix ``dcm``
bound to the Native DICOM Model namespace and the prefixes declared where they were written.
"""

from __future__ import annotations

import asyncio
import base64
from typing import Any, Final

import orjson
from lxml import etree

from pacsflow.dicom.frames import frame_count
from pacsflow.dicom.xml import NAMESPACE, dataset_to_xml
from pacsflow.pipeline.sidecar import read_metadata
from pacsflow.wado.locate import keys_of
from pacsflow.ws.context import Context
from pacsflow.ws.locate import Found, locate_documents
from pacsflow.ws.names import IHE, WADO, ErrorCode
from pacsflow.ws.registry import RegistryError
from pacsflow.ws.reply import Attachment, Reply, Spool, child
from pacsflow.ws.requests import InformationRequest, information_requests

__all__ = ["MAX_XPATHS", "MAX_XPATH_CHARACTERS", "retrieve_metadata_document_set"]

MAX_XPATHS: Final = 64  # per document
MAX_XPATH_CHARACTERS: Final = 1024
DICOM_XML: Final = "application/dicom+xml"
_BATCH: Final = 256  # documents whose stored metadata is read at once


def _frames(attributes: dict[str, Any]) -> int:
    """The document's Number of Frames; 1 when ingest kept a value that is not one."""
    values = attributes.get("00280008", {}).get("Value") or [None]
    try:
        return frame_count(values[0])
    except ValueError:
        return 1


def _frame_error(request: InformationRequest, attributes: dict[str, Any]) -> RegistryError | None:
    """A FrameNumber that is not a frame of the document, or None."""
    if request.frame is None:
        return None
    sop, count = request.ref.sop, _frames(attributes)
    if not request.frame.isdigit() or int(request.frame) < 1:
        context = f"FrameNumber {request.frame!r} is not a frame number"
        return RegistryError(ErrorCode.INVALID_PARAMETER, context, sop)
    if int(request.frame) > count:
        context = f"the document has {count} frame(s); no frame {request.frame}"
        return RegistryError(ErrorCode.FRAME_OUT_OF_RANGE, context, sop)
    return None


def _serialize(result: object) -> bytes:
    """One XPath result as bytes: nodes as XML, strings as text, numbers and booleans too."""
    if isinstance(result, list):
        return b"".join(_serialize(item) for item in result)
    if isinstance(result, etree._Element):
        return etree.tostring(result, with_tail=False)
    if isinstance(result, bool):
        return b"true" if result else b"false"
    if isinstance(result, float) and result.is_integer():
        return str(int(result)).encode()
    return str(result).encode()


def _evaluate(document: bytes, request: InformationRequest) -> list[bytes] | RegistryError:
    """The result of each XPath of ``request`` on ``document``, or why one cannot run."""
    sop = request.ref.sop
    if len(request.xpaths) > MAX_XPATHS:
        context = f"{len(request.xpaths)} XPath expressions; at most {MAX_XPATHS} a document"
        return RegistryError(ErrorCode.INVALID_PARAMETER, context, sop)
    parser = etree.XMLParser(resolve_entities=False, no_network=True, load_dtd=False)
    root = etree.fromstring(document, parser)
    results = []
    for expression, prefixes in request.xpaths:
        if len(expression) > MAX_XPATH_CHARACTERS:
            context = f"an XPath of {len(expression)} characters; at most {MAX_XPATH_CHARACTERS}"
            return RegistryError(ErrorCode.INVALID_PARAMETER, context, sop)
        try:
            xpath = etree.XPath(expression, namespaces={"dcm": NAMESPACE, **prefixes})
            results.append(_serialize(xpath(root)))
        except etree.XPathError as exc:
            context = f"XPath {expression!r}: {exc}"
            return RegistryError(ErrorCode.INVALID_PARAMETER, context, sop)
    return results


async def _stored(context: Context, found: list[Found]) -> list[memoryview | None]:
    """The stored DICOM JSON of each instance, BulkDataURIs made absolute (None: gone)."""
    keys = [keys_of(context.site, f.instance) for f in found]
    return await read_metadata(context.objects, keys, context.root_url)


def _describe(
    raw: memoryview, request: InformationRequest
) -> tuple[bytes, list[bytes] | None] | RegistryError:
    """(the Native DICOM Model document, the XPath results or None), or the error."""
    attributes = orjson.loads(raw)
    if (error := _frame_error(request, attributes)) is not None:
        return error
    document = dataset_to_xml(attributes)
    answers = _evaluate(document, request) if request.xpaths else None
    if isinstance(answers, RegistryError):
        return answers
    return document, answers


async def _answer(
    reply: Reply, spool: Spool, request: InformationRequest, raw: memoryview | None
) -> RegistryError | None:
    """Append one DocumentInformationResponse, or return why it cannot be made."""
    sop = request.ref.sop
    if raw is None:
        return RegistryError(ErrorCode.UNKNOWN_DOCUMENT, f"the metadata of {sop} is gone", sop)
    described = await asyncio.to_thread(_describe, raw, request)  # XML and XPath: CPU work
    if isinstance(described, RegistryError):
        return described
    document, answers = described
    entry = reply.entry(f"{{{WADO}}}DocumentInformationResponse", request.ref)
    if request.frame is not None:
        child(entry, f"{{{WADO}}}FrameNumber", request.frame)
    if answers is not None:
        listing = child(entry, f"{{{WADO}}}XPathResponseList")
        for answer in answers:  # small: inline base64 (MTOM lets the sender choose)
            child(listing, f"{{{WADO}}}XPathResponse", base64.b64encode(answer).decode())
        return None
    child(entry, f"{{{IHE}}}mimeType", DICOM_XML)
    reply.attach(entry, f"{{{IHE}}}Document", Attachment(DICOM_XML, await spool.add(document)))
    return None


async def retrieve_metadata_document_set(context: Context, reply: Reply, spool: Spool) -> None:
    """Answer a RetrieveImagingDocumentSetInformationRequest (PS3.18 2016 6.4.3.2), reading
    the stored metadata ``_BATCH`` documents at a time."""
    requests = information_requests(reply.request)
    refs = [r.ref for r in requests]
    located = await locate_documents(context.index, context.site, refs, context.repository)
    errors: list[RegistryError] = []
    pairs = list(zip(requests, located, strict=True))
    for start in range(0, len(pairs), _BATCH):
        batch = pairs[start : start + _BATCH]
        found = [result for _, result in batch if isinstance(result, Found)]
        stored = dict(zip((id(f) for f in found), await _stored(context, found), strict=True))
        for request, result in batch:
            if isinstance(result, RegistryError):
                errors.append(result)
            elif (error := await _answer(reply, spool, request, stored[id(result)])) is not None:
                errors.append(error)
    reply.finish(errors)
