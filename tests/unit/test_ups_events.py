"""Event Reports (PS3.4 Table CC.2.4-1), the ups-events record, filters and AE titles."""

from __future__ import annotations

import pytest

from pacsflow.errors import BadRequest
from pacsflow.ports.workitems import Globals, GlobalSubscription
from pacsflow.ups import events
from pacsflow.ups.events import EventRecord, EventRecordError
from pacsflow.ups.requirements import check_create, value
from pacsflow.ups.subscriptions import check_ae_title, parse_filter, subscribers_of_new
from tests.support.workitems import code, element, workitem


def test_a_report_is_the_n_event_report_as_dicom_json() -> None:
    report = events.state_report("1.2.3", check_create(workitem(), "1.2.3", "x"))
    assert report == {
        "00000002": element("UI", "1.2.840.10008.5.1.4.34.6.1"),
        "00000100": element("US", 0x0100),
        "00001000": element("UI", "1.2.3"),
        "00001002": element("US", 1),
        "00404041": element("CS", "READY"),
        "00741000": element("CS", "SCHEDULED"),
    }


def test_the_other_event_types() -> None:
    request = {"00741238": element("LT", "wrong patient"), "0074100A": element("UR", "tel:1")}
    cancel = events.cancel_requested("1.2.3", "RIS", request)
    assert value(cancel, "00001002") == 2 and value(cancel, "00741236") == "RIS"
    assert value(cancel, "00741238") == "wrong patient" and "0074100A" in cancel
    status = events.scp_status_change("1.2.840.10008.5.1.4.34.5", "RESTARTED")
    assert value(status, "00001002") == 4 and value(status, "00741244") == "WARM START"
    assert "00741244" not in events.scp_status_change("1.2", "GOING DOWN")
    attributes = {"00404025": element("SQ", code("X", "99X", "x"))}
    assigned = events.assigned("1.2.3", attributes)
    assert value(assigned, "00001002") == 5 and "00404025" in assigned


def test_records_round_trip_and_reject_anything_else() -> None:
    record = EventRecord("site", "1.2.3", 4, ("A", "B"), {"00001002": element("US", 1)})
    assert EventRecord.from_json(record.to_json()) == record
    assert EventRecord.from_json(record.to_json().encode()) == record
    for data in (b"{}", b"not json", b'{"version": 2}', b"[]"):
        with pytest.raises(EventRecordError):
            EventRecord.from_json(data)


@pytest.mark.parametrize(
    ("title", "expected"),
    [("WATCHER", "WATCHER"), (" AI NODE 1 ", "AI NODE 1"), ("a" * 16, "a" * 16)],
)
def test_ae_titles(title: str, expected: str) -> None:
    assert check_ae_title(title) == expected


@pytest.mark.parametrize("title", ["", "   ", "a" * 17, "A\\B", "A\nB", "RÖNTGEN"])
def test_not_ae_titles(title: str) -> None:
    with pytest.raises(BadRequest):
        check_ae_title(title)


def test_filters_in_both_syntaxes() -> None:
    keys = parse_filter([("filter", "ProcedureStepLabel=Lung*,SOPInstanceUID=1.2,1.3")])
    assert keys == (("ProcedureStepLabel", "Lung*"), ("SOPInstanceUID", "1.2,1.3"))
    assert parse_filter([("deletionlock", "true"), ("ProcedureStepState", "SCHEDULED")]) == (
        ("ProcedureStepState", "SCHEDULED"),
    )
    for bad in ([], [("filter", "nonsense")], [("NotAnAttribute", "x")], [("limit", "3")]):
        with pytest.raises(BadRequest):
            parse_filter(bad)


def test_new_workitems_go_to_active_matching_global_subscribers() -> None:
    globals_ = Globals(
        "s",
        {
            "ALL": GlobalSubscription("ALL", deletion_lock=True),
            "LUNG": GlobalSubscription(
                "LUNG", "filtered", False, (("ProcedureStepLabel", "Lung*"),)
            ),
            "LIVER": GlobalSubscription(
                "LIVER", "filtered", False, (("ProcedureStepLabel", "Liver*"),)
            ),
            "PAUSED": GlobalSubscription("PAUSED", suspended=True),
        },
    )
    attributes = check_create(workitem(), "1.2.3", "x")  # "Lung nodule detection"
    assert subscribers_of_new(globals_, attributes) == {"ALL": True, "LUNG": False}
