"""Attribute requirements of a workitem: PS3.4 Table CC.2.5-3 and the Final State rules.

Three columns of Table CC.2.5-3 ("UPS SOP Class N-CREATE/N-SET/N-GET/C-FIND Attributes") are
enforced, for the attributes below:

* Req. Type N-CREATE (PS3.4 CC.2.5.1.3, PS3.18 11.4.1.4): type 1 attributes must have a value
  (Procedure Step State must be SCHEDULED, CC.2.5.3); type 2 attributes must be present and
  may be empty, and the SCP adds those a request leaves out, empty (an SCP modification PS3.4
  CC.2.5.3 allows, listed in docs/conformance.md); the Transaction UID is not allowed.
* Req. Type N-SET (CC.2.6): the Procedure Step State changes only by Change State (CC.2.1),
  SOP Class and Instance UIDs never change, and a type 1 attribute cannot be emptied.
* Final State (CC.2.5.1.3.1, Table CC.2.5-2): R attributes have a value in both final states;
  a UPS becomes COMPLETED only with its performed procedure described (code P: Unified
  Procedure Step Performed Procedure Sequence with its start and end date-time, performed
  station and performed workitem codes); CANCELED needs the cancellation date-time and a
  discontinuation reason (code X), which the SCP fills in when the performer leaves them out.

Enumerated Values (Priority, Input Readiness State) are checked wherever they are given.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any, Final

from pacsflow.errors import BadRequest
from pacsflow.ups.dataset import keyword
from pacsflow.ups.model import UPS_PUSH_SOP_CLASS, State, Tag

__all__ = [
    "CREATE_TYPE_1",
    "CREATE_TYPE_2",
    "DEFAULT_DISCONTINUATION_REASON",
    "ENUMERATED",
    "check_create",
    "check_update",
    "final_state_problems",
    "has_value",
    "value",
]

JsonDict = dict[str, Any]

CREATE_TYPE_1: Final = (
    Tag.PRIORITY,
    Tag.PROCEDURE_STEP_LABEL,
    Tag.SCHEDULED_PROCEDURE_STEP_START,
    Tag.INPUT_READINESS_STATE,
    Tag.PROCEDURE_STEP_STATE,
)
# Type 2 on N-CREATE: Scheduled Procedure Information, Relationship and Progress modules.
CREATE_TYPE_2: Final = {
    "00404025": "SQ",  # Scheduled Station Name Code Sequence
    "00404026": "SQ",  # Scheduled Station Class Code Sequence
    "00404027": "SQ",  # Scheduled Station Geographic Location Code Sequence
    "00404018": "SQ",  # Scheduled Workitem Code Sequence
    "00400400": "LT",  # Comments on the Scheduled Procedure Step
    "00404021": "SQ",  # Input Information Sequence
    "00741210": "SQ",  # Scheduled Processing Parameters Sequence
    "00100010": "PN",  # Patient's Name
    "00100020": "LO",  # Patient ID
    "00100021": "LO",  # Issuer of Patient ID
    "00100030": "DA",  # Patient's Birth Date
    "00100040": "CS",  # Patient's Sex
    "00380010": "LO",  # Admission ID
    "00380014": "SQ",  # Issuer of Admission ID Sequence
    "00081080": "LO",  # Admitting Diagnoses Description
    "00081084": "SQ",  # Admitting Diagnoses Code Sequence
    "0040A370": "SQ",  # Referenced Request Sequence
    "0020000D": "UI",  # Study Instance UID
    "00741002": "SQ",  # Procedure Step Progress Information Sequence
    "00741216": "SQ",  # Unified Procedure Step Performed Procedure Sequence
}
# Type 1 on N-CREATE that the SCP provides when the SCU does not (the "3/1" rows).
SCP_PROVIDED: Final = (Tag.WORKLIST_LABEL,)
ENUMERATED: Final = {
    Tag.PRIORITY: ("HIGH", "MEDIUM", "LOW"),
    Tag.INPUT_READINESS_STATE: ("READY", "UNAVAILABLE", "INCOMPLETE"),
}
# Final State R: a value in COMPLETED and in CANCELED.
FINAL_REQUIRED: Final = (
    *CREATE_TYPE_1,
    Tag.WORKLIST_LABEL,
    Tag.SOP_CLASS_UID,
    Tag.SOP_INSTANCE_UID,
)
# Final State P, inside the one item of the Performed Procedure Sequence (COMPLETED only).
PERFORMED_REQUIRED: Final = (
    Tag.PERFORMED_START,
    Tag.PERFORMED_END,
    Tag.PERFORMED_STATION_NAME_CODES,
    Tag.PERFORMED_WORKITEM_CODES,
)
DEFAULT_DISCONTINUATION_REASON: Final = {  # DCM 110513, PS3.16 CID 9300
    Tag.CODE_VALUE: {"vr": "SH", "Value": ["110513"]},
    Tag.CODING_SCHEME_DESIGNATOR: {"vr": "SH", "Value": ["DCM"]},
    Tag.CODE_MEANING: {"vr": "LO", "Value": ["Discontinued for unspecified reason"]},
}
_NOT_SETTABLE: Final = (Tag.PROCEDURE_STEP_STATE,)


def value(attributes: JsonDict, tag: str) -> Any:
    """The first value of an attribute, or ``None``."""
    element = attributes.get(tag)
    values = element.get("Value") if isinstance(element, dict) else None
    return values[0] if values else None


def has_value(attributes: JsonDict, tag: str) -> bool:
    """Whether the attribute is present with a non-empty first value."""
    first = value(attributes, tag)
    return first not in (None, "", {})


def _check_enumerated(attributes: JsonDict) -> None:
    for tag, allowed in ENUMERATED.items():
        given = value(attributes, tag)
        if given is not None and given not in allowed:
            raise BadRequest(f"{keyword(tag)} is one of {', '.join(allowed)}, not {given!r}")


def check_create(attributes: JsonDict, uid: str, worklist_label: str) -> JsonDict:
    """The attributes of a new workitem ``uid``, or ``BadRequest`` (PS3.4 CC.2.5.3).

    Returns them with SOP Class and Instance UID set, the SCP-provided attributes and the
    type 2 attributes a request left out added (see the module docstring).
    """
    if Tag.TRANSACTION_UID in attributes:
        raise BadRequest("TransactionUID (0008,1195) is not allowed when creating a workitem")
    missing = [keyword(tag) for tag in CREATE_TYPE_1 if not has_value(attributes, tag)]
    if missing:
        raise BadRequest(f"a new workitem needs a value for {', '.join(missing)}")
    state = value(attributes, Tag.PROCEDURE_STEP_STATE)
    if state != State.SCHEDULED:
        raise BadRequest(f"ProcedureStepState of a new workitem is SCHEDULED, not {state!r}")
    sop_class = value(attributes, Tag.SOP_CLASS_UID)
    if sop_class not in (None, UPS_PUSH_SOP_CLASS):
        raise BadRequest(f"SOPClassUID of a workitem is {UPS_PUSH_SOP_CLASS}, not {sop_class}")
    _check_enumerated(attributes)
    result = dict(attributes)
    result[Tag.SOP_CLASS_UID] = {"vr": "UI", "Value": [UPS_PUSH_SOP_CLASS]}
    result[Tag.SOP_INSTANCE_UID] = {"vr": "UI", "Value": [uid]}
    if not has_value(result, Tag.WORKLIST_LABEL):
        result[Tag.WORKLIST_LABEL] = {"vr": "LO", "Value": [worklist_label]}
    for tag, vr in CREATE_TYPE_2.items():
        result.setdefault(tag, {"vr": vr})
    return result


def check_update(current: JsonDict, changes: JsonDict) -> JsonDict:
    """The attributes after an Update Workitem of ``changes``, or ``BadRequest`` (CC.2.6)."""
    for tag in _NOT_SETTABLE:
        if tag in changes:
            raise BadRequest(
                f"{keyword(tag)} changes only by the Change Workitem State transaction"
            )
    for tag in (Tag.SOP_CLASS_UID, Tag.SOP_INSTANCE_UID):
        if tag in changes and value(changes, tag) != value(current, tag):
            raise BadRequest(f"{keyword(tag)} of a workitem cannot change")
    emptied = [
        keyword(tag)
        for tag in (*CREATE_TYPE_1, Tag.WORKLIST_LABEL)
        if tag in changes and not has_value(changes, tag)
    ]
    if emptied:
        raise BadRequest(f"{', '.join(emptied)} cannot be emptied (type 1)")
    _check_enumerated(changes)
    merged = dict(current)
    merged.update({tag: element for tag, element in changes.items()})
    merged.pop(Tag.TRANSACTION_UID, None)
    return merged


def _missing(attributes: JsonDict, tags: Iterable[str]) -> list[str]:
    return [keyword(tag) for tag in tags if not has_value(attributes, tag)]


def final_state_problems(attributes: JsonDict, state: State) -> list[str]:
    """What keeps a workitem from ``state`` (COMPLETED or CANCELED): empty when nothing."""
    problems = _missing(attributes, FINAL_REQUIRED)
    if state is State.COMPLETED:
        performed = value(attributes, Tag.PERFORMED_PROCEDURE)
        if not isinstance(performed, dict):
            problems.append(f"{keyword(Tag.PERFORMED_PROCEDURE)} with one item")
        else:
            inner = _missing(performed, PERFORMED_REQUIRED)
            problems += [f"{keyword(Tag.PERFORMED_PROCEDURE)} > {name}" for name in inner]
    elif state is State.CANCELED:
        progress = value(attributes, Tag.PROGRESS_INFORMATION)
        tags = (Tag.CANCELLATION_DATETIME, Tag.DISCONTINUATION_REASON_CODES)
        inner = _missing(progress if isinstance(progress, dict) else {}, tags)
        problems += [f"{keyword(Tag.PROGRESS_INFORMATION)} > {name}" for name in inner]
    return problems
