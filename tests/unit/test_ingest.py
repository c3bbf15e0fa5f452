"""The ingest step in-process on the embedded adapters: idempotency and the duplicate policy."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from pacsflow.adapters.fs_store import FileSystemObjectStore
from pacsflow.adapters.sqlite_index import SqliteIndex
from pacsflow.dicom.status import FailureReason, WarningReason
from pacsflow.pipeline.ingest import (
    IngestContext,
    ingest_batch,
    ingest_instance,
    merge_prepared,
    prepare_batch,
)
from pacsflow.pipeline.keys import instance_keys
from pacsflow.query.model import Level
from pacsflow.query.parse import parse_query
from tests.support.corpus import CORPUS
from tests.support.records import ingest_record


@pytest.fixture
async def ctx(tmp_path: Path) -> AsyncIterator[IngestContext]:
    objects = FileSystemObjectStore(tmp_path / "objects")
    index = SqliteIndex(tmp_path / "index.sqlite")
    await objects.start()
    await index.start()
    yield IngestContext(objects=objects, index=index)
    await index.close()
    await objects.close()


async def test_redelivery_leaves_one_copy_and_one_entry(ctx: IngestContext) -> None:
    path = CORPUS / "modality" / "CT_small.dcm"
    record = ingest_record(path)
    first = await ingest_instance(record, ctx)
    second = await ingest_instance(record, ctx)
    assert first.status == second.status == "stored"
    assert second.warning_reason is None
    studies = await ctx.index.search("default", parse_query(Level.STUDY, []))
    assert [s["00201208"]["Value"] for s in studies.records] == [[1]]
    instances = await ctx.index.search("default", parse_query(Level.INSTANCE, []))
    assert [i["00080018"]["Value"] for i in instances.records] == [[record.sop_uid]]
    assert (studies.total, instances.total) == (1, 1)
    keys = [k async for k in ctx.objects.list("default/")]
    base = instance_keys("default", record.study_uid, record.series_uid, record.sop_uid)
    assert sorted(keys) == sorted([base["dicom"], base["sidecar"]])  # one sidecar, bulk too


async def test_redelivery_after_the_staged_object_was_removed(ctx: IngestContext) -> None:
    path = CORPUS / "modality" / "CT_small.dcm"
    await ctx.objects.put("default/staging/r.000001.dcm", path.read_bytes())
    record = ingest_record(path, staged_key="default/staging/r.000001.dcm")
    assert (await ingest_instance(record, ctx)).status == "stored"
    await ctx.objects.delete("default/staging/r.000001.dcm")  # as the first delivery renamed it
    again = await ingest_instance(record, ctx)
    assert again.status == "stored"


async def test_a_missing_staged_object_of_an_unknown_instance_fails(ctx: IngestContext) -> None:
    record = ingest_record(
        CORPUS / "modality" / "CT_small.dcm", staged_key="default/staging/x.000001.dcm"
    )
    event = await ingest_instance(record, ctx)
    assert event.status == "failed"
    assert event.failure_reason == FailureReason.PROCESSING_FAILURE


async def test_different_object_same_uid_is_replaced_with_warning(ctx: IngestContext) -> None:
    first = ingest_record(CORPUS / "transfer-syntax" / "explicit_le_MR_small.dcm")
    other = ingest_record(CORPUS / "transfer-syntax" / "implicit_le_MR_small.dcm")
    assert first.sop_uid == other.sop_uid
    assert (await ingest_instance(first, ctx)).warning_reason is None
    event = await ingest_instance(other, ctx)
    assert event.warning_reason == WarningReason.REPLACED_DIFFERENT_INSTANCE
    doc = await ctx.index.get_instance("default", other.sop_uid)
    assert doc is not None and doc.sha256 == other.sha256
    assert await ctx.objects.get(doc.object_key) == other.inline


async def test_a_batch_read_ahead_is_stored_as_one_read_in_turn(ctx: IngestContext) -> None:
    paths = [CORPUS / "modality" / "CT_small.dcm", CORPUS / "modality" / "US_rgb.dcm"]
    staged = [f"default/staging/a.{n:06d}.dcm" for n in (1, 2)]
    for key, path in zip(staged, paths, strict=True):
        await ctx.objects.put(key, path.read_bytes())
    records = [ingest_record(p, staged_key=k) for p, k in zip(paths, staged, strict=True)]
    prepared = await prepare_batch(records, ctx)
    assert prepared is not None
    assert await ctx.index.get_instance("default", records[0].sop_uid) is None  # read only
    events = await ingest_batch(records, ctx, prepared)
    assert [e.status for e in events] == ["stored", "stored"]
    for record in records:
        doc = await ctx.index.get_instance("default", record.sop_uid)
        assert doc is not None and doc.sha256 == record.sha256
    assert [k async for k in ctx.objects.list("default/staging/")] == []  # renamed into place


async def test_a_batch_with_one_uid_twice_is_not_read_ahead(ctx: IngestContext) -> None:
    record = ingest_record(CORPUS / "modality" / "CT_small.dcm")
    assert await prepare_batch([record, record], ctx) is None


async def test_a_prepared_batch_of_other_records_is_refused(ctx: IngestContext) -> None:
    first = ingest_record(CORPUS / "modality" / "CT_small.dcm")
    other = ingest_record(CORPUS / "modality" / "US_rgb.dcm")
    prepared = await prepare_batch([first], ctx)
    assert prepared is not None
    with pytest.raises(ValueError, match="other records"):
        await ingest_batch([other], ctx, prepared)
    assert await ctx.index.get_instance("default", first.sop_uid) is None


async def test_two_batches_read_ahead_complete_as_one(ctx: IngestContext) -> None:
    first = ingest_record(CORPUS / "modality" / "CT_small.dcm")
    other = ingest_record(CORPUS / "modality" / "US_rgb.dcm")
    one, two = await prepare_batch([first], ctx), await prepare_batch([other], ctx)
    assert one is not None and two is not None
    merged = merge_prepared(one, two)
    assert merged is not None and merged.records == [first, other]
    events = await ingest_batch([first, other], ctx, merged)
    assert [(e.sop_uid, e.status) for e in events] == [
        (first.sop_uid, "stored"),
        (other.sop_uid, "stored"),
    ]
    again = await prepare_batch([first], ctx)
    assert again is not None
    assert merge_prepared(again, await prepare_batch([first], ctx) or again) is None
    await again.discard()
