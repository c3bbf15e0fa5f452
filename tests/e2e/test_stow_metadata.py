"""STOW-RS of metadata with bulk data end to end, in both modes (PS3.18 10.5.1.4, IHE WIC).

``pacsflow serve`` on embedded backends, and the pipeline (Tansu, moto, osmem, a Faust worker):
a WIC capture session over real HTTP, read back with WADO-RS and rendered; bad input answered
per instance with nothing half-stored; an instance the ingest refuses on the dead-letter topic.
"""

from __future__ import annotations

import io
from collections.abc import AsyncIterator

import httpx
import numpy as np
import pydicom
import pytest
from PIL import Image

from pacsflow.dicom.status import FailureReason
from pacsflow.dicom.xml import xml_to_dataset
from tests.support import capture as wic
from tests.support.backends import read_dead_letters, stored_object_keys
from tests.support.corpus import CORPUS
from tests.support.servers import Server


@pytest.fixture
async def client(server_module: Server) -> AsyncIterator[wic.CaptureClient]:
    async with httpx.AsyncClient(timeout=240) as http:
        yield wic.CaptureClient(http, server_module.url)


async def instances_of(client: wic.CaptureClient, patient_id: str) -> list[str]:
    response = await client.client.get(f"{client.root}/instances", params={"PatientID": patient_id})
    return sorted(i["00080018"]["Value"][0] for i in response.json()) if response.content else []


async def test_a_capture_session(client: wic.CaptureClient, server_module: Server) -> None:
    """Photo, PNG, video and documents of one patient: completed, stored, retrieved, rendered."""
    context = wic.PatientContext(patient_id="E2E-SESSION")
    picture = wic.photo(80, 60, seed=11)
    jpeg = wic.encode(picture, "JPEG", quality=92)
    png = wic.encode(picture, "PNG")
    mp4 = wic.video([wic.photo(64, 48, seed=s) for s in range(10)])
    pdf = wic.encode(picture, "PDF")
    cda = wic.cda()
    captures = [
        wic.capture(context, "image/jpeg", jpeg),
        wic.capture(context, "image/png", png),
        wic.capture(context, "video/mp4", mp4),
        wic.capture(context, "application/pdf", pdf, tag=wic.ENCAPSULATED_DOCUMENT),
        wic.capture(context, "text/xml", cda, tag=wic.ENCAPSULATED_DOCUMENT),
        wic.capture(context, "model/stl", wic.stl(), tag=wic.ENCAPSULATED_DOCUMENT),
    ]
    response = await client.store(captures)
    assert response.status_code == 200, (response.text, server_module.log.read_text()[-3000:])
    photo, raster, movie, document, note, model = wic.referenced(response.json())
    ds = await client.instance(photo.url)
    assert ds.file_meta.TransferSyntaxUID == "1.2.840.10008.1.2.4.50"
    assert (ds.PatientID, ds.Rows, ds.Columns) == ("E2E-SESSION", 60, 80)
    assert (await client.frame(photo.url))[1] == jpeg
    rendered = await client.rendered(photo.url, "image/jpeg")
    with Image.open(io.BytesIO(rendered.content)) as image:
        assert image.size == (80, 60)
        assert np.abs(np.asarray(image, dtype=int) - picture.astype(int)).mean() < 8
    assert np.array_equal((await client.instance(raster.url)).pixel_array, picture)
    video = await client.instance(movie.url)
    assert (video.file_meta.TransferSyntaxUID, video.NumberOfFrames) == (
        "1.2.840.10008.1.2.4.102",
        10,
    )
    stream = (await client.frame(movie.url))[1]
    assert stream[: len(mp4)] == mp4
    for stored, data in ((document, pdf), (note, cda), (model, wic.stl())):
        encapsulated = (await client.instance(stored.url)).EncapsulatedDocument
        assert encapsulated[: len(data)] == data
    assert len({(await client.instance(s.url)).StudyInstanceUID for s in (photo, model)}) == 1
    assert await instances_of(client, "E2E-SESSION") == sorted(
        s.sop_uid for s in (photo, raster, movie, document, note, model)
    )


