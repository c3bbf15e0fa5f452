"""The thumbnail step (a consumer of ``events``) on the embedded adapters, in-process."""

from __future__ import annotations

import dataclasses
import hashlib
import io
import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import pydicom
import pytest
from PIL import Image
from pydicom.uid import generate_uid

from pacsflow.adapters.fs_store import FileSystemObjectStore
from pacsflow.adapters.sqlite_index import SqliteIndex
from pacsflow.pipeline.ingest import IngestContext, ingest_instance
from pacsflow.pipeline.records import IngestEvent, IngestRecord
from pacsflow.ports import InstanceRef
from pacsflow.wado.thumbnail_store import representative, series_thumbnail_key, stored_thumbnail
from pacsflow.wado.thumbnails import make_series_thumbnails
from tests.conftest import CORPUS
from tests.helpers import client_encoding


@pytest.fixture
async def ctx(tmp_path: Path) -> AsyncIterator[IngestContext]:
    objects = FileSystemObjectStore(tmp_path / "objects")
    index = SqliteIndex(tmp_path / "index.sqlite")
    await objects.start()
    await index.start()
    yield IngestContext(objects=objects, index=index)
    await index.close()
    await objects.close()


async def _store(ctx: IngestContext, ds: pydicom.Dataset) -> IngestEvent:
    data = client_encoding(ds)
    record = IngestRecord(
        request_id="r",
        part=1,
        site="default",
        study_uid=ds.StudyInstanceUID,
        series_uid=ds.SeriesInstanceUID,
        sop_uid=ds.SOPInstanceUID,
        sop_class_uid=ds.SOPClassUID,
        transfer_syntax=ds.file_meta.TransferSyntaxUID,
        size=len(data),
        sha256=hashlib.sha256(data).hexdigest(),
        received_at="2026-01-01T00:00:00+00:00",
        inline=data,
    )
    event = await ingest_instance(record, ctx)
    assert event.status == "stored", event.message
    return event


def _series(source: str, count: int, first: int = 1) -> list[pydicom.Dataset]:
    """Instances of one new series, SOP Instance UIDs ``{root}.1``, ``{root}.2``, ... (in the
    index's order as long as there are fewer than ten)."""
    study, series = generate_uid(), generate_uid()
    root = f"1.2.826.0.1.3680043.8.498.{10**19 + uuid.uuid4().int % 10**19}"  # room for .N
    out = []
    for number in range(first, first + count):
        ds = pydicom.dcmread(CORPUS / source)
        ds.StudyInstanceUID, ds.SeriesInstanceUID = study, series
        ds.SOPInstanceUID = ds.file_meta.MediaStorageSOPInstanceUID = f"{root}.{number}"
        ds.InstanceNumber = number
        out.append(ds)
    return out


def _more(series: list[pydicom.Dataset], number: int) -> pydicom.Dataset:
    ds = pydicom.dcmread(CORPUS / "modality/CT_small.dcm")
    ds.StudyInstanceUID, ds.SeriesInstanceUID = (
        series[0].StudyInstanceUID,
        series[0].SeriesInstanceUID,
    )
    root = series[0].SOPInstanceUID.rsplit(".", 1)[0]
    ds.SOPInstanceUID = ds.file_meta.MediaStorageSOPInstanceUID = f"{root}.{number}"
    return ds


async def _middle(ctx: IngestContext, ds: pydicom.Dataset) -> InstanceRef:
    return representative(
        await ctx.index.list_instances("default", ds.StudyInstanceUID, ds.SeriesInstanceUID)
    )


async def test_the_series_representative_gets_one_thumbnail_made_once(ctx: IngestContext) -> None:
    series = _series("modality/CT_small.dcm", 3)
    events = [await _store(ctx, ds) for ds in series]
    assert await make_series_thumbnails([*events, *events], ctx.index, ctx.objects) == 1
    middle = await _middle(ctx, series[0])
    assert middle.sop_uid == series[1].SOPInstanceUID
    jpeg = await stored_thumbnail(ctx.objects, "default", middle)
    assert jpeg is not None
    with Image.open(io.BytesIO(jpeg)) as image:
        assert (image.format, max(image.size)) == ("JPEG", 128)
    assert await make_series_thumbnails(events, ctx.index, ctx.objects) == 0  # current: kept


async def test_a_new_representative_or_a_replaced_one_is_made_anew(ctx: IngestContext) -> None:
    series = _series("modality/CT_small.dcm", 2)  # .1 .2: the middle is .2
    await make_series_thumbnails([await _store(ctx, ds) for ds in series], ctx.index, ctx.objects)
    third = await _store(ctx, _more(series, 3))  # .1 .2 .3: still .2
    assert await make_series_thumbnails([third], ctx.index, ctx.objects) == 0
    fourth = _more(series, 4)  # .1 .2 .3 .4: now .3
    event = await _store(ctx, fourth)
    middle = await _middle(ctx, fourth)
    assert middle.sop_uid.endswith(".3")
    assert await stored_thumbnail(ctx.objects, "default", middle) is None
    assert await make_series_thumbnails([event], ctx.index, ctx.objects) == 1
    assert await stored_thumbnail(ctx.objects, "default", middle) is not None
    replaced = _more(series, 3)
    replaced.PatientName = "REPLACED^ONE"  # the same instance, other bytes: another digest
    event = await _store(ctx, replaced)
    assert await stored_thumbnail(ctx.objects, "default", await _middle(ctx, fourth)) is None
    assert await make_series_thumbnails([event], ctx.index, ctx.objects) == 1


async def test_failed_events_and_series_without_images_make_none(ctx: IngestContext) -> None:
    [report] = _series("objects/SR_comprehensive_nested.dcm", 1)
    assert await make_series_thumbnails([await _store(ctx, report)], ctx.index, ctx.objects) == 0
    key = series_thumbnail_key("default", report.StudyInstanceUID, report.SeriesInstanceUID)
    assert await ctx.objects.stat(key) is None
    [image] = _series("modality/CT_small.dcm", 1)
    stored = await _store(ctx, image)
    failed = dataclasses.replace(stored, status="failed")
    assert await make_series_thumbnails([failed], ctx.index, ctx.objects) == 0
