"""The thumbnail processor in-process: STOW-RS over HTTP, the ingest processor and the
thumbnail processor (a consumer of ``events``) on the embedded bus, the made-ahead thumbnails
read back from the object store."""

from __future__ import annotations

import asyncio
import io
import time
import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import pydicom
import pytest
from PIL import Image
from pydicom.uid import generate_uid

from pacsflow.config import Settings
from pacsflow.container import build_container
from streams.runner import run_ingest_processor
from streams.thumbnails import run_thumbnail_processor
from tests.support.corpus import CORPUS
from tests.support.dicomweb import client_encoding, multipart
from tests.support.serving import Running, serve

WAIT_SECONDS = 60.0


@pytest.fixture
async def archive(tmp_path: Path) -> AsyncIterator[Running]:
    """STOW and WADO served on loopback, with both processors running in the test's loop."""
    container = build_container(Settings(data_dir=tmp_path))
    await container.start()
    stop = asyncio.Event()
    bus, objects = container.bus, container.objects
    processors = [
        asyncio.create_task(run_ingest_processor(bus, container.ingest_context, stop)),
        asyncio.create_task(run_thumbnail_processor(bus, container.index, objects, stop)),
    ]
    try:
        async for running in serve(container, ("stow", "wado")):
            yield running
    finally:
        stop.set()
        await asyncio.gather(*processors)
        await container.close()


class Series:
    """A new series of CT_small copies, SOP Instance UIDs ``{root}.1``, ``{root}.2``, ... (in
    the index's order while there are fewer than ten)."""

    def __init__(self, source: str = "modality/CT_small.dcm") -> None:
        self.source = source
        self.study, self.series = generate_uid(), generate_uid()
        self.root = f"1.2.826.0.1.3680043.8.498.{10**19 + uuid.uuid4().int % 10**19}"

    def instance(self, number: int, patient: str = "THUMB^NAIL") -> bytes:
        ds = pydicom.dcmread(CORPUS / self.source)
        ds.StudyInstanceUID, ds.SeriesInstanceUID = self.study, self.series
        ds.SOPInstanceUID = ds.file_meta.MediaStorageSOPInstanceUID = f"{self.root}.{number}"
        ds.PatientName = patient
        return client_encoding(ds)

    @property
    def key(self) -> str:
        return f"default/studies/{self.study}/series/{self.series}/thumbnail"


async def _stow(archive: Running, *parts: bytes) -> None:
    body, boundary = multipart(list(parts))
    content_type = f'multipart/related; type="application/dicom"; boundary={boundary}'
    response = await archive.client.post(
        f"{archive.url}/studies", content=body, headers={"Content-Type": content_type}
    )
    assert response.status_code in (200, 202), response.text


async def _thumbnail_of(archive: Running, series: Series, sop: str) -> bytes:
    """The made-ahead thumbnail once it shows instance ``sop`` (bounded wait)."""
    deadline = time.monotonic() + WAIT_SECONDS
    while True:
        (held,) = await archive.container.objects.get_many([series.key])
        if held is not None and held.split(b" ", 1)[0].decode() == sop:
            return held
        assert time.monotonic() < deadline, f"no thumbnail showing {sop}: {held!r:.80}"
        await asyncio.sleep(0.1)


async def test_the_middle_instance_gets_a_thumbnail_that_answers_requests(archive: Running) -> None:
    series = Series()
    await _stow(archive, *(series.instance(n) for n in (1, 2, 3)))
    held = await _thumbnail_of(archive, series, f"{series.root}.2")
    jpeg = held.partition(b"\n")[2]
    with Image.open(io.BytesIO(jpeg)) as image:
        assert (image.format, max(image.size)) == ("JPEG", 128)
    url = f"{archive.url}/studies/{series.study}/series/{series.series}/thumbnail"
    answered = await archive.client.get(url)
    live = await archive.client.get(url, headers={"Cache-Control": "no-cache"})
    assert answered.content == live.content == jpeg  # made ahead: what a live rendering makes
    assert (
        await archive.client.get(f"{archive.url}/studies/{series.study}/thumbnail")
    ).content == jpeg


async def test_a_new_middle_instance_or_a_replaced_one_gets_a_new_thumbnail(
    archive: Running,
) -> None:
    series = Series()
    await _stow(archive, series.instance(1), series.instance(2))
    first = await _thumbnail_of(archive, series, f"{series.root}.2")
    await _stow(archive, series.instance(3), series.instance(4))  # the middle is now .3
    second = await _thumbnail_of(archive, series, f"{series.root}.3")
    await _stow(archive, series.instance(3, patient="REPLACED^ONE"))  # another digest
    deadline = time.monotonic() + WAIT_SECONDS
    while (third := await _thumbnail_of(archive, series, f"{series.root}.3")) == second:
        assert time.monotonic() < deadline, "the replaced instance kept its old thumbnail"
        await asyncio.sleep(0.1)
    labels = {held.partition(b"\n")[0] for held in (first, second, third)}
    assert len(labels) == 3


async def test_a_series_without_images_gets_none(archive: Running) -> None:
    report, image = Series("objects/SR_comprehensive_nested.dcm"), Series()
    image.study = report.study  # one study: its events are handled in order (one partition)
    await _stow(archive, report.instance(1))
    await _stow(archive, image.instance(1))
    await _thumbnail_of(archive, image, f"{image.root}.1")
    assert await archive.container.objects.stat(report.key) is None