async def test_xml_metadata_and_an_xml_response(client: wic.CaptureClient) -> None:
    context = wic.PatientContext(patient_id="E2E-XML")
    capture = wic.capture(context, "image/jpeg", wic.encode(wic.photo(), "JPEG"))
    response = await client.store([capture], xml=True, accept="application/dicom+xml")
    assert response.status_code == 200
    assert response.headers["content-type"] == "application/dicom+xml"
    (stored,) = wic.referenced(xml_to_dataset(response.content))
    assert await instances_of(client, "E2E-XML") == [stored.sop_uid]


async def test_uncompressed_bulk_data_round_trip(client: wic.CaptureClient) -> None:
    source = pydicom.dcmread(CORPUS / "modality/US_rgb.dcm")
    capture = wic.from_dataset(source, threshold=512)
    response = await client.store([capture])
    assert response.status_code == 200
    (stored,) = wic.referenced(response.json())
    ds = await client.instance(stored.url)
    parts = wic.bulk_values(capture)
    expected = pydicom.Dataset.from_json(capture.metadata, lambda tag, vr, uri: parts[uri])
    for element in expected:
        assert ds[element.tag] == element, element.keyword
    assert np.array_equal(ds.pixel_array, source.pixel_array)


async def test_bad_input_leaves_nothing_behind(
    client: wic.CaptureClient, server_module: Server
) -> None:
    """Per-instance failures beside a stored instance; 400 for unreadable metadata; no staged
    part left in the object store (S3 in pipeline mode)."""
    context = wic.PatientContext(patient_id="E2E-BAD")
    jpeg = wic.encode(wic.photo(), "JPEG")
    ok = wic.capture(context, "image/jpeg", jpeg)
    missing = wic.capture(context, "image/jpeg", jpeg)
    missing.metadata[wic.PIXEL_DATA]["BulkDataURI"] = "urn:missing"
    not_fitting = wic.capture(
        context,
        "video/mp4",
        wic.video([wic.photo(32, 32, seed=s) for s in range(3)]),
        **{"00080016": {"vr": "UI", "Value": ["1.2.840.10008.5.1.4.1.1.77.1.4"]}},
    )
    response = await client.store([ok, missing, not_fitting])
    assert response.status_code == 202
    assert [r for _, r in wic.failed(response.json())] == [
        FailureReason.BULK_DATA_MISSING,
        FailureReason.DATA_SET_DOES_NOT_MATCH_SOP_CLASS,
    ]
    other_study = wic.capture(
        wic.PatientContext(patient_id="E2E-BAD", study_uid="1.2.826.0.1.3680043.8.498.4"),
        "image/jpeg",
        jpeg,
    )
    response = await client.store([other_study], study="1.2.826.0.1.3680043.8.498.5")
    assert response.status_code == 409
    body, content_type = wic.json_request([ok])
    response = await client.client.post(
        f"{client.root}/studies",
        content=body.replace(b'"vr"', b'"vr', 1),
        headers={"Content-Type": content_type},
    )
    assert response.status_code == 400
    stored = wic.referenced((await client.store([ok])).json())
    assert len(await instances_of(client, "E2E-BAD")) == 2
    keys = await stored_object_keys(server_module.settings())
    assert not [k for k in keys if "/staging/" in k], keys
    assert stored


async def test_an_instance_the_ingest_refuses_is_dead_lettered(
    client: wic.CaptureClient, server_module: Server
) -> None:
    """A JPEG without Huffman tables passes assembly (its frame and scan headers are whole) and
    fails the ingest validation every instance goes through."""
    broken = wic.without_huffman_tables(wic.encode(wic.photo(), "JPEG"))
    capture = wic.capture(wic.PatientContext(patient_id="E2E-DEAD"), "image/jpeg", broken)
    response = await client.store([capture])
    assert response.status_code == 409
    ((sop_uid, reason),) = wic.failed(response.json())
    assert reason == FailureReason.CANNOT_UNDERSTAND
    letters = await read_dead_letters(server_module.settings(), expected=1)
    assert sop_uid in [letter.record["sop_uid"] for letter in letters]
    assert await instances_of(client, "E2E-DEAD") == []
