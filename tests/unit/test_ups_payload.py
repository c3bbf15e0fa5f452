"""Worklist payloads: DICOM JSON/XML checked per attribute, and Table CC.2.5-3 on create."""

from __future__ import annotations

from typing import Any

import orjson
import pytest

from pacsflow.dicom.xml import dataset_to_xml
from pacsflow.errors import BadRequest, UnsupportedMediaType
from pacsflow.ups.dataset import parse_payload
from pacsflow.ups.model import State
from pacsflow.ups.requirements import CREATE_TYPE_2, check_create, final_state_problems, value
from tests.support.workitems import element, performed, workitem

JSON = "application/dicom+json"


def bad(document: Any, media: str = JSON) -> str:
    body = document if isinstance(document, bytes) else orjson.dumps(document)
    with pytest.raises(BadRequest) as info:
        parse_payload(body, media)
    return str(info.value)


def test_a_valid_workitem_reads_the_same_from_json_and_xml() -> None:
    dataset = workitem("1.2.3")
    assert parse_payload(orjson.dumps(dataset), JSON) == dataset
    assert parse_payload(orjson.dumps([dataset]), "application/json") == dataset
    assert parse_payload(dataset_to_xml(dataset), "application/dicom+xml") == dataset


@pytest.mark.parametrize(
    ("document", "reason"),
    [
        (b"{not json", "not valid JSON"),
        (b"[]", "one data set, not 0"),
        (b'"text"', "an object"),
        ({"0074100": element("CS", "X")}, "is not a tag"),
        ({"00741000": {"Value": ["SCHEDULED"]}}, "is not a VR"),
        ({"00741000": element("UI", "1.2.3")}, "the VR is CS, not UI"),
        ({"00741000": element("CS", "scheduled")}, "Invalid value for VR CS"),
        ({"00404005": element("DT", "2026-01-05")}, "Invalid value for VR DT"),
        ({"00080018": element("UI", "1.2.x")}, "Invalid value for VR UI"),
        ({"00741204": element("LO", "x" * 65)}, "exceeds the maximum length"),
        ({"00741200": {"vr": "CS", "Value": "HIGH"}}, "Value must be an array"),
        ({"00100010": element("PN", "Doe^Jane")}, "a PN value is an object"),
        ({"00741004": element("DS", [1])}, "a DS value is a number"),
        ({"00000002": element("UI", "1.2")}, "not attributes"),
        ({"00404021": element("SQ", "item")}, "item 1 is not a data set"),
        ({"00404021": element("SQ", {"00080018": element("UI", "bad uid")})}, "item 1"),
        ({"7FE00010": {"vr": "OW", "BulkDataURI": "http://x"}}, "bulk data by reference"),
    ],
)
def test_malformed_payloads_are_bad_requests_naming_the_attribute(
    document: Any, reason: str
) -> None:
    assert reason in bad(document)


def test_other_media_types_are_unsupported() -> None:
    with pytest.raises(UnsupportedMediaType):
        parse_payload(orjson.dumps(workitem()), "text/plain")
    assert "Native DICOM Model" in bad(b"<oops", "application/dicom+xml")


def test_create_adds_the_identity_the_worklist_label_and_empty_type_2() -> None:
    created = check_create(workitem(), "1.2.3", "reading room")
    assert value(created, "00080016") == "1.2.840.10008.5.1.4.34.6.1"
    assert value(created, "00080018") == "1.2.3"
    assert value(created, "00741202") == "reading room"
    assert all(tag in created for tag in CREATE_TYPE_2)
    assert value(created, "00100020") == "PID-1"  # given values are kept


@pytest.mark.parametrize(
    ("change", "reason"),
    [
        ({"00741204": element("LO")}, "ProcedureStepLabel"),
        ({"00404005": None}, "ScheduledProcedureStepStartDateTime"),
        ({"00741000": element("CS", "IN PROGRESS")}, "SCHEDULED, not 'IN PROGRESS'"),
        ({"00741200": element("CS", "URGENT")}, "HIGH, MEDIUM, LOW"),
        ({"00404041": element("CS", "MAYBE")}, "READY, UNAVAILABLE, INCOMPLETE"),
        ({"00081195": element("UI", "1.2")}, "TransactionUID"),
        ({"00080016": element("UI", "1.2.840.10008.5.1.4.1.1.2")}, "SOPClassUID"),
    ],
)
def test_create_enforces_table_cc_2_5_3(change: dict[str, Any], reason: str) -> None:
    dataset = workitem()
    for tag, given in change.items():
        if given is None:
            dataset.pop(tag)
        else:
            dataset[tag] = given
    with pytest.raises(BadRequest, match=reason):
        check_create(dataset, "1.2.3", "pacsflow")


def test_final_state_requirements() -> None:
    created = check_create(workitem(), "1.2.3", "pacsflow")
    assert final_state_problems(created, State.COMPLETED) == [
        "UnifiedProcedureStepPerformedProcedureSequence with one item"
    ]
    assert final_state_problems({**created, **performed()}, State.COMPLETED) == []
    partial = performed()
    del partial["00741216"]["Value"][0]["00404051"]
    assert final_state_problems({**created, **partial}, State.COMPLETED) == [
        "UnifiedProcedureStepPerformedProcedureSequence > PerformedProcedureStepEndDateTime"
    ]
    assert len(final_state_problems(created, State.CANCELED)) == 2
