"""A WADO-WS response: the SOAP 1.2 envelope and its documents, as MTOM/XOP or inline base64.

The operations build the response element with lxml and attach each document's bytes to an
``ihe:Document`` element (or another ``xs:base64Binary`` one) through ``Reply.attach``. By default
the answer is an MTOM package (SOAP MTOM 4.3, XOP 1.0 4.1): ``multipart/related;
type="application/xop+xml"``, the envelope first (the root part, with ``xop:Include`` in place of
each document), then one part per document, which streams from the object store or from the
``Spool`` as it is written. A client whose Accept header takes ``application/soap+xml`` and no
multipart type asks for the plain envelope (RFC 9110 12.5.1): the documents are then base64 text
in it, encoded as they stream.

Document parts carry no Content-Transfer-Encoding: HTTP does not use that header (RFC 9110
Appendix, RFC 2616 19.4.5) and the bytes are binary as they stand.

Written with lxml for the envelope; the MIME framing around it is the few lines of
``pacsflow.media.multipart_out``, since no library writes a streaming MTOM package.
"""

from __future__ import annotations

import asyncio
import base64
import os
import re
import tempfile
import uuid
from collections.abc import AsyncIterator, Callable, Sequence
from dataclasses import dataclass
from typing import Final

from lxml import etree

from pacsflow.media.accept import parse_accept
from pacsflow.media.multipart_out import Multipart, coalesced
from pacsflow.wado.retrieval import Payload
from pacsflow.ws.envelope import SoapRequest
from pacsflow.ws.faults import SOAP12_MEDIA
from pacsflow.ws.names import IHE, IHE_RAD, RS, SOAP12, WADO, WSA, XOP
from pacsflow.ws.registry import RegistryError, registry_response
from pacsflow.ws.requests import DocumentRef

__all__ = ["Attachment", "Reply", "Spool", "child", "wants_inline"]

Chunks = Callable[[], AsyncIterator[bytes]]
XOP_MEDIA: Final = "application/xop+xml"
_READ_BYTES: Final = 1 << 20
_NSMAP: Final = {
    "env": SOAP12,
    "wsa": WSA,
    "ihe": IHE,
    "iherad": IHE_RAD,
    "rs": RS,
    "wado": WADO,
    "xop": XOP,
}


def child(parent: etree._Element, tag: str, text: str | None = None) -> etree._Element:
    """Append an element ``tag`` (Clark notation) with ``text`` to ``parent``."""
    element = etree.SubElement(parent, tag)
    element.text = text
    return element


def wants_inline(accept: str) -> bool:
    """True when the Accept header takes the plain SOAP media type and no multipart one."""
    if not accept.strip():
        return False
    kinds = {m.media_type for m in parse_accept(accept) if m.quality > 0}
    return SOAP12_MEDIA in kinds and not kinds & {"multipart/related", "multipart/*", "*/*"}


@dataclass(frozen=True, slots=True)
class Attachment:
    """One document's bytes: a media type and a way to stream them."""

    media_type: str
    chunks: Chunks


class Spool:
    """Documents made before the envelope goes out (transcoded, rendered, metadata), written to
    one anonymous temporary file so that a large set never sits in memory."""

    def __init__(self) -> None:
        self._file = tempfile.TemporaryFile(prefix="pacsflow-wado-ws-")  # noqa: SIM115
        self._end = 0

    async def add(self, data: bytes) -> Chunks:
        """Keep ``data``; return a way to stream it back."""
        offset, length = self._end, len(data)
        await asyncio.to_thread(os.pwrite, self._file.fileno(), data, offset)
        self._end += length

        async def chunks() -> AsyncIterator[bytes]:
            done = 0
            while done < length:
                size = min(_READ_BYTES, length - done)
                yield await asyncio.to_thread(os.pread, self._file.fileno(), size, offset + done)
                done += size

        return chunks

    def close(self) -> None:
        """Delete the file (it is anonymous: closing it removes it)."""
        self._file.close()


