"""The ingest processor (streams/ingest.py) on the embedded bus: poison records, outcomes."""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from pathlib import Path
from typing import Any

import pytest

from pacsflow.adapters.embedded_bus import EmbeddedBus
from pacsflow.adapters.fs_store import FileSystemObjectStore
from pacsflow.adapters.sqlite_index import SqliteIndex
from pacsflow.dicom.status import FailureReason
from pacsflow.errors import BusUnavailable
from pacsflow.pipeline.ingest import IngestContext
from pacsflow.pipeline.records import (
    DEAD_LETTER_TOPIC,
    EVENTS_TOPIC,
    INGEST_TOPIC,
    DeadLetter,
    DeleteRecord,
    IngestEvent,
    IngestRecord,
)
from pacsflow.ports.bus import Headers
from streams.ingest import prepare_messages, process_messages
from tests.support.corpus import CORPUS
from tests.support.records import ingest_record


@pytest.fixture
async def parts(tmp_path: Path) -> AsyncIterator[tuple[EmbeddedBus, IngestContext]]:
    bus = EmbeddedBus(tmp_path / "bus.sqlite")
    objects = FileSystemObjectStore(tmp_path / "objects")
    index = SqliteIndex(tmp_path / "index.sqlite")
    for part in (bus, objects, index):
        await part.start()
    yield bus, IngestContext(objects=objects, index=index)
    for part in (index, objects, bus):
        await part.close()


@pytest.mark.parametrize(
    "poison",
    [
        b"not json",
        b'{"version": 99}',
        b'{"version": 1, "request_id": "r"}',
        b"[1, 2]",
        b'{"version": 1, "kind": "delete", "site": "default"}',
        b'{"version": 1, "kind": "purge", "request_id": "r"}',
    ],
)
async def test_poison_messages_go_to_the_dead_letter_topic(
    parts: tuple[EmbeddedBus, IngestContext], poison: bytes
) -> None:
    bus, ctx = parts
    await bus.publish(INGEST_TOPIC, b"key", poison)
    ingest = await bus.subscribe(INGEST_TOPIC, "processor")
    messages = await ingest.fetch(10, 1.0)
    assert await process_messages(messages, ctx, bus) == []
    dead = await bus.subscribe(DEAD_LETTER_TOPIC, "reader")
    (letter,) = [DeadLetter.from_bytes(m.value) for m in await dead.fetch(10, 1.0)]
    assert letter.failure_reason == FailureReason.CANNOT_UNDERSTAND
    assert (letter.topic, letter.offset, letter.record) == (INGEST_TOPIC, 0, None)
    events = await bus.subscribe(EVENTS_TOPIC, "reader")
    assert await events.fetch(10, 0.2) == []  # no request waits for a record it cannot name


class _BuggyIndex(SqliteIndex):
    """An index whose lookups fail with an error that is not a backend outage (a bug)."""

    async def get_instance(self, site: str, sop_uid: str) -> None:
        raise ZeroDivisionError

    async def get_instances(self, site: str, sop_uids: Sequence[str]) -> dict[str, Any]:
        raise ZeroDivisionError


async def _ingest_ct(
    bus: EmbeddedBus, index: SqliteIndex, tmp_path: Path
) -> tuple[IngestRecord, list[IngestEvent], list[IngestEvent], list[DeadLetter]]:
    """Publish one CT record on ``bus`` and process it: the record, the events returned, the
    events published and the dead letters."""
    objects = FileSystemObjectStore(tmp_path / "objects")
    for part in (bus, objects, index):
        await part.start()
    try:
        record = ingest_record(CORPUS / "modality" / "CT_small.dcm")
        await bus.publish(INGEST_TOPIC, record.study_uid.encode(), record.to_bytes())
        ingest = await bus.subscribe(INGEST_TOPIC, "processor")
        ctx = IngestContext(objects=objects, index=index)
        returned = await process_messages(await ingest.fetch(10, 1.0), ctx, bus)
        events = await bus.subscribe(EVENTS_TOPIC, "reader")
        published = [IngestEvent.from_bytes(m.value) for m in await events.fetch(10, 1.0)]
        dead = await bus.subscribe(DEAD_LETTER_TOPIC, "reader")
        letters = [DeadLetter.from_bytes(m.value) for m in await dead.fetch(10, 0.2)]
        return record, returned, published, letters
    finally:
        for part in (index, objects, bus):
            await part.close()


async def test_a_crashing_step_is_dead_lettered_as_processing_failure(tmp_path: Path) -> None:
    """A bug in the step must not stall the partition: the record is failed with 0110."""
    bus, index = EmbeddedBus(tmp_path / "bus.sqlite"), _BuggyIndex(tmp_path / "index.sqlite")
    record, _, (event,), (letter,) = await _ingest_ct(bus, index, tmp_path)
    assert (event.status, event.failure_reason) == ("failed", FailureReason.PROCESSING_FAILURE)
    assert letter.record is not None and letter.record["sop_uid"] == record.sop_uid


