"""The Studies Service's corners (PS3.18 Chapter 10), in process over the embedded adapters.

Single-part ``application/dicom``; bulk data of a study, series or instance (Accept or the
``/bulkdata`` resources) with a Content-Location per part; Pixel Data at study and series level;
HEAD on every GET resource; a body cut short inside a part; a part without the PS3.10 head;
``includefield`` of a lower level; an odd Pixel Data fragment padded after its item.
"""

from __future__ import annotations

import io
import re
import uuid
import zipfile
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import orjson
import pydicom
import pytest
from pydicom.encaps import generate_fragments

from pacsflow.dicom.frames import unpadded
from pacsflow.dicom.status import WarningReason
from pacsflow.dicom.xml import xml_to_dataset
from tests.support.corpus import CORPUS
from tests.support.dicomweb import multipart, multipart_parts, sequence, value
from tests.support.embedded_archive import STOW_TYPE, Archive, embedded_archive, instance_url

CT = CORPUS / "modality/CT_small.dcm"
MR = CORPUS / "modality/MR_siemens_csa_private.dcm"  # private CSA headers: bulk values
XA = CORPUS / "modality/XA_4frame_jpeg_lossless.dcm"  # 4 JPEG Lossless frames
BARE = CORPUS / "structure/no_preamble_palette_face.dcm"  # no preamble, no File Meta
SR = CORPUS / "objects/SR_basic_text_reportsi.dcm"  # no Pixel Data
OCTETS = 'multipart/related; type="application/octet-stream"'
AS_STORED = 'multipart/related; type="application/octet-stream"; transfer-syntax=*'


@pytest.fixture
async def archive(tmp_path: Path) -> AsyncIterator[Archive]:
    async with embedded_archive(tmp_path) as running:
        yield running


def _study(ds: pydicom.Dataset) -> str:
    return f"/dicom-web/studies/{ds.StudyInstanceUID}"


def _series(ds: pydicom.Dataset) -> str:
    return f"{_study(ds)}/series/{ds.SeriesInstanceUID}"


def _bulk_uris(metadata: list[dict[str, Any]]) -> set[str]:
    found: set[str] = set()

    def walk(dataset: dict[str, Any]) -> None:
        for element in dataset.values():
            if "BulkDataURI" in element:
                found.add(element["BulkDataURI"])
            for item in element.get("Value", []) if element.get("vr") == "SQ" else []:
                walk(item)

    for dataset in metadata:
        walk(dataset)
    return found


async def test_one_instance_as_a_single_application_dicom_body(archive: Archive) -> None:
    ct = await archive.store(CT)
    sent = CT.read_bytes()
    stored_syntax = pydicom.dcmread(CT, stop_before_pixels=True).file_meta.TransferSyntaxUID

    single = await archive.client.get(
        instance_url(ct), headers={"Accept": "application/dicom; transfer-syntax=*"}
    )
    study = await archive.client.get(_study(ct), headers={"Accept": "application/dicom"})

    assert single.status_code == 200
    assert single.headers["content-type"] == f"application/dicom; transfer-syntax={stored_syntax}"
    assert single.headers["content-length"] == str(len(sent))
    assert single.content == sent
    assert study.headers["content-type"].startswith('multipart/related; type="application/dicom"')


async def test_bulk_data_of_a_study_series_and_instance(archive: Archive) -> None:
    mr = await archive.store(MR)
    metadata = (await archive.client.get(f"{_study(mr)}/metadata")).json()
    uris = _bulk_uris(metadata)
    assert len(uris) >= 2  # private CSA headers and Pixel Data

    for path, accept in [
        (_study(mr), OCTETS),
        (_series(mr), OCTETS),
        (instance_url(mr), OCTETS),
        (f"{_study(mr)}/bulkdata", ""),
        (f"{_series(mr)}/bulkdata", OCTETS),
        (f"{instance_url(mr)}/bulkdata", "*/*"),
    ]:
        answer = await archive.client.get(path, headers={"Accept": accept} if accept else {})
        assert answer.status_code == 200, (path, answer.text)
        assert answer.headers["content-type"].startswith(OCTETS), path
        parts = multipart_parts(answer)
        assert {part["Content-Location"] for part in parts} == uris, path
        for part in parts:  # each part is the value its Content-Location names
            if part["Content-Location"].endswith("/7FE00010"):
                continue  # Pixel Data: native frames here, as stored through the URI
            single = await archive.client.get(
                part["Content-Location"].removeprefix("http://pacsflow"),
                headers={"Accept": "application/octet-stream"},
            )
            assert single.content == part.get_payload(decode=True), part["Content-Location"]


async def test_a_bulkdata_uri_answers_with_its_content_location(archive: Archive) -> None:
    mr = await archive.store(MR)
    [uri, *_] = sorted(_bulk_uris((await archive.client.get(f"{_study(mr)}/metadata")).json()))

    answer = await archive.client.get(uri.removeprefix("http://pacsflow"))

    assert [part["Content-Location"] for part in multipart_parts(answer)] == [uri]