class Reply:
    """The response of one operation: its element in a SOAP 1.2 envelope, and attachments."""

    def __init__(self, request: SoapRequest) -> None:
        self.operation = operation = request.operation
        self.request = request.payload
        relates_to = request.message_id
        self._envelope = etree.Element(f"{{{SOAP12}}}Envelope", nsmap=_NSMAP)
        if request.addressed:  # WS-Addressing 1.0 SOAP Binding 3: [action], [relationship]
            header = etree.SubElement(self._envelope, f"{{{SOAP12}}}Header")
            action = etree.SubElement(header, f"{{{WSA}}}Action")
            action.set(f"{{{SOAP12}}}mustUnderstand", "true")  # PS3.18 2016 6.4
            action.text = operation.response_action
            if relates_to:
                etree.SubElement(header, f"{{{WSA}}}RelatesTo").text = relates_to
        body = etree.SubElement(self._envelope, f"{{{SOAP12}}}Body")
        self.element = etree.SubElement(body, operation.response)
        self._attached: list[tuple[etree._Element, Attachment]] = []
        self._token = uuid.uuid4().hex

    def entry(
        self, tag: str, ref: DocumentRef, id_tag: str = f"{{{IHE}}}DocumentUniqueId"
    ) -> etree._Element:
        """Append one document's response ``tag``: its HomeCommunityId (when asked with one),
        RepositoryUniqueId and ``id_tag`` (its DocumentUniqueId), as the request named them."""
        element = child(self.element, tag)
        if ref.home is not None:
            child(element, f"{{{IHE}}}HomeCommunityId", ref.home)
        child(element, f"{{{IHE}}}RepositoryUniqueId", ref.repository)
        child(element, id_tag, ref.sop)
        return element

    def attach(self, parent: etree._Element, tag: str, attachment: Attachment) -> None:
        """Append an element ``tag`` to ``parent`` whose base64Binary value is the attachment."""
        self._attached.append((etree.SubElement(parent, tag), attachment))

    def finish(self, errors: Sequence[RegistryError]) -> None:
        """Put the RegistryResponse first: its status from the entries so far and ``errors``."""
        self.element.insert(0, registry_response(errors, delivered=len(self.element)))

    def payload(self, inline: bool, closing: Callable[[], None]) -> Payload:
        """The HTTP answer; ``closing`` runs once the body has been sent (or abandoned)."""
        action = self.operation.response_action
        if inline:
            return self._inline(action, closing)
        return self._mtom(action, closing)

    def _cid(self, number: int) -> str:
        return f"{number}.{self._token}@pacsflow"

    def _mtom(self, action: str, closing: Callable[[], None]) -> Payload:
        for number, (element, _) in enumerate(self._attached, start=1):
            include = etree.SubElement(element, f"{{{XOP}}}Include")
            include.set("href", f"cid:{self._cid(number)}")
        envelope = etree.tostring(self._envelope, xml_declaration=True, encoding="UTF-8")
        package = Multipart(XOP_MEDIA)
        root = self._cid(0)
        soap_type = f'{SOAP12_MEDIA}; action=\\"{action}\\"'
        content_type = f'{package.content_type}; start="<{root}>"; start-info="{soap_type}"'
        attached = list(self._attached)

        async def body() -> AsyncIterator[bytes]:
            try:
                root_type = f'{XOP_MEDIA}; charset=UTF-8; type="{soap_type}"'
                yield package.head(root_type, None, Content_ID=f"<{root}>")
                yield envelope + b"\r\n"
                for number, (_, attachment) in enumerate(attached, start=1):
                    cid = f"<{self._cid(number)}>"
                    yield package.head(attachment.media_type, None, Content_ID=cid)
                    async for chunk in attachment.chunks():
                        yield chunk
                    yield b"\r\n"
                yield package.end()
            finally:
                closing()

        return Payload(content_type, coalesced(body()))

    def _inline(self, action: str, closing: Callable[[], None]) -> Payload:
        for number, (element, _) in enumerate(self._attached, start=1):
            element.text = f"{self._token}.{number}"
        envelope = etree.tostring(self._envelope, xml_declaration=True, encoding="UTF-8")
        pieces = re.split(rf"{self._token}\.(\d+)".encode(), envelope)
        attached = list(self._attached)

        async def body() -> AsyncIterator[bytes]:
            try:
                for at, piece in enumerate(pieces):
                    if at % 2 == 0:
                        yield piece
                    else:
                        async for text in _base64(attached[int(piece) - 1][1].chunks()):
                            yield text
            finally:
                closing()

        content_type = f'{SOAP12_MEDIA}; charset=utf-8; action="{action}"'
        return Payload(content_type, coalesced(body()))


async def _base64(chunks: AsyncIterator[bytes]) -> AsyncIterator[bytes]:
    """Base64 of a byte stream, chunk by chunk (each encoded piece a multiple of 3 bytes)."""
    held = b""
    async for chunk in chunks:
        data = held + chunk
        cut = len(data) - len(data) % 3
        held = data[cut:]
        if cut:
            yield base64.b64encode(data[:cut])
    if held:
        yield base64.b64encode(held)