async def test_a_delete_between_stores_is_applied_in_its_place(
    parts: tuple[EmbeddedBus, IngestContext],
) -> None:
    """One batch: a store, the DELETE of its study, a store of that study again, another study."""
    bus, ctx = parts
    ct = ingest_record(CORPUS / "modality" / "CT_small.dcm")
    mr = ingest_record(CORPUS / "modality" / "MR_siemens_csa_private.dcm", part=2)
    delete = DeleteRecord("d", "default", ct.study_uid, None, None, "2026-12-07T07:00:00Z")
    again = ingest_record(CORPUS / "modality" / "CT_small.dcm", part=3)
    for record in (ct, delete, again, mr):
        await bus.publish(INGEST_TOPIC, record.study_uid.encode(), record.to_bytes())
    ingest = await bus.subscribe(INGEST_TOPIC, "processor")
    messages = await ingest.fetch(10, 1.0)
    assert await prepare_messages(messages, ctx) is None  # a batch with a delete: not read ahead

    events = await process_messages(messages, ctx, bus)

    assert [(e.part, e.status) for e in events] == [
        (1, "stored"),
        (0, "deleted"),
        (3, "stored"),
        (2, "stored"),
    ]
    assert events[1].message == "1 instances deleted"
    assert await ctx.index.get_instance("default", ct.sop_uid) is not None
    assert await ctx.index.get_instance("default", mr.sop_uid) is not None
    published = await bus.subscribe(EVENTS_TOPIC, "reader")
    statuses = [IngestEvent.from_bytes(m.value).status for m in await published.fetch(10, 1.0)]
    assert statuses == ["stored", "deleted", "stored", "stored"]


async def test_a_batch_read_ahead_goes_through_the_same_step(
    parts: tuple[EmbeddedBus, IngestContext],
) -> None:
    """Stores validated ahead (the embedded runner's read-ahead) go through the same step."""
    bus, ctx = parts
    ct = ingest_record(CORPUS / "modality" / "CT_small.dcm")
    mr = ingest_record(CORPUS / "modality" / "MR_siemens_csa_private.dcm", part=2)
    for record in (ct, mr):
        await bus.publish(INGEST_TOPIC, record.study_uid.encode(), record.to_bytes())
    ingest = await bus.subscribe(INGEST_TOPIC, "processor")
    messages = await ingest.fetch(10, 1.0)
    prepared = await prepare_messages(messages, ctx)
    assert prepared is not None and [r.sop_uid for r in prepared.records] == [
        ct.sop_uid,
        mr.sop_uid,
    ]

    events = await process_messages(messages, ctx, bus, prepared=prepared)

    assert [(e.part, e.status) for e in events] == [(1, "stored"), (2, "stored")]
    for record in (ct, mr):
        assert await ctx.index.get_instance("default", record.sop_uid) is not None


class _FlakyBus(EmbeddedBus):
    """The embedded bus, failing its first ``failures`` batch publishes as a broker that is
    restarting does."""

    def __init__(self, path: Path, failures: int) -> None:
        super().__init__(path)
        self.failures = failures

    async def publish_batch(
        self, topic: str, items: Sequence[tuple[bytes, bytes, Headers]]
    ) -> None:
        if self.failures and topic == EVENTS_TOPIC:
            self.failures -= 1
            raise BusUnavailable("Kafka: publishing to events failed: UnknownError()")
        await super().publish_batch(topic, items)


async def test_outcomes_are_published_once_the_bus_answers_again(tmp_path: Path) -> None:
    """A bus that fails to publish the outcomes is retried, not raised: raised, it ended the
    Faust agent with its batch unacknowledged, and the next rebalance waited for it forever
    (found by the chaos trials, issue 23)."""
    bus = _FlakyBus(tmp_path / "bus.sqlite", failures=2)
    record, (stored,), (event,), letters = await _ingest_ct(
        bus, SqliteIndex(tmp_path / "index.sqlite"), tmp_path
    )
    assert stored.status == "stored" and bus.failures == 0 and letters == []
    assert (event.status, event.sop_uid) == ("stored", record.sop_uid)


async def test_records_of_both_versions_in_one_batch_are_stored_as_received(
    parts: tuple[EmbeddedBus, IngestContext],
) -> None:
    """A rolling upgrade leaves v1 records (base64) and v2 records (bytes as they are) side by
    side on ``ingest``: a processor stores both, byte for byte."""
    bus, ctx = parts
    ct = ingest_record(CORPUS / "modality" / "CT_small.dcm")
    mr = ingest_record(CORPUS / "modality" / "MR_siemens_csa_private.dcm", part=2)
    await bus.publish(INGEST_TOPIC, ct.study_uid.encode(), ct.to_bytes(1))
    await bus.publish(INGEST_TOPIC, mr.study_uid.encode(), mr.to_bytes(2))
    ingest = await bus.subscribe(INGEST_TOPIC, "processor")
    messages = await ingest.fetch(10, 1.0)
    assert [m.value[:1] for m in messages] == [b"{", b"P"]

    events = await process_messages(messages, ctx, bus)

    assert [(e.part, e.status) for e in events] == [(1, "stored"), (2, "stored")]
    for record in (ct, mr):
        document = await ctx.index.get_instance("default", record.sop_uid)
        assert document is not None
        assert await ctx.objects.get(document.object_key) == record.inline
