"""Shaping of QIDO-RS results (PS3.18 10.6.3): pacsflow.qido.shape."""

from __future__ import annotations

from pacsflow.qido.search import shape
from pacsflow.query.model import Level
from pacsflow.query.parse import parse_query

ROOT = "http://h/dicom-web"
RECORD = {
    "0020000D": {"vr": "UI", "Value": ["1.2"]},
    "0020000E": {"vr": "UI", "Value": ["1.2.3"]},
    "00080018": {"vr": "UI", "Value": ["1.2.3.4"]},
    "00080016": {"vr": "UI", "Value": ["1.2.840.10008.5.1.4.1.1.2"]},
    "00100010": {"vr": "PN", "Value": [{"Alphabetic": "Doe^Jane"}]},
    "00081030": {"vr": "LO", "Value": ["CT HEAD"]},
    "00180050": {"vr": "DS", "Value": [1.25]},
    "00080060": {"vr": "CS", "Value": ["CT"]},
}


def test_study_results_hold_the_required_attributes_empty_when_absent() -> None:
    result = shape(RECORD, parse_query(Level.STUDY, []), ROOT)
    assert result["00100010"] == RECORD["00100010"]
    assert result["00080020"] == {"vr": "DA"}  # StudyDate: required, absent → empty
    assert "00080005" not in result  # SpecificCharacterSet: only if present
    assert "00081030" not in result and "00180050" not in result
    assert result["00081190"] == {"vr": "UR", "Value": [f"{ROOT}/studies/1.2"]}
    assert result["00080056"] == {"vr": "CS", "Value": ["ONLINE"]}
    assert list(result) == sorted(result)


def test_includefield_and_match_keys_are_returned() -> None:
    query = parse_query(
        Level.STUDY, [("includefield", "StudyDescription"), ("AccessionNumber", "")]
    )
    result = shape(RECORD, query, ROOT)
    assert result["00081030"] == RECORD["00081030"]
    assert result["00080050"] == {"vr": "SH"}


def test_instances_of_all_studies_carry_study_and_series_attributes() -> None:
    result = shape(RECORD, parse_query(Level.INSTANCE, []), ROOT)
    assert result["00100010"] == RECORD["00100010"]  # study level
    assert result["00080060"] == RECORD["00080060"]  # series level
    url = f"{ROOT}/studies/1.2/series/1.2.3/instances/1.2.3.4"
    assert result["00081190"]["Value"] == [url]
    scoped = shape(
        RECORD, parse_query(Level.INSTANCE, [], study_uid="1.2", series_uid="1.2.3"), ROOT
    )
    assert "00100010" not in scoped and "00080060" not in scoped


def test_includefield_all_returns_everything() -> None:
    result = shape(RECORD, parse_query(Level.INSTANCE, [("includefield", "all")]), ROOT)
    assert result["00180050"] == RECORD["00180050"]
