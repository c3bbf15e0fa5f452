"""The ingest step in-process on the embedded adapters: idempotency and the duplicate policy."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from pacsflow.adapters.fs_store import FileSystemObjectStore
from pacsflow.adapters.sqlite_index import SqliteIndex
from pacsflow.dicom.status import FailureReason, WarningReason
from pacsflow.pipeline.ingest import IngestContext, ingest_instance
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
    assert sorted(keys) == sorted(base.values())  # CT_small has private bulk values too


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
