"""Records on the topics (``pacsflow.pipeline.records``): versioned, round-tripped."""

from __future__ import annotations

import base64

import orjson
import pytest

from pacsflow.pipeline.records import (
    ENVELOPE,
    DeadLetter,
    IngestEvent,
    IngestRecord,
    RecordError,
    decode_ingest,
)

PAYLOAD = bytes(range(256)) * 3  # every byte value, including NUL and non-UTF-8 bytes


def _record(**changes: object) -> IngestRecord:
    fields: dict[str, object] = {
        "request_id": "3f1c0a9e",
        "part": 2,
        "site": "default",
        "study_uid": "1.2.3",
        "series_uid": "1.2.3.4",
        "sop_uid": "1.2.3.4.5",
        "sop_class_uid": "1.2.840.10008.5.1.4.1.1.2",
        "transfer_syntax": "1.2.840.10008.1.2.1",
        "size": len(PAYLOAD),
        "sha256": "ab" * 32,
        "received_at": "2024-01-02T03:04:05.678901+00:00",
        **changes,
    }
    return IngestRecord(**fields)  # type: ignore[arg-type]


def test_ingest_record_with_inline_bytes_round_trips_as_version_1() -> None:
    record = _record(inline=PAYLOAD)

    raw = record.to_bytes(1)

    assert IngestRecord.from_bytes(raw) == record
    assert decode_ingest(raw) == record
    data = orjson.loads(raw)
    assert data["version"] == 1
    assert base64.b64decode(data["inline"]) == PAYLOAD
    assert data["staged_key"] is None


def test_inline_bytes_travel_as_they_are_in_version_2() -> None:
    record = _record(inline=PAYLOAD)

    raw = record.to_bytes()

    assert raw.startswith(ENVELOPE) and raw.endswith(PAYLOAD)
    length = int.from_bytes(raw[4:8], "big")
    header = orjson.loads(raw[8 : 8 + length])
    assert header["version"] == 2 and header["inline"] == len(PAYLOAD)
    assert header["sop_uid"] == "1.2.3.4.5" and header["staged_key"] is None
    assert len(raw) == 8 + length + len(PAYLOAD)
    assert IngestRecord.from_bytes(raw) == record
    assert decode_ingest(raw) == record
    assert decode_ingest(record.to_bytes(1)) == decode_ingest(raw)


def test_a_claim_check_stays_version_1() -> None:
    record = _record(staged_key="default/staging/3f1c0a9e.000002.dcm")

    assert record.to_bytes() == record.to_bytes(1)
    assert orjson.loads(record.to_bytes())["version"] == 1


def _v2(header: dict[str, object], payload: bytes) -> bytes:
    encoded = orjson.dumps(header)
    return ENVELOPE + len(encoded).to_bytes(4, "big") + encoded + payload


GOOD_V2 = _record(inline=PAYLOAD).to_bytes()


@pytest.mark.parametrize(
    "raw",
    [
        GOOD_V2[:-1],
        GOOD_V2 + b"\x00",
        GOOD_V2[:6],
        ENVELOPE + (1 << 30).to_bytes(4, "big") + GOOD_V2[8:],
        ENVELOPE + (3).to_bytes(4, "big") + b"not" + PAYLOAD,
        b"PFR\x03" + GOOD_V2[4:],
        _v2({**_record().summary(), "version": 1, "inline": 1}, b"x"),
        _v2({**_record().summary(), "version": 2, "inline": "1"}, b"x"),
        _v2({**_record().summary(), "version": 2, "inline": True}, b"x"),
        _v2({"version": 2, "inline": 1}, b"x"),
        _v2([2, 1], b"x"),  # type: ignore[arg-type]
    ],
    ids=[
        "a byte short",
        "a byte more",
        "cut in the length",
        "header longer than the record",
        "header not JSON",
        "unknown envelope version",
        "header says version 1",
        "count as a string",
        "count as a boolean",
        "no fields",
        "header not an object",
    ],
)
def test_a_broken_version_2_record_raises_record_error(raw: bytes) -> None:
    with pytest.raises(RecordError):
        IngestRecord.from_bytes(raw)
    with pytest.raises(RecordError):
        decode_ingest(raw)


