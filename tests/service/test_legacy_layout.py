"""Instances stored before the sidecar (``.json``, ``.frames``, ``.bulk``): served, deletable.

An archive of the old layout is made through the object store port itself: an instance is
stored (``.dcm`` and ``.sidecar``), then its sidecar is replaced by the three objects the ingest
wrote before (``pacsflow.pipeline.keys``), before anything reads it. Metadata, frames, bulk data,
rendered, WADO-URI and DELETE are then answered from those, on local disk and on S3 (moto).
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import orjson
import pydicom
import pytest

from pacsflow.pipeline.keys import instance_keys
from pacsflow.pipeline.sidecar import sidecar_part
from pacsflow.ports import ObjectStore
from tests.support.corpus import CORPUS
from tests.support.dicomweb import parts
from tests.support.embedded_archive import Archive, embedded_archive, instance_url

SOURCE = CORPUS / "modality" / "US_palette_segmented_16bit_lut.dcm"  # frames and bulk values
OCTETS = {"Accept": "application/octet-stream"}


@pytest.fixture(params=["filesystem", "s3"])
async def archive(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Archive]:
    settings: dict[str, object] = {}
    if request.param == "s3":
        endpoint, bucket = (
            request.getfixturevalue("s3_endpoint"),
            request.getfixturevalue("s3_bucket"),
        )
        settings["object_store_url"] = f"s3://test:test@{endpoint}/{bucket}"
    async with embedded_archive(tmp_path, **settings) as running:
        yield running


async def _as_before_the_sidecar(objects: ObjectStore, keys: dict[str, str]) -> None:
    """Rewrite an instance's sidecar as the ``.json``, ``.frames`` and ``.bulk`` of old."""
    sidecar = await objects.get(keys["sidecar"])
    older = [(part, sidecar_part(sidecar, part)) for part in ("metadata", "frames", "bulk")]
    puts = [(keys[part], data) for part, data in older if data is not None]
    assert len(puts) == 3
    await objects.write_batch(puts=puts, deletes=[keys["sidecar"]])


async def _keys(objects: ObjectStore, ds: pydicom.Dataset) -> list[str]:
    return sorted([k async for k in objects.list(f"default/studies/{ds.StudyInstanceUID}/")])


def _keys_of(ds: pydicom.Dataset) -> dict[str, str]:
    return instance_keys("default", ds.StudyInstanceUID, ds.SeriesInstanceUID, ds.SOPInstanceUID)


async def test_an_instance_of_the_old_layout_is_served_and_deleted(archive: Archive) -> None:
    ds = await archive.store(SOURCE)
    keys, objects = _keys_of(ds), archive.objects
    assert await _keys(objects, ds) == sorted([keys["dicom"], keys["sidecar"]])
    await _as_before_the_sidecar(objects, keys)
    old = sorted([keys["dicom"], keys["metadata"], keys["frames"], keys["bulk"]])
    assert await _keys(objects, ds) == old
    url, client, full = instance_url(ds), archive.client, pydicom.dcmread(SOURCE)

    metadata = await client.get(f"{url}/metadata")
    assert metadata.status_code == 200, metadata.text
    (document,) = metadata.json()
    assert document["00080018"]["Value"] == [ds.SOPInstanceUID]
    lut = await client.get(document["00281221"]["BulkDataURI"], headers=OCTETS)
    assert lut.status_code == 200 and lut.content == bytes(full[0x00281221].value)
    every = parts(await client.get(f"{url}/bulkdata"))
    assert bytes(full[0x00281221].value) in [payload for _, payload in every]
    frame = await client.get(f"{url}/frames/1", headers={"Accept": "multipart/related"})
    assert frame.status_code == 200 and parts(frame)[0][1] == full.PixelData
    rendered = await client.get(f"{url}/rendered", headers={"Accept": "image/jpeg"})
    assert rendered.status_code == 200 and rendered.content.startswith(b"\xff\xd8")
    uids = f"studyUID={ds.StudyInstanceUID}&seriesUID={ds.SeriesInstanceUID}"
    uid = f"objectUID={ds.SOPInstanceUID}&contentType=application/dicom"
    uri = await client.get(f"/dicom-web/wado?requestType=WADO&{uids}&{uid}")
    assert uri.status_code == 200, uri.text
    assert uri.content[128:132] == b"DICM"

    deleted = await client.delete(url)
    assert deleted.status_code == 204, deleted.text
    assert await _keys(objects, ds) == []


async def test_storing_it_again_moves_it_to_the_sidecar(archive: Archive) -> None:
    ds = await archive.store(SOURCE)
    keys, objects = _keys_of(ds), archive.objects
    await _as_before_the_sidecar(objects, keys)
    before = orjson.loads(await objects.get(keys["metadata"]))
    await archive.store(SOURCE)
    assert await _keys(objects, ds) == sorted([keys["dicom"], keys["sidecar"]])
    assert await objects.get(keys["dicom"]) == SOURCE.read_bytes()
    metadata = sidecar_part(await objects.get(keys["sidecar"]), "metadata")
    assert metadata is not None and orjson.loads(metadata) == before
