"""SOAP Faults (SOAP 1.2 Part 1 5.4) and the HTTP status each goes out with.

A ``SoapFault`` is raised wherever a request cannot be processed and becomes one fault
envelope. The status follows SOAP 1.2 Part 2 7.5.2.2 for Sender faults (400, and 413 / 415 for
a body too large or of another media type). For VersionMismatch and MustUnderstand the binding's
table says 500; pacsflow answers 400 instead, because both report a fault of the request and a
5xx would tell clients and gateways that the server failed (WS-I Basic Profile R1107: a client
recognises a fault by the envelope, whatever the status). Receiver faults are the server's:
503 with Retry-After when a backend is unavailable, else 500, never with a trace.

A SOAP 1.1 envelope gets a SOAP 1.1 VersionMismatch fault with an ``Upgrade`` header naming SOAP
1.2 (SOAP 1.2 Part 1 Appendix A).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Final, Literal

from lxml import etree

from pacsflow.errors import RETRY_AFTER
from pacsflow.wado.retrieval import Payload
from pacsflow.ws.names import SOAP11, SOAP12, WSA

__all__ = ["SOAP11_MEDIA", "SOAP12_MEDIA", "SoapFault", "fault_payload", "unavailable"]

SOAP12_MEDIA: Final = "application/soap+xml"
SOAP11_MEDIA: Final = "text/xml"
FAULT_ACTION: Final = f"{WSA}/fault"  # WS-Addressing 1.0 SOAP Binding 6.4: [action] of faults
Code = Literal["Sender", "Receiver", "VersionMismatch", "MustUnderstand"]
_STATUS: Final[dict[Code, int]] = {
    "Sender": 400,
    "VersionMismatch": 400,
    "MustUnderstand": 400,
    "Receiver": 500,
}
_SOAP11_CODES: Final[dict[Code, str]] = {
    "Sender": "Client",
    "Receiver": "Server",
    "VersionMismatch": "VersionMismatch",
    "MustUnderstand": "MustUnderstand",
}


@dataclass
class SoapFault(Exception):
    """A fault to answer with (SOAP 1.2 Part 1 5.4): code, reason, optional subcodes.

    ``subcodes`` are (namespace, local name) pairs, outermost first; ``not_understood`` the
    Clark names of header blocks for MustUnderstand (5.4.8); ``status`` overrides the code's.
    """

    code: Code
    reason: str
    subcodes: tuple[tuple[str, str], ...] = ()
    status: int | None = None
    not_understood: tuple[str, ...] = ()
    problem_action: str | None = None  # WS-Addressing 1.0 SOAP Binding 6.4.1.5 ProblemAction
    soap11: bool = False  # answer with a SOAP 1.1 envelope (a SOAP 1.1 request)
    headers: Mapping[str, str] = field(default_factory=dict)
    relates_to: str | None = None  # the request's wsa:MessageID: the fault relates to it

    def __str__(self) -> str:
        return f"{self.code}: {self.reason}"

    @property
    def http_status(self) -> int:
        """The HTTP status of this fault (see the module docstring)."""
        return self.status or _STATUS[self.code]


def unavailable(reason: str) -> SoapFault:
    """A Receiver fault for a backend that does not answer: 503 with Retry-After."""
    return SoapFault("Receiver", reason, status=503, headers=RETRY_AFTER)


def fault_payload(fault: SoapFault) -> Payload:
    """The HTTP answer of a fault."""
    if fault.soap11:
        body = _soap11(fault)
        content_type = f"{SOAP11_MEDIA}; charset=utf-8"
    else:
        body = _soap12(fault)
        content_type = f'{SOAP12_MEDIA}; charset=utf-8; action="{FAULT_ACTION}"'
    return Payload(content_type, body, fault.http_status, dict(fault.headers))


def _soap12(fault: SoapFault) -> bytes:
    env = f"{{{SOAP12}}}"
    nsmap = {"env": SOAP12, "wsa": WSA}
    prefixes = {SOAP12: "env", WSA: "wsa"}
    for namespace, _ in fault.subcodes:
        prefixes.setdefault(namespace, f"ns{len(prefixes)}")
        nsmap[prefixes[namespace]] = namespace
    envelope = etree.Element(f"{env}Envelope", nsmap=nsmap)
    header = etree.SubElement(envelope, f"{env}Header")
    if fault.relates_to is not None:
        action = etree.SubElement(header, f"{{{WSA}}}Action", {f"{env}mustUnderstand": "true"})
        action.text = FAULT_ACTION
        etree.SubElement(header, f"{{{WSA}}}RelatesTo").text = fault.relates_to
    for name in fault.not_understood:
        qname = etree.QName(name)
        block = etree.SubElement(header, f"{env}NotUnderstood", nsmap={"nu": qname.namespace or ""})
        block.set("qname", f"nu:{qname.localname}")
    if fault.code == "VersionMismatch":
        _upgrade(header)
    if len(header) == 0:
        envelope.remove(header)
    body = etree.SubElement(envelope, f"{env}Body")
    element = etree.SubElement(body, f"{env}Fault")
    parent = etree.SubElement(element, f"{env}Code")
    etree.SubElement(parent, f"{env}Value").text = f"env:{fault.code}"
    for namespace, local in fault.subcodes:
        parent = etree.SubElement(parent, f"{env}Subcode")
        etree.SubElement(parent, f"{env}Value").text = f"{prefixes[namespace]}:{local}"
    reason = etree.SubElement(element, f"{env}Reason")
    text = etree.SubElement(reason, f"{env}Text")
    text.set("{http://www.w3.org/XML/1998/namespace}lang", "en")
    text.text = fault.reason
    if fault.problem_action is not None:
        detail = etree.SubElement(element, f"{env}Detail")
        problem = etree.SubElement(detail, f"{{{WSA}}}ProblemAction")
        etree.SubElement(problem, f"{{{WSA}}}Action").text = fault.problem_action
    return etree.tostring(envelope, xml_declaration=True, encoding="UTF-8")


def _upgrade(header: etree._Element) -> None:
    """The Upgrade header block: the envelope versions this node supports (Part 1 5.4.7)."""
    upgrade = etree.SubElement(header, f"{{{SOAP12}}}Upgrade")
    supported = etree.SubElement(upgrade, f"{{{SOAP12}}}SupportedEnvelope", nsmap={"v12": SOAP12})
    supported.set("qname", "v12:Envelope")


def _soap11(fault: SoapFault) -> bytes:
    envelope = etree.Element(f"{{{SOAP11}}}Envelope", nsmap={"s11": SOAP11, "env": SOAP12})
    if fault.code == "VersionMismatch":
        _upgrade(etree.SubElement(envelope, f"{{{SOAP11}}}Header"))
    body = etree.SubElement(envelope, f"{{{SOAP11}}}Body")
    element = etree.SubElement(body, f"{{{SOAP11}}}Fault")
    etree.SubElement(element, "faultcode").text = f"s11:{_SOAP11_CODES[fault.code]}"
    etree.SubElement(element, "faultstring").text = fault.reason
    return etree.tostring(envelope, xml_declaration=True, encoding="UTF-8")
