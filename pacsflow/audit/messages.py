"""DICOM audit messages (PS3.15 A.5): the message model and its XML (A.5.1 schema).

``AuditMessage`` holds what A.5.2 asks of every message - the event, its outcome and time,
the active participants (who, from where), the audit source (which process, which site) and
the participant objects (what: studies, queries, resources) - and ``to_xml`` writes it in the
element order of the A.5.1 schema, which tests/unit/test_audit.py validates it against. The
codes are those of PS3.16 CID 400-402 and of A.5.1.2. Built with the standard library's
ElementTree: one small document per event needs nothing more.
"""

from __future__ import annotations

import base64
import xml.etree.ElementTree as ET
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from enum import StrEnum
from typing import Final

__all__ = [
    "APPLICATION_SERVER",
    "AuditMessage",
    "Code",
    "Outcome",
    "Participant",
    "ParticipantObject",
    "SopClassInstances",
    "to_xml",
]


@dataclass(frozen=True, slots=True)
class Code:
    """A coded value: ``csd-code``, ``codeSystemName``, ``originalText`` (A.5.1)."""

    code: str
    system: str
    meaning: str


class Outcome(StrEnum):
    """EventOutcomeIndicator (A.5.2)."""

    SUCCESS = "0"
    MINOR_FAILURE = "4"
    SERIOUS_FAILURE = "8"
    MAJOR_FAILURE = "12"


APPLICATION_SERVER: Final = "4"  # Audit Source Type Code (A.5.1.2.1): application server process


@dataclass(frozen=True, slots=True)
class Participant:
    """An ActiveParticipant: a user or process, where it is, and its role in the event."""

    user_id: str
    requestor: bool
    role: Code | None = None
    name: str | None = None
    address: str | None = None  # an IP address (NetworkAccessPointTypeCode 2)


@dataclass(frozen=True, slots=True)
class SopClassInstances:
    """The instances of one SOP Class within a study (ParticipantObjectDescription)."""

    sop_class: str | None
    instances: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class ParticipantObject:
    """A ParticipantObjectIdentification: a study, a patient, a query, a resource."""

    object_id: str
    id_type: Code
    type_code: str  # 1 person, 2 system object, ...
    role: str  # ParticipantObjectTypeCodeRole (A.5.1.2.2)
    name: str | None = None
    query: bytes | None = None
    details: tuple[tuple[str, bytes], ...] = ()
    sop_classes: tuple[SopClassInstances, ...] = ()
    lifecycle: str | None = None


@dataclass(frozen=True, slots=True)
class AuditMessage:
    """One audit message (A.5.1 ``AuditMessage``)."""

    event: Code
    action: str  # EventActionCode: C, R, U, D or E
    outcome: Outcome
    source_id: str
    site: str
    participants: Sequence[Participant]
    objects: Sequence[ParticipantObject] = ()
    event_types: Sequence[Code] = ()
    description: str | None = None
    when: datetime = field(default_factory=lambda: datetime.now(UTC))


def _code(parent: ET.Element, tag: str, code: Code) -> ET.Element:
    return ET.SubElement(
        parent,
        tag,
        {"csd-code": code.code, "codeSystemName": code.system, "originalText": code.meaning},
    )


def _participant(root: ET.Element, participant: Participant) -> None:
    attributes = {
        "UserID": participant.user_id,
        "UserIsRequestor": "true" if participant.requestor else "false",
    }
    if participant.name:
        attributes["UserName"] = participant.name
    if participant.address:
        attributes["NetworkAccessPointID"] = participant.address
        attributes["NetworkAccessPointTypeCode"] = "2"
    element = ET.SubElement(root, "ActiveParticipant", attributes)
    if participant.role is not None:
        _code(element, "RoleIDCode", participant.role)


def _object(root: ET.Element, item: ParticipantObject) -> None:
    attributes = {
        "ParticipantObjectID": item.object_id,
        "ParticipantObjectTypeCode": item.type_code,
        "ParticipantObjectTypeCodeRole": item.role,
    }
    if item.lifecycle:
        attributes["ParticipantObjectDataLifeCycle"] = item.lifecycle
    element = ET.SubElement(root, "ParticipantObjectIdentification", attributes)
    _code(element, "ParticipantObjectIDTypeCode", item.id_type)
    if item.query is not None:
        ET.SubElement(element, "ParticipantObjectQuery").text = base64.b64encode(
            item.query
        ).decode()
    else:
        ET.SubElement(element, "ParticipantObjectName").text = item.name or item.object_id
    for kind, value in item.details:
        ET.SubElement(
            element,
            "ParticipantObjectDetail",
            {"type": kind, "value": base64.b64encode(value).decode()},
        )
    if item.sop_classes:
        description = ET.SubElement(element, "ParticipantObjectDescription")
        for group in item.sop_classes:
            attributes = {"NumberOfInstances": str(len(group.instances))}
            if group.sop_class:
                attributes["UID"] = group.sop_class
            sop_class = ET.SubElement(description, "SOPClass", attributes)
            for uid in group.instances:
                ET.SubElement(sop_class, "Instance", {"UID": uid})


def to_xml(message: AuditMessage) -> bytes:
    """The message as a UTF-8 XML document following the A.5.1 schema."""
    root = ET.Element("AuditMessage")
    event = ET.SubElement(
        root,
        "EventIdentification",
        {
            "EventActionCode": message.action,
            "EventDateTime": message.when.astimezone(UTC).isoformat(timespec="milliseconds"),
            "EventOutcomeIndicator": message.outcome.value,
        },
    )
    _code(event, "EventID", message.event)
    for event_type in message.event_types:
        _code(event, "EventTypeCode", event_type)
    if message.description:
        ET.SubElement(event, "EventOutcomeDescription").text = message.description
    for participant in message.participants:
        _participant(root, participant)
    source = ET.SubElement(
        root,
        "AuditSourceIdentification",
        {"AuditSourceID": message.source_id, "AuditEnterpriseSiteID": message.site},
    )
    ET.SubElement(source, "AuditSourceTypeCode", {"csd-code": APPLICATION_SERVER})
    for item in message.objects:
        _object(root, item)
    document: bytes = ET.tostring(root, encoding="utf-8", xml_declaration=True)
    return document
