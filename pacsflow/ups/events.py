"""UPS Event Reports (PS3.4 CC.2.4) and the record that carries them on the ``ups-events`` topic.

A report is the DICOM JSON data set PS3.18 8.10.5.1.1 sends in one WebSocket text frame: the
N-EVENT-REPORT's Affected SOP Class UID (always UPS Push, CC.2.4.3), Command Field, Affected
SOP Instance UID and Event Type ID, with the Event Report attributes of Table CC.2.4-1.

The record (``EventRecord``, documented in docs/topics.md) is a public contract: versioned JSON
with the site, the workitem, the event's sequence number within the workitem (0 for events of
the SCP itself), the AE titles it is addressed to (the subscribers when it happened) and the
report. Records of one workitem are keyed by its UID, so they stay in order.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import IntEnum
from typing import Any, Final

import orjson

from pacsflow.ups.model import UPS_PUSH_SOP_CLASS, State, Tag
from pacsflow.ups.requirements import value

__all__ = [
    "EVENTS_TOPIC",
    "EventRecord",
    "EventRecordError",
    "EventType",
    "assigned",
    "cancel_requested",
    "progress_report",
    "report",
    "scp_status_change",
    "state_report",
]

JsonDict = dict[str, Any]

EVENTS_TOPIC: Final = "ups-events"
RECORD_VERSION: Final = 1
N_EVENT_REPORT_RQ: Final = 0x0100  # Command Field (PS3.7 Table 10.3-1)


class EventType(IntEnum):
    """Event Type ID (0000,1002) of the UPS Event SOP Class, PS3.4 Table CC.2.4-1."""

    STATE_REPORT = 1
    CANCEL_REQUESTED = 2
    PROGRESS_REPORT = 3
    SCP_STATUS_CHANGE = 4
    ASSIGNED = 5


def report(event_type: EventType, uid: str, information: JsonDict) -> JsonDict:
    """The DICOM JSON of one Event Report about ``uid`` (PS3.18 8.10.5.1.1)."""
    return {
        "00000002": {"vr": "UI", "Value": [UPS_PUSH_SOP_CLASS]},
        "00000100": {"vr": "US", "Value": [N_EVENT_REPORT_RQ]},
        "00001000": {"vr": "UI", "Value": [uid]},
        "00001002": {"vr": "US", "Value": [int(event_type)]},
        **dict(sorted(information.items())),
    }


def _selected(attributes: JsonDict, *tags: str) -> JsonDict:
    return {tag: attributes[tag] for tag in tags if tag in attributes}


def state_report(uid: str, attributes: JsonDict) -> JsonDict:
    """UPS State Report: the state, the input readiness and, if canceled, why."""
    information = _selected(
        attributes, Tag.SPECIFIC_CHARACTER_SET, Tag.PROCEDURE_STEP_STATE, Tag.INPUT_READINESS_STATE
    )
    if value(attributes, Tag.PROCEDURE_STEP_STATE) == State.CANCELED:
        progress = value(attributes, Tag.PROGRESS_INFORMATION)
        if isinstance(progress, dict):
            information.update(
                _selected(progress, Tag.REASON_FOR_CANCELLATION, Tag.DISCONTINUATION_REASON_CODES)
            )
    return report(EventType.STATE_REPORT, uid, information)


def cancel_requested(uid: str, requesting_ae: str, request: JsonDict) -> JsonDict:
    """UPS Cancel Requested: who asks, and what the request gave (Table CC.2.2-1)."""
    information = _selected(
        request,
        Tag.SPECIFIC_CHARACTER_SET,
        Tag.REASON_FOR_CANCELLATION,
        Tag.DISCONTINUATION_REASON_CODES,
        Tag.CONTACT_URI,
        Tag.CONTACT_DISPLAY_NAME,
    )
    information[Tag.REQUESTING_AE] = {"vr": "AE", "Value": [requesting_ae]}
    return report(EventType.CANCEL_REQUESTED, uid, information)


def progress_report(uid: str, attributes: JsonDict) -> JsonDict:
    """UPS Progress Report: the Procedure Step Progress Information Sequence."""
    information = _selected(attributes, Tag.SPECIFIC_CHARACTER_SET, Tag.PROGRESS_INFORMATION)
    return report(EventType.PROGRESS_REPORT, uid, information)


def assigned(uid: str, attributes: JsonDict) -> JsonDict:
    """UPS Assigned: the scheduled station and human performers."""
    information = _selected(
        attributes,
        Tag.SPECIFIC_CHARACTER_SET,
        Tag.SCHEDULED_STATION_NAME_CODES,
        Tag.SCHEDULED_HUMAN_PERFORMERS,
    )
    return report(EventType.ASSIGNED, uid, information)


def scp_status_change(uid: str, status: str, lists: str = "WARM START") -> JsonDict:
    """SCP Status Change: ``GOING DOWN`` or ``RESTARTED``, with what survived a restart."""
    information: JsonDict = {Tag.SCP_STATUS: {"vr": "CS", "Value": [status]}}
    if status == "RESTARTED":
        information[Tag.SUBSCRIPTION_LIST_STATUS] = {"vr": "CS", "Value": [lists]}
        information[Tag.UPS_LIST_STATUS] = {"vr": "CS", "Value": [lists]}
    return report(EventType.SCP_STATUS_CHANGE, uid, information)


class EventRecordError(ValueError):
    """Bytes that are not an event record of a version this code reads."""


@dataclass(frozen=True, slots=True)
class EventRecord:
    """One Event Report on the ``ups-events`` topic and the AE titles it is for."""

    site: str
    workitem: str
    seq: int
    recipients: tuple[str, ...]
    report: JsonDict

    def to_json(self) -> str:
        """The record as JSON text (the outbox keeps it so)."""
        return orjson.dumps(
            {
                "version": RECORD_VERSION,
                "site": self.site,
                "workitem": self.workitem,
                "seq": self.seq,
                "recipients": list(self.recipients),
                "report": self.report,
            }
        ).decode()

    @classmethod
    def from_json(cls, data: bytes | str) -> EventRecord:
        """Read a record; ``EventRecordError`` for anything else."""
        try:
            document = orjson.loads(data)
            if document["version"] != RECORD_VERSION:
                raise EventRecordError(f"event record version {document['version']!r}")
            record = cls(
                site=str(document["site"]),
                workitem=str(document["workitem"]),
                seq=int(document["seq"]),
                recipients=tuple(str(ae) for ae in document["recipients"]),
                report=dict(document["report"]),
            )
        except (orjson.JSONDecodeError, KeyError, TypeError, ValueError) as exc:
            if isinstance(exc, EventRecordError):
                raise
            raise EventRecordError(f"not an event record: {exc!r}") from exc
        return record