async def test_pixel_data_of_a_study_and_a_series(archive: Archive) -> None:
    xa = await archive.store(XA)
    ds = pydicom.dcmread(XA)
    frame_size = ds.Rows * ds.Columns * ds.SamplesPerPixel * ds.BitsAllocated // 8
    fragments = list(generate_fragments(ds.PixelData))[1:]  # after the Basic Offset Table
    uri = f"http://pacsflow{instance_url(xa)}/bulkdata/7FE00010"

    for path in (f"{_study(xa)}/pixeldata", f"{_series(xa)}/pixeldata"):
        native = await archive.client.get(path)
        stored = await archive.client.get(path, headers={"Accept": AS_STORED})

        assert native.status_code == 200, native.text
        parts = multipart_parts(native)
        assert [len(p.get_payload(decode=True)) for p in parts] == [frame_size] * 4
        assert {p["Content-Location"] for p in parts} == {uri}
        assert "transfer-syntax=1.2.840.10008.1.2.1" in parts[0]["Content-Type"]
        as_stored = [p.get_payload(decode=True) for p in multipart_parts(stored)]
        assert as_stored == [unpadded(xa.file_meta.TransferSyntaxUID, f) for f in fragments]
    sr = await archive.store(SR)
    assert (await archive.client.get(f"{_study(sr)}/pixeldata")).status_code == 404


def _comparable(headers: Any) -> dict[str, str]:
    """Headers with each multipart boundary made the same (they are random per response),
    without the request id each response carries (X-Request-ID, one per request)."""
    return {
        k: re.sub(r"boundary=[0-9a-f]+", "boundary=B", v)
        for k, v in headers.items()
        if k.lower() != "x-request-id"
    }


async def test_head_answers_every_get_resource_with_its_headers_only(archive: Archive) -> None:
    ct, xa = await archive.store(CT), await archive.store(XA)
    uid = f"2.25.{uuid.uuid4().int}"
    pair = [{"00081150": {"vr": "UI", "Value": [ct.SOPClassUID]}}]
    pair[0]["00081155"] = {"vr": "UI", "Value": [ct.SOPInstanceUID]}
    await archive.client.post(
        f"/dicom-web/commitment-requests/{uid}",
        content=orjson.dumps({"00081199": {"vr": "SQ", "Value": pair}}),
        headers={"Content-Type": "application/dicom+json"},
    )
    paths = [
        *(p for ds in (ct, xa) for p in (_study(ds), _series(ds), instance_url(ds))),
        *(f"{p}/{r}" for p in (_study(xa), _series(xa), instance_url(xa)) for r in _LEAVES),
        f"{instance_url(xa)}/frames/1,3",
        f"{instance_url(xa)}/frames/2/rendered",
        f"{instance_url(xa)}/frames/2/thumbnail",
        f"{instance_url(xa)}/bulkdata/7FE00010",
        "/dicom-web/studies",
        "/dicom-web/series?Modality=XA",
        "/dicom-web/instances",
        f"{_study(ct)}/series",
        f"{_study(ct)}/instances",
        f"{_series(ct)}/instances",
        "/dicom-web/workitems",
        f"/dicom-web/commitment-requests/{uid}",
        "/dicom-web/wado-ws?wsdl",
        f"/dicom-web/wado?requestType=WADO&studyUID={ct.StudyInstanceUID}"
        f"&seriesUID={ct.SeriesInstanceUID}&objectUID={ct.SOPInstanceUID}",
        f"{_study(ct)}/nothing-here",  # a 404 too
        "/health",
    ]
    for path in paths:
        get = await archive.client.get(path)
        head = await archive.client.head(path)

        assert head.status_code == get.status_code, path
        assert _comparable(head.headers) == _comparable(get.headers), path
        assert head.content == b"", path


_LEAVES = ("metadata", "rendered", "thumbnail", "bulkdata", "pixeldata")


async def test_a_body_cut_short_inside_a_part_is_a_bad_request(archive: Archive) -> None:
    body, boundary = multipart([MR.read_bytes(), CT.read_bytes()])
    answer = await archive.client.post(
        "/dicom-web/studies",
        content=body[:-2000],
        headers={"Content-Type": STOW_TYPE.format(boundary)},
    )
    await archive.stop_processor()  # every record logged has been processed

    assert answer.status_code == 400
    assert "ended inside part 2" in answer.json()["message"]
    assert (await archive.client.get("/dicom-web/studies")).json() == []
    assert not [key async for key in archive.objects.list("")]


