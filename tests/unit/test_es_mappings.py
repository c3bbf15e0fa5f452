"""Index mappings and documents of the Elasticsearch adapter (``pacsflow.adapters.es_index``)."""

from __future__ import annotations

from dataclasses import asdict, replace
from typing import Any

import pytest

from pacsflow.adapters.es_index import (
    index_bodies,
    instance_from_source,
    instance_source,
    series_source,
    study_source,
    tm_seconds,
)
from pacsflow.ports.index import InstanceDocument

CT = "1.2.840.10008.5.1.4.1.1.2"
EXPLICIT_LE = "1.2.840.10008.1.2.1"
KEYWORD = {"type": "keyword"}
STORED_ONLY = {"type": "object", "enabled": False}

ATTRIBUTES: dict[str, Any] = {
    "00080016": {"vr": "UI", "Value": [CT]},
    "00080018": {"vr": "UI", "Value": ["1.2.3.4.5"]},
    "00080020": {"vr": "DA", "Value": ["20240102"]},
    "00080050": {"vr": "SH", "Value": ["ACC-7"]},
    "00080060": {"vr": "CS", "Value": ["CT"]},
    "0008103E": {"vr": "LO", "Value": ["AXIAL 5mm"]},
    "00100010": {"vr": "PN", "Value": [{"Alphabetic": "Doe^John"}]},
    "00100020": {"vr": "LO", "Value": ["PID-1"]},
    "0020000D": {"vr": "UI", "Value": ["1.2.3"]},
    "0020000E": {"vr": "UI", "Value": ["1.2.3.4"]},
    "00200013": {"vr": "IS", "Value": [1]},
    "00280030": {"vr": "DS", "Value": [0.5, 0.5]},
}
DOCUMENT = InstanceDocument(
    site="default",
    study_uid="1.2.3",
    series_uid="1.2.3.4",
    sop_uid="1.2.3.4.5",
    sop_class_uid=CT,
    transfer_syntax=EXPLICIT_LE,
    object_key="default/studies/1.2.3/series/1.2.3.4/instances/1.2.3.4.5.dcm",
    size=1234,
    sha256="ab" * 32,
    attributes=ATTRIBUTES,
)


def test_index_bodies() -> None:
    assert index_bodies("pacsflow") == {
        "pacsflow-instances": {
            "mappings": {
                "dynamic": "strict",
                "properties": {
                    "site": KEYWORD,
                    "study_uid": KEYWORD,
                    "series_uid": KEYWORD,
                    "sop_uid": KEYWORD,
                    "sop_class_uid": KEYWORD,
                    "transfer_syntax": KEYWORD,
                    "modality": KEYWORD,
                    "object_key": KEYWORD,
                    "sha256": KEYWORD,
                    "size": {"type": "long"},
                    "attributes": STORED_ONLY,
                },
            }
        },
        "pacsflow-studies": {
            "settings": {
                "analysis": {
                    "normalizer": {
                        "pacsflow_lowercase": {"type": "custom", "filter": ["lowercase"]}
                    }
                }
            },
            "mappings": {
                "dynamic": "strict",
                "properties": {
                    "site": KEYWORD,
                    "study_uid": KEYWORD,
                    "patient_name": {"type": "keyword", "normalizer": "pacsflow_lowercase"},
                    "patient_id": KEYWORD,
                    "study_date": {"type": "date", "format": "yyyyMMdd"},
                    "study_time": {"type": "double"},
                    "accession_number": KEYWORD,
                    "modalities": KEYWORD,
                    "attributes": STORED_ONLY,
                },
            },
        },
        "pacsflow-series": {
            "mappings": {
                "dynamic": "strict",
                "properties": {
                    "site": KEYWORD,
                    "study_uid": KEYWORD,
                    "series_uid": KEYWORD,
                    "modality": KEYWORD,
                    "attributes": STORED_ONLY,
                },
            }
        },
    }


