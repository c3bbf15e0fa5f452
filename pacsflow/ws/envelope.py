"""Reading a WADO-WS request: the HTTP body, the SOAP 1.2 envelope, its headers and its action.

The body is ``application/soap+xml`` (SOAP 1.2 Part 2 7.1.4; the action in its ``action``
parameter, RFC 3902) or an MTOM/XOP package (``multipart/related; type="application/xop+xml"``,
SOAP MTOM 4.3, XOP 1.0 4.1) whose root part holds the envelope. XML is parsed by lxml without
DTD loading, entity expansion or network access and within libxml2's depth limit; a document
type declaration or a processing instruction is refused as SOAP 1.2 Part 1 5 requires. The
envelope is checked as SOAP 1.2 Part 1 5 says (Envelope, optional Header, Body); header blocks
targeted at this node with ``mustUnderstand`` are understood if they are WS-Addressing 1.0 ones,
else a MustUnderstand fault names them (5.4.8). The operation comes from the action (WS-Addressing
``wsa:Action``, else the media type's) and must match the Body's element.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Final

from lxml import etree

from pacsflow.errors import BadRequest
from pacsflow.media.multipart_in import media_type_parameters, parse_parts
from pacsflow.ws.faults import SOAP11_MEDIA, SOAP12_MEDIA, SoapFault
from pacsflow.ws.names import (
    SOAP11,
    SOAP12,
    WSA,
    Operation,
    operation_of_action,
    operation_of_payload,
)

__all__ = ["SoapRequest", "read_request"]

XOP_MEDIA: Final = "application/xop+xml"
_ROLES: Final = frozenset(
    {"", f"{SOAP12}/role/ultimateReceiver", f"{SOAP12}/role/next"}
)  # the roles this node plays (Part 1 2.2); "" is no role attribute
_ANONYMOUS: Final = frozenset({f"{WSA}/anonymous", f"{WSA}/none"})
_SINGLE: Final = ("Action", "MessageID", "To", "ReplyTo", "FaultTo", "From")


@dataclass(frozen=True, slots=True)
class SoapRequest:
    """A checked request: its operation, the Body's payload element and its addressing."""

    operation: Operation
    payload: etree._Element
    addressed: bool  # the request carried WS-Addressing headers: the reply carries them too
    message_id: str | None = None


def _name(element: etree._Element) -> str:
    """The Clark name ({namespace}local) of an element."""
    return etree.QName(element).text


def _sender(reason: str, status: int | None = None, soap11: bool = False) -> SoapFault:
    return SoapFault("Sender", reason, status=status, soap11=soap11)


def _addressing(reason: str, subcode: str) -> SoapFault:
    """A WS-Addressing fault (WS-Addressing 1.0 SOAP Binding 6.4.1)."""
    return SoapFault("Sender", reason, ((WSA, "InvalidAddressingHeader"), (WSA, subcode)))


async def read_request(body: bytes, content_type: str) -> SoapRequest:
    """The checked request, or a ``SoapFault``; see the module docstring."""
    xml, http_action, soap11_media = await _unpack(body, content_type)
    root = _parse(xml)
    if etree.QName(root).namespace == SOAP11 and etree.QName(root).localname == "Envelope":
        raise SoapFault(
            "VersionMismatch",
            "this endpoint speaks SOAP 1.2 (http://www.w3.org/2003/05/soap-envelope), not 1.1",
            soap11=True,
        )
    if _name(root) != f"{{{SOAP12}}}Envelope":
        reason = f"the root element {_name(root)} is not a SOAP 1.2 Envelope"
        raise SoapFault("VersionMismatch", reason)
    if soap11_media:
        raise _sender(
            f"a SOAP 1.2 envelope travels as {SOAP12_MEDIA} (SOAP 1.2 Part 2 7.1.4), not"
            f" {SOAP11_MEDIA}",
            415,
        )
    header, payload = _parts(root)
    addressing = _read_headers(header)
    message_id = addressing.get("MessageID") or None
    try:
        operation = _operation(payload, http_action, addressing.get("Action"))
    except SoapFault as fault:
        fault.relates_to = message_id
        raise
    return SoapRequest(operation, payload, bool(addressing), message_id)


