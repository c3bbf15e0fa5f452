"""DELETE records on ``ingest`` and IOCM rejection notes: the record contract, the KOS reading."""

from __future__ import annotations

import orjson
import pytest
from pydicom.dataset import Dataset

from pacsflow.pipeline.records import (
    DeleteRecord,
    IngestRecord,
    RecordError,
    decode_ingest,
)
from pacsflow.pipeline.rejection import Rejected, rejected_instances, rejection_title
from tests.support.deletion import rejection_note


def _delete(**changes: object) -> DeleteRecord:
    fields: dict[str, object] = {
        "request_id": "9a",
        "site": "default",
        "study_uid": "1.2.3",
        "series_uid": "1.2.3.4",
        "sop_uid": None,
        "requested_at": "2026-12-07T06:00:00+00:00",
        **changes,
    }
    return DeleteRecord(**fields)  # type: ignore[arg-type]


def test_a_delete_record_round_trips_and_is_told_from_a_store() -> None:
    record = _delete()

    raw = record.to_bytes()

    assert orjson.loads(raw)["kind"] == "delete"
    assert orjson.loads(raw)["version"] == 1
    assert decode_ingest(raw) == record
    assert DeleteRecord.from_bytes(raw) == record


def test_a_store_record_still_decodes_as_a_store() -> None:
    store = IngestRecord(
        "r", 1, "default", "1.2", "1.2.3", "1.2.3.4", "1.2.840.10008.5.1.4.1.1.7",
        "1.2.840.10008.1.2.1", 3, "00" * 32, "2026-12-07T06:00:00+00:00", inline=b"abc",
    )  # fmt: skip

    assert decode_ingest(store.to_bytes()) == store


def test_a_store_record_is_not_a_delete_record() -> None:
    store = orjson.dumps({"version": 1, "request_id": "r"})

    with pytest.raises(RecordError):
        DeleteRecord.from_bytes(store)
    with pytest.raises(RecordError):
        decode_ingest(orjson.dumps({"version": 1, "kind": "delete", "site": "default"}))
    with pytest.raises(RecordError):
        decode_ingest(orjson.dumps({"version": 2, "kind": "delete"}))


def test_the_event_of_a_delete_names_what_it_deleted() -> None:
    event = _delete(sop_uid="1.2.3.4.5").event("deleted", "1 instances deleted")

    assert (event.request_id, event.part, event.status) == ("9a", 0, "deleted")
    assert (event.study_uid, event.series_uid, event.sop_uid) == ("1.2.3", "1.2.3.4", "1.2.3.4.5")


@pytest.mark.parametrize(
    ("code", "title"),
    [
        ("113001", "Rejected for Quality Reasons"),
        ("113037", "Rejected for Patient Safety Reasons"),
        ("113038", "Incorrect Modality Worklist Entry"),
        ("113039", "Data Retention Policy Expired"),
    ],
)
def test_a_kos_titled_from_cid_7011_is_a_rejection_note(code: str, title: str) -> None:
    note = rejection_note(code, "1.2.3", [("1.2.3.4", "1.2.3.4.5"), ("1.2.3.4", "1.2.3.4.6")])

    metadata = note.to_json_dict()

    assert rejection_title(metadata) == title
    assert list(rejected_instances(metadata)) == [
        Rejected("1.2.3", "1.2.3.4", "1.2.3.4.5"),
        Rejected("1.2.3", "1.2.3.4", "1.2.3.4.6"),
    ]


def test_a_kos_of_another_title_rejects_nothing() -> None:
    note = rejection_note("113000", "1.2.3", [("1.2.3.4", "1.2.3.4.5")])  # Of Interest

    assert rejection_title(note.to_json_dict()) is None
    assert list(rejected_instances(note.to_json_dict())) == []
    assert list(rejected_instances(Dataset().to_json_dict())) == []


def test_references_without_valid_uids_are_left_out() -> None:
    with pytest.warns(UserWarning, match="VR UI"):  # pydicom says so as it sets the value
        note = rejection_note(
            "113001", "1.2.3", [("1.2.3.4", "not/a uid"), ("1.2.3.4", "1.2.3.4.7")]
        )

    assert list(rejected_instances(note.to_json_dict())) == [
        Rejected("1.2.3", "1.2.3.4", "1.2.3.4.7")
    ]