def test_index_names_follow_the_prefix() -> None:
    assert list(index_bodies("test-1")) == ["test-1-instances", "test-1-studies", "test-1-series"]


def test_instance_source_keeps_every_field_and_the_attributes_whole() -> None:
    assert instance_source(DOCUMENT) == {
        "site": "default",
        "study_uid": "1.2.3",
        "series_uid": "1.2.3.4",
        "sop_uid": "1.2.3.4.5",
        "sop_class_uid": CT,
        "transfer_syntax": EXPLICIT_LE,
        "modality": "CT",
        "object_key": "default/studies/1.2.3/series/1.2.3.4/instances/1.2.3.4.5.dcm",
        "size": 1234,
        "sha256": "ab" * 32,
        "attributes": ATTRIBUTES,
    }


def test_instance_source_round_trips() -> None:
    assert instance_from_source(instance_source(DOCUMENT)) == DOCUMENT


def test_study_source_has_the_study_level_attributes_and_query_fields() -> None:
    assert study_source(DOCUMENT, ["MR", "CT", "", "CT"]) == {
        "site": "default",
        "study_uid": "1.2.3",
        "patient_name": ["Doe^John"],
        "patient_id": "PID-1",
        "study_date": "20240102",
        "accession_number": "ACC-7",
        "modalities": ["CT", "MR"],
        "attributes": {
            "00080020": {"vr": "DA", "Value": ["20240102"]},
            "00080050": {"vr": "SH", "Value": ["ACC-7"]},
            "00100010": {"vr": "PN", "Value": [{"Alphabetic": "Doe^John"}]},
            "00100020": {"vr": "LO", "Value": ["PID-1"]},
            "0020000D": {"vr": "UI", "Value": ["1.2.3"]},
        },
    }


def test_study_source_leaves_out_absent_and_malformed_values() -> None:
    attributes = {
        "00080020": {"vr": "DA", "Value": ["2024-01-02"]},
        "00080050": {"vr": "SH"},
        "00100010": {"vr": "PN", "Value": [{"Ideographic": "山田^太郎"}]},
        "0020000D": {"vr": "UI", "Value": ["1.2.3"]},
    }
    document = replace(DOCUMENT, attributes=attributes)

    assert study_source(document, []) == {
        "site": "default",
        "study_uid": "1.2.3",
        "modalities": [],
        "attributes": attributes,
    }


def test_series_source_has_the_series_level_attributes() -> None:
    assert series_source(DOCUMENT) == {
        "site": "default",
        "study_uid": "1.2.3",
        "series_uid": "1.2.3.4",
        "modality": "CT",
        "attributes": {
            "00080060": {"vr": "CS", "Value": ["CT"]},
            "0008103E": {"vr": "LO", "Value": ["AXIAL 5mm"]},
            "0020000E": {"vr": "UI", "Value": ["1.2.3.4"]},
        },
    }


@pytest.mark.parametrize(
    ("value", "seconds"),
    [
        ("07", 25200.0),
        ("0730", 27000.0),
        ("073015", 27015.0),
        ("073015.5", 27015.5),
        ("235960.000001", 86400.000001),
        (" 1200 ", 43200.0),
        ("", None),
        ("7", None),
        ("2400", None),
        ("0760", None),
        ("12:00", None),
        ("120000.1234567", None),
    ],
)
def test_tm_values_become_seconds_after_midnight(value: str, seconds: float | None) -> None:
    result = tm_seconds(value)
    assert result == pytest.approx(seconds) if seconds is not None else result is None


def test_study_source_indexes_study_time_as_seconds() -> None:
    attributes = {**ATTRIBUTES, "00080030": {"vr": "TM", "Value": ["101530.25"]}}
    document = InstanceDocument(**{**asdict(DOCUMENT), "attributes": attributes})
    assert study_source(document, ["CT"])["study_time"] == pytest.approx(
        10 * 3600 + 15 * 60 + 30.25
    )