async def _one(body: bytes) -> AsyncIterator[bytes]:
    yield body


async def _unpack(body: bytes, content_type: str) -> tuple[bytes, str | None, bool]:
    """(the envelope's bytes, the action of the media type, sent as SOAP 1.1's text/xml)."""
    media, params = media_type_parameters(content_type)
    if media == SOAP12_MEDIA:
        return body, params.get("action"), False
    if media == SOAP11_MEDIA:
        return body, None, True
    if media != "multipart/related":
        raise _sender(
            f"send the SOAP 1.2 envelope as {SOAP12_MEDIA} or as an MTOM package"
            f' (multipart/related; type="{XOP_MEDIA}"), not {media or "no Content-Type"}',
            415,
        )
    if params.get("type", "").lower() != XOP_MEDIA or not params.get("boundary"):
        raise _sender(f'a multipart request must be MTOM: type="{XOP_MEDIA}" and a boundary', 415)
    root, root_type = await _root_part(body, params["boundary"], params.get("start"))
    root_media, root_params = media_type_parameters(root_type)
    if root_media != XOP_MEDIA:
        raise _sender(f"the root part of an MTOM package is {XOP_MEDIA}, not {root_media}", 415)
    inner, inner_params = media_type_parameters(root_params.get("type", ""))
    _, start_info = media_type_parameters(params.get("start-info", ""))
    action = params.get("action") or inner_params.get("action") or start_info.get("action")
    return root, action, inner == SOAP11_MEDIA


async def _root_part(body: bytes, boundary: str, start: str | None) -> tuple[bytes, str]:
    """The root part of a multipart/related body: the one ``start`` names, else the first."""
    parts: list[tuple[dict[str, str], bytearray]] = []
    try:
        async for event in parse_parts(_one(body), boundary):
            if event.kind == "begin":
                parts.append((event.headers, bytearray()))
            elif event.kind == "data" and parts:
                parts[-1][1].extend(event.data)
            elif event.kind == "truncated":
                raise _sender("the MTOM package ends inside a part")
    except BadRequest as exc:
        raise _sender(str(exc)) from exc
    for headers, data in parts:
        if start is None or headers.get("content-id", "").strip() == start.strip():
            return bytes(data), headers.get("content-type", "")
    raise _sender("the MTOM package has no root part" + (f" {start}" if start else ""))


def _parse(xml: bytes) -> etree._Element:
    """The document element of a SOAP message, parsed without DTDs, entities or network."""
    parser = etree.XMLParser(
        resolve_entities=False,
        no_network=True,
        load_dtd=False,
        dtd_validation=False,
        huge_tree=False,
        remove_blank_text=False,
    )
    try:
        root = etree.fromstring(xml, parser)
    except etree.XMLSyntaxError as exc:
        raise _sender(f"the message is not well-formed XML: {exc}") from exc
    tree = root.getroottree()
    if tree.docinfo.doctype or tree.docinfo.internalDTD is not None:
        raise _sender("a SOAP message must not contain a document type declaration")
    outside = root.itersiblings(preceding=True)
    pis = [n for n in outside if isinstance(n, etree._ProcessingInstruction)]
    if pis or next(root.iter(etree.ProcessingInstruction), None) is not None:
        raise _sender("a SOAP message must not contain processing instructions")
    return root


