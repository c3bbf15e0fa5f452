"""The UPS state machine (PS3.4 CC.1.1, Table CC.1.1-2) and the transactions that drive it.

Pure functions from a stored workitem and a request to an :class:`Outcome` (its new attributes,
state and Transaction UID, the Event Reports it causes, a success Warning) or a failure with the
status and Warning text PS3.18 gives:

* Change Workitem State (PS3.18 11.7, PS3.4 CC.2.1.3): SCHEDULED → IN PROGRESS records the
  requester's Transaction UID (the claim); IN PROGRESS → COMPLETED or CANCELED needs that
  Transaction UID and the Final State requirements; asking for the state a final workitem is
  already in succeeds with a Warning. A missing or wrong Transaction UID is a 400, a transition
  the table does not allow a 409 (so of performers racing to claim, all but one get 409).
* Request Cancellation (PS3.18 11.8, PS3.4 CC.2.2.3): a SCHEDULED workitem is canceled by the
  SCP itself (IN PROGRESS, then CANCELED: two State Reports); for an IN PROGRESS one the
  subscribers are sent UPS Cancel Requested, or the request fails when nobody could tell the
  performer; a COMPLETED one is a 409.
* Update Workitem (PS3.18 11.6, PS3.4 CC.2.6.3): anyone may update a SCHEDULED workitem; an
  IN PROGRESS one only with its Transaction UID; a final one never.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Final

from pacsflow.errors import BadRequest, Conflict
from pacsflow.ports.workitems import StoredWorkitem
from pacsflow.ups import events
from pacsflow.ups.model import FINAL_STATES, State, Tag, Warnings
from pacsflow.ups.requirements import (
    DEFAULT_DISCONTINUATION_REASON,
    check_update,
    final_state_problems,
    has_value,
    value,
)

__all__ = ["Outcome", "change_state", "request_cancellation", "update"]

JsonDict = dict[str, Any]

REQUESTABLE: Final = (State.IN_PROGRESS, State.COMPLETED, State.CANCELED)
_CANCEL_REQUEST_TAGS: Final = (
    Tag.REASON_FOR_CANCELLATION,
    Tag.DISCONTINUATION_REASON_CODES,
)


@dataclass(frozen=True, slots=True)
class Outcome:
    """What a transaction does to one workitem.

    ``reports`` go to its subscribers (``subscribers`` when the transaction changes them) or,
    when given, to ``recipients`` only; ``changed`` is false when nothing is stored.
    """

    attributes: JsonDict
    state: State
    transaction_uid: str | None
    reports: Sequence[JsonDict] = ()
    warning: str | None = None
    changed: bool = True
    finished: bool = False
    subscribers: Mapping[str, bool] | None = None
    recipients: tuple[str, ...] | None = None


def _dt(now: datetime) -> str:
    return now.strftime("%Y%m%d%H%M%S.%f")


def _with_state(attributes: JsonDict, state: State) -> JsonDict:
    return {**attributes, Tag.PROCEDURE_STEP_STATE: {"vr": "CS", "Value": [str(state)]}}


def _conflict(message: str) -> Conflict:
    return Conflict(message, warning=Warnings.STATE_INCONSISTENT)


def _canceled(attributes: JsonDict, request: JsonDict, now: datetime) -> JsonDict:
    """The attributes with the cancellation recorded (Final State X, filled in if absent)."""
    progress = value(attributes, Tag.PROGRESS_INFORMATION)
    item: JsonDict = dict(progress) if isinstance(progress, dict) else {}
    for tag in _CANCEL_REQUEST_TAGS:
        if tag in request and not has_value(item, tag):
            item[tag] = request[tag]
    contact = {t: request[t] for t in (Tag.CONTACT_URI, Tag.CONTACT_DISPLAY_NAME) if t in request}
    if contact and Tag.CONTACT_URI in contact and not has_value(item, Tag.COMMUNICATIONS_URI):
        item[Tag.COMMUNICATIONS_URI] = {"vr": "SQ", "Value": [contact]}
    if not has_value(item, Tag.CANCELLATION_DATETIME):
        item[Tag.CANCELLATION_DATETIME] = {"vr": "DT", "Value": [_dt(now)]}
    if not has_value(item, Tag.DISCONTINUATION_REASON_CODES):
        reason = dict(DEFAULT_DISCONTINUATION_REASON)
        item[Tag.DISCONTINUATION_REASON_CODES] = {"vr": "SQ", "Value": [reason]}
    return {**attributes, Tag.PROGRESS_INFORMATION: {"vr": "SQ", "Value": [item]}}


def change_state(item: StoredWorkitem, request: JsonDict, now: datetime) -> Outcome:
    """Change Workitem State (PS3.18 11.7) of ``item`` as ``request`` asks."""
    requested = value(request, Tag.PROCEDURE_STEP_STATE)
    if requested not in REQUESTABLE:
        raise BadRequest(
            f"ProcedureStepState (0074,1000) must be IN PROGRESS, COMPLETED or CANCELED,"
            f" not {requested!r}"
        )
    target = State(requested)
    transaction_uid = value(request, Tag.TRANSACTION_UID)
    if not transaction_uid:
        raise BadRequest(
            "the request has no Transaction UID (0008,1195)",
            warning=Warnings.TRANSACTION_UID_MISSING,
        )
    current = State(item.state)
    if current in FINAL_STATES:
        if target is current:
            canceled = current is State.CANCELED
            text = Warnings.ALREADY_CANCELED if canceled else Warnings.ALREADY_COMPLETED
            return Outcome(item.attributes, current, None, warning=text, changed=False)
        raise _conflict(f"the workitem is {current}; it can no longer change")
    if current is State.SCHEDULED:
        if target is not State.IN_PROGRESS:
            raise _conflict(f"a SCHEDULED workitem becomes IN PROGRESS before {target}")
        attributes = _with_state(item.attributes, target)
        reports = [events.state_report(item.uid, attributes)]
        return Outcome(attributes, target, str(transaction_uid), reports)
    if target is State.IN_PROGRESS:
        raise _conflict("the workitem is already IN PROGRESS")
    if transaction_uid != item.transaction_uid:
        raise BadRequest(
            "the Transaction UID is not the one of the workitem's owner",
            warning=Warnings.TRANSACTION_UID_INCORRECT,
        )
    attributes = item.attributes
    if target is State.CANCELED:
        attributes = _canceled(attributes, request, now)
    attributes = _with_state(attributes, target)
    problems = final_state_problems(attributes, target)
    if problems:
        raise _conflict(
            f"the Final State requirements of {target} are not met: {'; '.join(problems)}"
        )
    reports = [events.state_report(item.uid, attributes)]
    return Outcome(attributes, target, None, reports, finished=True)


def request_cancellation(
    item: StoredWorkitem, request: JsonDict, requesting_ae: str, now: datetime
) -> Outcome:
    """Request Cancellation (PS3.18 11.8) of ``item``; see the module docstring."""
    current = State(item.state)
    if current is State.CANCELED:
        return Outcome(
            item.attributes, current, None, warning=Warnings.ALREADY_CANCELED, changed=False
        )
    if current is State.COMPLETED:
        raise Conflict("the workitem is COMPLETED", warning=Warnings.CANCEL_COMPLETED)
    if current is State.IN_PROGRESS:
        if not item.subscribers:
            raise Conflict(
                "no AE title subscribes to the workitem, so its performer cannot be told",
                warning=Warnings.PERFORMER_UNREACHABLE,
            )
        reports = [events.cancel_requested(item.uid, requesting_ae, request)]
        return Outcome(item.attributes, current, item.transaction_uid, reports, changed=False)
    in_progress = _with_state(item.attributes, State.IN_PROGRESS)
    canceled = _with_state(_canceled(item.attributes, request, now), State.CANCELED)
    problems = final_state_problems(canceled, State.CANCELED)
    if problems:  # a stored SCHEDULED workitem always meets them; kept as a guard
        raise _conflict(f"the workitem cannot be canceled: {'; '.join(problems)}")
    reports = [events.state_report(item.uid, in_progress), events.state_report(item.uid, canceled)]
    return Outcome(canceled, State.CANCELED, None, reports, finished=True)


def update(item: StoredWorkitem, changes: JsonDict, transaction_uid: str | None) -> Outcome:
    """Update Workitem (PS3.18 11.6) of ``item`` with ``changes``; see the module docstring."""
    current = State(item.state)
    if current in FINAL_STATES:
        raise BadRequest(
            f"the workitem is {current}; it can no longer be updated",
            warning=Warnings.UPDATE_INCONSISTENT,
        )
    if current is State.SCHEDULED and transaction_uid:
        raise Conflict(
            "a SCHEDULED workitem has no Transaction UID yet", warning=Warnings.UPDATE_INCONSISTENT
        )
    if current is State.IN_PROGRESS:
        if not transaction_uid:
            raise BadRequest(
                "an IN PROGRESS workitem is updated with its Transaction UID, which is missing",
                warning=Warnings.NOT_CLAIMED,
            )
        if transaction_uid != item.transaction_uid:
            raise BadRequest(
                "the Transaction UID is not the one of the workitem's owner",
                warning=Warnings.NOT_CLAIMED,
            )
    attributes = check_update(item.attributes, changes)
    reports = []
    if value(changes, Tag.INPUT_READINESS_STATE) not in (
        None,
        value(item.attributes, Tag.INPUT_READINESS_STATE),
    ):
        reports.append(events.state_report(item.uid, attributes))
    progress = changes.get(Tag.PROGRESS_INFORMATION)
    if progress is not None and progress != item.attributes.get(Tag.PROGRESS_INFORMATION):
        reports.append(events.progress_report(item.uid, attributes))
    assignment = (Tag.SCHEDULED_STATION_NAME_CODES, Tag.SCHEDULED_HUMAN_PERFORMERS)
    if any(
        tag in changes and changes[tag] != item.attributes.get(tag) and has_value(changes, tag)
        for tag in assignment
    ):
        reports.append(events.assigned(item.uid, attributes))
    return Outcome(attributes, current, item.transaction_uid, reports)
