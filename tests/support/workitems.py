"""Workitem payloads for the Worklist tests, as a client writes them (DICOM JSON, PS3.18 F)."""

from __future__ import annotations

from typing import Any

from pydicom.uid import generate_uid

JsonDict = dict[str, Any]

STATE = "00741000"
TRANSACTION_UID = "00081195"
EVENT_TYPE = "00001002"
AFFECTED_UID = "00001000"


def element(vr: str, *values: Any) -> JsonDict:
    """One DICOM JSON attribute."""
    return {"vr": vr, "Value": list(values)} if values else {"vr": vr}


def code(value: str, scheme: str, meaning: str) -> JsonDict:
    """A code sequence item."""
    return {
        "00080100": element("SH", value),
        "00080102": element("SH", scheme),
        "00080104": element("LO", meaning),
    }


def workitem(uid: str | None = None, **extra: JsonDict) -> JsonDict:
    """A valid new workitem (the type 1 attributes of Table CC.2.5-3, a patient)."""
    dataset = {
        "00741200": element("CS", "MEDIUM"),  # Scheduled Procedure Step Priority
        "00741204": element("LO", "Lung nodule detection"),  # Procedure Step Label
        "00404005": element("DT", "20260105120000"),  # Scheduled Procedure Step Start DateTime
        "00404041": element("CS", "READY"),  # Input Readiness State
        STATE: element("CS", "SCHEDULED"),
        "00100010": {"vr": "PN", "Value": [{"Alphabetic": "Doe^Jane"}]},
        "00100020": element("LO", "PID-1"),
    }
    if uid is not None:
        dataset["00080018"] = element("UI", uid)
    dataset.update(extra)
    return dataset


def new_uid() -> str:
    """A fresh UID (workitems, Transaction UIDs)."""
    return str(generate_uid())


def state(value: str, transaction_uid: str | None) -> JsonDict:
    """A Change Workitem State payload."""
    dataset = {STATE: element("CS", value)}
    if transaction_uid is not None:
        dataset[TRANSACTION_UID] = element("UI", transaction_uid)
    return dataset


def performed() -> JsonDict:
    """An Update payload meeting the Final State requirements of COMPLETED."""
    item = {
        "00404050": element("DT", "20260105120500"),  # Performed Procedure Step Start DateTime
        "00404051": element("DT", "20260105121000"),  # Performed Procedure Step End DateTime
        "00404028": element("SQ", code("AI-1", "99PACSFLOW", "AI node 1")),  # station
        "00404019": element("SQ", code("110001", "DCM", "Image Processing")),  # workitem
        "00404033": element("SQ"),  # Output Information Sequence
    }
    return {"00741216": element("SQ", item)}


def first(dataset: JsonDict, tag: str) -> Any:
    """The first value of an attribute, or None."""
    values = dataset.get(tag, {}).get("Value") or [None]
    return values[0]