def _parts(envelope: etree._Element) -> tuple[etree._Element | None, etree._Element]:
    """The Header (or None) and the one element of the Body (Part 1 5.1 to 5.3)."""
    if (envelope.text or "").strip():
        raise _sender("the Envelope holds character data")
    children = list(envelope.iterchildren(etree.Element))
    names = [_name(c) for c in children]
    header_tag, body_tag = f"{{{SOAP12}}}Header", f"{{{SOAP12}}}Body"
    if names not in ([body_tag], [header_tag, body_tag]):
        raise _sender("a SOAP 1.2 Envelope holds an optional Header, then a Body, nothing else")
    if any((c.tail or "").strip() for c in children):
        raise _sender("the Envelope holds character data")
    body = children[-1]
    payload = list(body.iterchildren(etree.Element))
    if len(payload) != 1:
        raise _sender(f"the Body holds {len(payload)} elements; a WADO-WS request holds one")
    return (children[0] if len(children) == 2 else None), payload[0]


def _targeted(block: etree._Element) -> bool:
    return block.get(f"{{{SOAP12}}}role", "") in _ROLES


def _must_understand(block: etree._Element) -> bool:
    value = block.get(f"{{{SOAP12}}}mustUnderstand", "false").strip()
    if value not in ("true", "1", "false", "0"):
        raise _sender(f"mustUnderstand={value!r} on {_name(block)} is not a boolean")
    return value in ("true", "1")


def _read_headers(header: etree._Element | None) -> dict[str, str]:
    """The WS-Addressing values of the Header; MustUnderstand for blocks not understood."""
    if header is None:
        return {}
    blocks = list(header.iterchildren(etree.Element))
    if any(etree.QName(b).namespace is None for b in blocks):
        raise _sender("every header block is namespace-qualified (SOAP 1.2 Part 1 5.2.1)")
    not_understood = tuple(
        _name(b)
        for b in blocks
        if _must_understand(b) and _targeted(b) and etree.QName(b).namespace != WSA
    )
    if not_understood:
        message_id = header.find(f"{{{WSA}}}MessageID")
        raise SoapFault(
            "MustUnderstand",
            "header blocks this node does not process: " + ", ".join(not_understood),
            not_understood=not_understood,
            relates_to=None if message_id is None else (message_id.text or "").strip(),
        )
    values: dict[str, str] = {}
    for block in blocks:
        qname = etree.QName(block)
        if qname.namespace != WSA or not _targeted(block):
            continue
        if qname.localname in _SINGLE and qname.localname in values:
            raise _addressing(f"more than one wsa:{qname.localname}", "InvalidCardinality")
        if qname.localname in ("ReplyTo", "FaultTo"):
            address = (block.findtext(f"{{{WSA}}}Address") or "").strip()
            if address not in _ANONYMOUS:
                raise _addressing(
                    f"wsa:{qname.localname} {address!r}: this endpoint answers on the same"
                    " connection only (anonymous)",
                    "OnlyAnonymousAddressSupported",
                )
        values[qname.localname] = (block.text or "").strip()
    return values


def _operation(
    payload: etree._Element, http_action: str | None, wsa_action: str | None
) -> Operation:
    """The operation the action names, checked against the Body's element."""
    if http_action and wsa_action and http_action != wsa_action:
        raise SoapFault(
            "Sender",
            f"wsa:Action {wsa_action!r} differs from the media type's action {http_action!r}",
            ((WSA, "ActionMismatch"),),
        )
    action = wsa_action or http_action
    by_payload = operation_of_payload(_name(payload))
    if action:
        operation = operation_of_action(action)
        if operation is None:
            raise SoapFault(
                "Sender",
                f"action {action!r} is not an operation of this endpoint (see ?wsdl)",
                ((WSA, "ActionNotSupported"),),
                problem_action=action,
            )
        if operation is not by_payload:
            raise _sender(
                f"action {action!r} takes a {etree.QName(operation.request).localname},"
                f" not a {_name(payload)}"
            )
        return operation
    if by_payload is None:
        raise _sender(f"no operation of this endpoint takes a {_name(payload)} (see ?wsdl)")
    return by_payload
