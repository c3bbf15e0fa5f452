"""Index mappings and documents of the Elasticsearch adapter (``pacsflow.adapters.es_index``)."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import pytest

from pacsflow.adapters.es_index import (
    index_bodies,
    instance_from_source,
    instance_source,
    level_source,
)
from pacsflow.dicom.levels import level_attributes, series_derived, study_derived
from pacsflow.ports.index import InstanceDocument
from pacsflow.query.model import Level

CT = "1.2.840.10008.5.1.4.1.1.2"
MR = "1.2.840.10008.5.1.4.1.1.4"
EXPLICIT_LE = "1.2.840.10008.1.2.1"
KEYWORD = {"type": "keyword"}
TERMS = {"type": "keyword", "doc_values": False}
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
                    "terms": TERMS,
                    "attributes": STORED_ONLY,
                    "size": {"type": "long"},
                },
            }
        },
        "pacsflow-studies": {
            "mappings": {
                "dynamic": "strict",
                "properties": {
                    "site": KEYWORD,
                    "study_uid": KEYWORD,
                    "terms": TERMS,
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
                    "terms": TERMS,
                    "attributes": STORED_ONLY,
                },
            }
        },
    }


def test_index_names_follow_the_prefix() -> None:
    assert list(index_bodies("test-1")) == ["test-1-instances", "test-1-studies", "test-1-series"]


def test_instance_source_keeps_every_field_the_attributes_whole_and_the_terms() -> None:
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
        # instance-level matching keys only (PixelSpacing is a return key)
        "terms": [f"00080016={CT}", "00080018=1.2.3.4.5", "00200013=1"],
    }


def test_instance_source_round_trips() -> None:
    assert instance_from_source(instance_source(DOCUMENT)) == DOCUMENT


def test_instance_source_without_modality_has_no_modality_field() -> None:
    attributes = {k: v for k, v in ATTRIBUTES.items() if k != "00080060"}
    assert "modality" not in instance_source(replace(DOCUMENT, attributes=attributes))


def test_study_source_has_the_study_attributes_their_derived_ones_and_terms() -> None:
    attributes = {
        **level_attributes(ATTRIBUTES, "study"),
        **study_derived(2, 3, ["MR", "CT"], [CT, MR]),
    }

    assert level_source(Level.STUDY, "default", "1.2.3", "", attributes) == {
        "site": "default",
        "study_uid": "1.2.3",
        "attributes": attributes,
        "terms": [
            "00080020+00080030=20240102000000.000000",  # combined date-time, no StudyTime
            "00080020=20240102",
            "00080050=ACC-7",
            "00080061=CT",  # ModalitiesInStudy is matchable...
            "00080061=MR",
            f"00080062={CT}",
            f"00080062={MR}",  # ...the numbers of related series and instances are not
            "00100010=doe^john",
            "00100010~doe",
            "00100010~john",
            "00100020=PID-1",
            "0020000D=1.2.3",
        ],
    }


def test_series_source_has_the_series_attributes_the_instance_count_and_terms() -> None:
    attributes = {**level_attributes(ATTRIBUTES, "series"), **series_derived(4)}

    assert level_source(Level.SERIES, "default", "1.2.3", "1.2.3.4", attributes) == {
        "site": "default",
        "study_uid": "1.2.3",
        "series_uid": "1.2.3.4",
        "attributes": attributes,
        "terms": ["00080060=CT", "0008103E=AXIAL 5mm", "0020000E=1.2.3.4"],
    }


def test_there_are_no_instance_documents_in_the_level_indices() -> None:
    with pytest.raises(ValueError, match="instance"):
        level_source(Level.INSTANCE, "default", "1.2.3", "1.2.3.4", {})
