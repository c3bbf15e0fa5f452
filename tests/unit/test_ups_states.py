"""The UPS state machine (PS3.4 Table CC.1.1-2) and the statuses of PS3.18 11.6-11.8."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import pytest

from pacsflow.errors import BadRequest, Conflict, PacsflowError
from pacsflow.ports.workitems import StoredWorkitem
from pacsflow.ups.model import State, Warnings
from pacsflow.ups.requirements import check_create, value
from pacsflow.ups.states import change_state, request_cancellation, update
from tests.support.workitems import element, performed, state, workitem

JsonDict = dict[str, Any]
NOW = datetime(2026, 1, 5, 12, 30)
OWNER = "1.2.9.1"


def stored(current: State, **extra: JsonDict) -> StoredWorkitem:
    attributes = check_create(workitem(), "1.2.3", "pacsflow")
    attributes["00741000"] = element("CS", str(current))
    attributes.update(extra)
    return StoredWorkitem(
        site="s",
        uid="1.2.3",
        attributes=attributes,
        state=str(current),
        transaction_uid=OWNER if current is State.IN_PROGRESS else None,
        subscribers={"WATCHER": False},
    )


def failure(call: Any) -> PacsflowError:
    with pytest.raises(PacsflowError) as info:
        call()
    return info.value


# (current, requested, transaction UID) -> status code, Warning text (PS3.18 11.7.3)
TABLE = [
    (State.SCHEDULED, "COMPLETED", OWNER, 409, Warnings.STATE_INCONSISTENT),
    (State.SCHEDULED, "CANCELED", OWNER, 409, Warnings.STATE_INCONSISTENT),
    (State.IN_PROGRESS, "IN PROGRESS", OWNER, 409, Warnings.STATE_INCONSISTENT),
    (State.IN_PROGRESS, "IN PROGRESS", "1.2.9.2", 409, Warnings.STATE_INCONSISTENT),
    (State.IN_PROGRESS, "COMPLETED", "1.2.9.2", 400, Warnings.TRANSACTION_UID_INCORRECT),
    (State.IN_PROGRESS, "CANCELED", "1.2.9.2", 400, Warnings.TRANSACTION_UID_INCORRECT),
    (State.IN_PROGRESS, "COMPLETED", None, 400, Warnings.TRANSACTION_UID_MISSING),
    (State.SCHEDULED, "IN PROGRESS", None, 400, Warnings.TRANSACTION_UID_MISSING),
    (State.COMPLETED, "IN PROGRESS", OWNER, 409, Warnings.STATE_INCONSISTENT),
    (State.COMPLETED, "CANCELED", OWNER, 409, Warnings.STATE_INCONSISTENT),
    (State.CANCELED, "IN PROGRESS", OWNER, 409, Warnings.STATE_INCONSISTENT),
    (State.CANCELED, "COMPLETED", OWNER, 409, Warnings.STATE_INCONSISTENT),
]


@pytest.mark.parametrize(("current", "requested", "uid", "status", "warning"), TABLE)
def test_illegal_transitions_fail_with_the_status_and_warning_of_the_standard(
    current: State, requested: str, uid: str | None, status: int, warning: str
) -> None:
    error = failure(lambda: change_state(stored(current), state(requested, uid), NOW))
    assert {400: BadRequest, 409: Conflict}[status] is type(error)
    assert error.warning == warning


def test_claiming_records_the_transaction_uid_and_reports_the_state() -> None:
    outcome = change_state(stored(State.SCHEDULED), state("IN PROGRESS", OWNER), NOW)
    assert outcome.state is State.IN_PROGRESS and outcome.transaction_uid == OWNER
    assert value(outcome.attributes, "00741000") == "IN PROGRESS"
    assert "00081195" not in outcome.attributes  # kept beside the attributes, never in them
    (report,) = outcome.reports
    assert value(report, "00001002") == 1 and value(report, "00741000") == "IN PROGRESS"


def test_completing_needs_the_final_state_requirements() -> None:
    error = failure(lambda: change_state(stored(State.IN_PROGRESS), state("COMPLETED", OWNER), NOW))
    assert isinstance(error, Conflict) and "PerformedProcedureSequence" in str(error)
    done = change_state(stored(State.IN_PROGRESS, **performed()), state("COMPLETED", OWNER), NOW)
    assert done.state is State.COMPLETED and done.finished and done.transaction_uid is None


def test_the_owner_cancels_and_the_scp_fills_in_the_cancellation() -> None:
    outcome = change_state(stored(State.IN_PROGRESS), state("CANCELED", OWNER), NOW)
    progress = value(outcome.attributes, "00741002")
    assert value(progress, "00404052") == "20260105123000.000000"
    assert value(value(progress, "0074100E"), "00080100") == "110513"
    assert value(outcome.reports[0], "00741000") == "CANCELED"


@pytest.mark.parametrize("final", [State.COMPLETED, State.CANCELED])
def test_asking_for_the_final_state_it_is_in_succeeds_with_a_warning(final: State) -> None:
    outcome = change_state(stored(final), state(str(final), OWNER), NOW)
    assert not outcome.changed and not outcome.reports
    assert outcome.warning == (
        Warnings.ALREADY_COMPLETED if final is State.COMPLETED else Warnings.ALREADY_CANCELED
    )


def test_a_requested_state_outside_the_three_is_a_bad_request() -> None:
    for requested in ("SCHEDULED", "DONE", None):
        payload = {"00081195": element("UI", OWNER)}
        if requested:
            payload["00741000"] = element("CS", requested)
        assert isinstance(
            failure(lambda p=payload: change_state(stored(State.SCHEDULED), p, NOW)), BadRequest
        )


def test_cancellation_of_a_scheduled_workitem_passes_through_in_progress() -> None:
    reason = {"00741238": element("LT", "patient left")}
    outcome = request_cancellation(stored(State.SCHEDULED), reason, "RIS", NOW)
    assert outcome.state is State.CANCELED and outcome.finished
    assert [value(r, "00741000") for r in outcome.reports] == ["IN PROGRESS", "CANCELED"]
    assert value(outcome.reports[1], "00741238") == "patient left"


def test_cancellation_of_an_in_progress_workitem_asks_its_performer() -> None:
    outcome = request_cancellation(stored(State.IN_PROGRESS), {}, "RIS", NOW)
    assert outcome.state is State.IN_PROGRESS and not outcome.changed
    (report,) = outcome.reports
    assert value(report, "00001002") == 2 and value(report, "00741236") == "RIS"
    alone = stored(State.IN_PROGRESS)
    alone = StoredWorkitem(
        **{**{f: getattr(alone, f) for f in alone.__dataclass_fields__}, "subscribers": {}}
    )
    error = failure(lambda: request_cancellation(alone, {}, "RIS", NOW))
    assert isinstance(error, Conflict) and error.warning == Warnings.PERFORMER_UNREACHABLE


def test_cancellation_of_final_workitems() -> None:
    error = failure(lambda: request_cancellation(stored(State.COMPLETED), {}, "RIS", NOW))
    assert isinstance(error, Conflict) and error.warning == Warnings.CANCEL_COMPLETED
    again = request_cancellation(stored(State.CANCELED), {}, "RIS", NOW)
    assert again.warning == Warnings.ALREADY_CANCELED and not again.reports


def test_update_rules_follow_the_state() -> None:
    change = {"00741204": element("LO", "relabelled")}
    assert (
        value(update(stored(State.SCHEDULED), change, None).attributes, "00741204") == "relabelled"
    )
    assert isinstance(failure(lambda: update(stored(State.SCHEDULED), change, OWNER)), Conflict)
    missing = failure(lambda: update(stored(State.IN_PROGRESS), change, None))
    wrong = failure(lambda: update(stored(State.IN_PROGRESS), change, "1.2.9.2"))
    assert missing.warning == wrong.warning == Warnings.NOT_CLAIMED
    assert update(stored(State.IN_PROGRESS), change, OWNER).transaction_uid == OWNER
    for final in (State.COMPLETED, State.CANCELED):
        error = failure(lambda f=final: update(stored(f), change, OWNER))
        assert isinstance(error, BadRequest) and error.warning == Warnings.UPDATE_INCONSISTENT


def test_updates_cause_their_events() -> None:
    readiness = update(stored(State.SCHEDULED), {"00404041": element("CS", "UNAVAILABLE")}, None)
    assert [value(r, "00001002") for r in readiness.reports] == [1]
    progress = {"00741002": element("SQ", {"00741004": element("DS", 50)})}
    assert [
        value(r, "00001002") for r in update(stored(State.IN_PROGRESS), progress, OWNER).reports
    ] == [3]
    station = {"00404025": element("SQ", {"00080100": element("SH", "X")})}
    assert [
        value(r, "00001002") for r in update(stored(State.SCHEDULED), station, None).reports
    ] == [5]
    assert update(stored(State.SCHEDULED), {"00741204": element("LO", "x")}, None).reports == []


@pytest.mark.parametrize("tag", ["00741000", "00080018"])
def test_update_cannot_touch_the_state_or_the_identity(tag: str) -> None:
    change = {
        tag: element(
            "CS" if tag == "00741000" else "UI", "COMPLETED" if tag == "00741000" else "1.9"
        )
    }
    assert isinstance(failure(lambda: update(stored(State.SCHEDULED), change, None)), BadRequest)