def test_ingest_record_with_staged_key_round_trips() -> None:
    record = _record(staged_key="default/staging/3f1c0a9e/000002.dcm")

    raw = record.to_bytes()

    assert IngestRecord.from_bytes(raw) == record
    data = orjson.loads(raw)
    assert data["inline"] is None
    assert data["staged_key"] == "default/staging/3f1c0a9e/000002.dcm"


@pytest.mark.parametrize("version", [1, 2])
def test_empty_inline_payload_is_not_lost(version: int) -> None:
    record = _record(inline=b"", size=0)

    decoded = IngestRecord.from_bytes(record.to_bytes(version))

    assert decoded.inline == b""


def test_summary_leaves_out_the_payload() -> None:
    record = _record(inline=PAYLOAD)

    summary = record.summary()

    assert "inline" not in summary
    assert summary["sop_uid"] == "1.2.3.4.5"
    assert summary["staged_key"] is None
    orjson.dumps(summary)  # travels inside a dead letter


def _event(**changes: object) -> IngestEvent:
    fields: dict[str, object] = {
        "request_id": "3f1c0a9e",
        "part": 1,
        "site": "default",
        "study_uid": "1.2.3",
        "series_uid": "1.2.3.4",
        "sop_uid": "1.2.3.4.5",
        "sop_class_uid": "1.2.840.10008.5.1.4.1.1.2",
        "status": "stored",
        **changes,
    }
    return IngestEvent(**fields)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    "event",
    [
        _event(warning_reason=0xB100, message="replaced"),
        _event(status="failed", failure_reason=0xC000, message="malformed", sop_uid=""),
    ],
    ids=["stored", "failed"],
)
def test_ingest_event_round_trips(event: IngestEvent) -> None:
    assert IngestEvent.from_bytes(event.to_bytes()) == event
    assert orjson.loads(event.to_bytes())["version"] == 1


@pytest.mark.parametrize("record", [_record(staged_key="k").summary(), None], ids=["with", "none"])
def test_dead_letter_round_trips(record: dict[str, object] | None) -> None:
    letter = DeadLetter("ingest", 3, 42, 0xC000, "not an ingest record", record)

    assert DeadLetter.from_bytes(letter.to_bytes()) == letter


def _with(raw: bytes, **changes: object) -> bytes:
    data = orjson.loads(raw)
    data.update(changes)
    return orjson.dumps({k: v for k, v in data.items() if v is not ...})


RECORDS = {
    "IngestRecord": (IngestRecord, _record(inline=b"x").to_bytes(1)),
    "IngestEvent": (IngestEvent, _event().to_bytes()),
    "DeadLetter": (DeadLetter, DeadLetter("ingest", 0, 0, 0xC000, "m", None).to_bytes()),
}


@pytest.mark.parametrize("kind", list(RECORDS))
@pytest.mark.parametrize("version", [2, 0, "1", None, ...], ids=["2", "0", "str", "null", "absent"])
def test_unknown_version_raises_record_error(kind: str, version: object) -> None:
    cls, raw = RECORDS[kind]
    cls.from_bytes(raw)  # the unchanged record decodes

    with pytest.raises(RecordError):
        cls.from_bytes(_with(raw, version=version))


@pytest.mark.parametrize("kind", list(RECORDS))
@pytest.mark.parametrize(
    "raw",
    [b"", b"not json", b"\x80\x04pickle", b"[1, 2]", b'"text"', b'{"version": 1}'],
    ids=["empty", "text", "pickle", "array", "string", "no fields"],
)
def test_garbage_raises_record_error(kind: str, raw: bytes) -> None:
    cls, _ = RECORDS[kind]

    with pytest.raises(RecordError):
        cls.from_bytes(raw)


def test_a_record_of_another_kind_raises_record_error() -> None:
    with pytest.raises(RecordError):
        IngestEvent.from_bytes(_record(inline=b"x").to_bytes())
    with pytest.raises(RecordError):
        DeadLetter.from_bytes(_record(inline=b"x").to_bytes())


def test_inline_that_is_not_base64_raises_record_error() -> None:
    raw = _with(_record(inline=b"x").to_bytes(1), inline="abc")  # bad padding

    with pytest.raises(RecordError):
        IngestRecord.from_bytes(raw)