async def test_a_data_set_without_its_ps310_head_is_served_as_a_ps310_file(
    archive: Archive,
) -> None:
    sent = BARE.read_bytes()
    ds = await archive.store(BARE)

    single = await archive.client.get(
        instance_url(ds), headers={"Accept": "application/dicom; transfer-syntax=*"}
    )
    parts = multipart_parts(
        await archive.client.get(
            _study(ds),
            headers={"Accept": 'multipart/related; type="application/dicom"; transfer-syntax=*'},
        )
    )
    zipped = await archive.client.get(_study(ds), headers={"Accept": "application/zip"})

    served = single.content
    assert served[128:132] == b"DICM" and served.endswith(sent)
    assert single.headers["content-length"] == str(len(served))
    read = pydicom.dcmread(io.BytesIO(served))  # a PS3.10 file: no force needed
    assert read.file_meta.MediaStorageSOPInstanceUID == ds.SOPInstanceUID
    assert read.file_meta.MediaStorageSOPClassUID == ds.SOPClassUID
    assert read.file_meta.TransferSyntaxUID == "1.2.840.10008.1.2"  # inferred at ingest
    assert [p.get_payload(decode=True) for p in parts] == [served]
    with zipfile.ZipFile(io.BytesIO(zipped.content)) as archive_file:
        [name] = archive_file.namelist()
        assert archive_file.read(name) == served
    item = {
        "00081150": {"vr": "UI", "Value": [ds.SOPClassUID]},
        "00081155": {"vr": "UI", "Value": [ds.SOPInstanceUID]},
    }
    committed = await archive.client.post(
        f"/dicom-web/commitment-requests/2.25.{uuid.uuid4().int}",
        content=orjson.dumps({"00081199": {"vr": "SQ", "Value": [item]}}),
        headers={"Content-Type": "application/dicom+json"},
    )
    assert sequence(committed.json(), "00081199") == [item]  # the bytes stored are those sent


async def test_includefield_of_a_lower_level_is_not_returned(archive: Archive) -> None:
    ct = await archive.store(CT)

    studies = await archive.client.get(
        "/dicom-web/studies", params={"includefield": "Modality,SOPClassUID,StudyDescription"}
    )
    series = await archive.client.get(
        f"{_study(ct)}/series", params={"includefield": "Modality,SOPClassUID"}
    )

    [study] = studies.json()
    assert "00080060" not in study and "00080016" not in study
    assert "00081030" in study
    [one] = series.json()
    assert value(one, "00080060") == ct.Modality and "00080016" not in one


async def test_an_odd_fragment_padded_after_its_item_is_kept_with_a_warning(
    archive: Archive,
) -> None:
    original = pydicom.dcmread(XA)
    buffer = io.BytesIO()
    original.save_as(buffer)  # pydicom pads the odd last fragment after its item
    sent = buffer.getvalue()
    assert sent[-9] == 0 and sent[-8:-4] == b"\xfe\xff\xdd\xe0"  # the pad, then the delimiter

    answer = await archive.post_parts([sent])
    ds = pydicom.dcmread(io.BytesIO(sent), stop_before_pixels=True)
    back = await archive.client.get(
        instance_url(ds), headers={"Accept": "application/dicom; transfer-syntax=*"}
    )
    frames = await archive.client.get(
        f"{instance_url(ds)}/frames/1,2,3,4", headers={"Accept": AS_STORED}
    )
    rendered = await archive.client.get(f"{instance_url(ds)}/frames/4/rendered")

    assert answer.status_code == 202, answer.text
    [item] = sequence(answer.json(), "00081199")
    assert value(item, "00081196") == WarningReason.ENCODING_TOLERATED
    assert "padded after its item" in answer.headers["warning"]
    assert back.content == sent
    fragments = list(generate_fragments(original.PixelData))[1:]
    syntax = original.file_meta.TransferSyntaxUID
    assert [p.get_payload(decode=True) for p in multipart_parts(frames)] == [
        unpadded(syntax, f) for f in fragments
    ]  # a frame is its codestream, without the pad byte of an even fragment (PS3.5 A.4)
    assert len(fragments[-1]) % 2 == 1
    assert rendered.status_code == 200


async def test_the_store_response_in_xml_or_the_default(archive: Archive) -> None:
    data = CT.read_bytes()
    xml = await archive.post_parts([data], Accept="application/dicom+xml")
    other = await archive.post_parts([data], Accept="image/png")

    assert xml.status_code == 200 and xml.headers["content-type"] == "application/dicom+xml"
    ds = pydicom.dcmread(CT, stop_before_pixels=True)
    [item] = sequence(xml_to_dataset(xml.content), "00081199")
    assert value(item, "00081155") == ds.SOPInstanceUID
    assert other.status_code == 200  # nothing acceptable: the default (PS3.18 Table 8.7.3-1)
    assert other.headers["content-type"] == "application/dicom+json"


async def test_the_accept_query_parameter_is_used_instead_of_the_header(
    archive: Archive,
) -> None:
    ct = await archive.store(CT)
    xml = 'multipart/related; type="application/dicom+xml"'

    answer = await archive.client.get(
        f"{instance_url(ct)}/metadata",
        params={"accept": xml},
        headers={"Accept": "application/dicom+json"},
    )

    assert answer.headers["content-type"].startswith(xml)
