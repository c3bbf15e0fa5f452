"""DICOM JSON attributes as typed Parquet columns (pacsflow.export.columns, tables)."""

from __future__ import annotations

from datetime import date

import pyarrow as pa
import pytest

from pacsflow.export.columns import column_for
from pacsflow.export.tables import TableSpec, attribute_columns
from pacsflow.ports.index import IndexedEntity, InstanceDocument
from pacsflow.query.model import STUDY_ROOT_LEVELS, Level


def _value(tag: str, element: dict[str, object]) -> object:
    column = column_for(tag)
    assert column is not None
    return column.value({tag: element})


@pytest.mark.parametrize(
    ("tag", "element", "expected"),
    [
        ("00080020", {"vr": "DA", "Value": ["20240229"]}, date(2024, 2, 29)),
        ("00080020", {"vr": "DA", "Value": ["2024.02.29"]}, date(2024, 2, 29)),
        ("00080020", {"vr": "DA", "Value": ["20230229"]}, None),  # no such day
        ("00080020", {"vr": "DA"}, None),
        ("00200013", {"vr": "IS", "Value": [7]}, 7),
        ("00200013", {"vr": "IS", "Value": ["12.0"]}, 12),
        ("00280008", {"vr": "IS", "Value": ["1A"]}, None),
        ("00280010", {"vr": "US", "Value": [512]}, 512),
        ("00280030", {"vr": "DS", "Value": [0.5, "0.25"]}, [0.5, 0.25]),
        ("00080008", {"vr": "CS", "Value": ["ORIGINAL", "PRIMARY"]}, ["ORIGINAL", "PRIMARY"]),
        ("00100010", {"vr": "PN", "Value": [{"Alphabetic": "DOE^JANE"}]}, "DOE^JANE"),
        (
            "00100010",
            {"vr": "PN", "Value": [{"Alphabetic": "Yamada^Tarou", "Ideographic": "山田^太郎"}]},
            "Yamada^Tarou=山田^太郎",
        ),
        ("00081030", {"vr": "LO", "Value": ["HEAD", "EXTRA"]}, "HEAD"),  # VM 1
        (
            "00081032",
            {"vr": "SQ", "Value": [{"00080100": {"vr": "SH", "Value": ["X"]}}]},
            '[{"00080100":{"vr":"SH","Value":["X"]}}]',
        ),
    ],
)
def test_values_by_vr(tag: str, element: dict[str, object], expected: object) -> None:
    assert _value(tag, element) == expected


def test_columns_have_keywords_and_types() -> None:
    spacing = column_for("00280030")
    assert spacing is not None
    assert (spacing.name, spacing.type) == ("PixelSpacing", pa.list_(pa.float64()))
    date_column = column_for("00080020")
    assert date_column is not None and date_column.type == pa.date32()


@pytest.mark.parametrize(
    "tag",
    ["00091001", "00020010", "00080000", "7FE00010", "00291010", "12345678"],
    ids=["private", "file meta", "group length", "pixel data", "private", "unknown"],
)
def test_attributes_without_a_column(tag: str) -> None:
    assert column_for(tag) is None


def test_instance_tables_keep_instance_attributes_and_stored_facts() -> None:
    attributes = {
        "00080018": {"vr": "UI", "Value": ["1.2.3.4"]},
        "00080020": {"vr": "DA", "Value": ["20240102"]},  # study level: not in this table
        "00200013": {"vr": "IS", "Value": [3]},
        "52009229": {"vr": "SQ", "Value": [{}]},  # functional groups: not in "all"
    }
    columns = attribute_columns(attributes, Level.INSTANCE, chosen=False)
    assert [c.name for c in columns] == ["InstanceNumber"]
    spec = TableSpec(Level.INSTANCE, columns, "day")
    document = InstanceDocument(
        "s", "1.2", "1.2.3", "1.2.3.4", "1.2.840.10008.5.1.4.1.1.2", "1.2.840.10008.1.2.1",
        "key", 99, "ab" * 32, attributes,
    )  # fmt: skip
    entity = IndexedEntity("1.2.3.4", "1.2", "1.2.3", attributes, document)
    batch = spec.batch([entity], {"1.2": date(2024, 1, 2)})
    assert batch.to_pylist() == [
        {
            "SOPInstanceUID": "1.2.3.4",
            "SeriesInstanceUID": "1.2.3",
            "StudyInstanceUID": "1.2",
            "SOPClassUID": "1.2.840.10008.5.1.4.1.1.2",
            "TransferSyntaxUID": "1.2.840.10008.1.2.1",
            "size_bytes": 99,
            "sha256": "ab" * 32,
            "InstanceNumber": 3,
            "year": 2024,
            "month": 1,
            "day": 2,
        }
    ]
    no_date = spec.batch([entity], {})
    assert no_date.to_pylist()[0]["year"] == 0


def test_chosen_attributes_go_to_the_table_of_their_level() -> None:
    chosen = {"00100020", "00080060", "00200013"}  # PatientID, Modality, InstanceNumber
    names = {
        level: [c.name for c in attribute_columns(chosen, level, chosen=True)]
        for level in STUDY_ROOT_LEVELS
    }
    assert names == {
        Level.STUDY: ["PatientID"],
        Level.SERIES: ["Modality"],
        Level.INSTANCE: ["InstanceNumber"],
    }
