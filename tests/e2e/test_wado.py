"""WADO-RS end to end (PS3.18 10.4): the real corpus, dicomweb-client and raw HTTP, both modes."""

from __future__ import annotations

import asyncio
import email.parser
import gzip
import io
import warnings
import zipfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pydicom
import pytest
from dicomweb_client.api import DICOMwebClient
from PIL import Image
from pydicom.encaps import generate_frames

from pacsflow.dicom.frames import number_of_frames
from pacsflow.dicom.uids import NATIVE_TRANSFER_SYNTAXES
from pacsflow.render import render_frames
from pacsflow.render.params import RenderParams
from tests.conftest import CORPUS, Server, corpus_files
from tests.helpers import put_object, sequence, stored_object, stow_file, value

JsonDict = dict[str, Any]
FOLDERS = ("transfer-syntax", "multiframe", "modality", "objects", "charset")
EXPLICIT_LE = "1.2.840.10008.1.2.1"
BIG_ENDIAN = "1.2.840.10008.1.2.2"
IMPLICIT_LE = "1.2.840.10008.1.2"


@dataclass
class Stored:
    """The corpus files the archive accepted, by SOP Instance UID (the last one wins)."""

    url: str
    files: dict[str, Path] = field(default_factory=dict)

    def dataset(self, sop: str) -> pydicom.Dataset:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return pydicom.dcmread(self.files[sop], force=True)

    def path_of(self, sop: str) -> str:
        ds = self.dataset(sop)
        series = f"{self.url}/studies/{ds.StudyInstanceUID}/series/{ds.SeriesInstanceUID}"
        return f"{series}/instances/{sop}"

    def by_name(self, prefix: str) -> str:
        """A stored instance from a file whose name starts with ``prefix`` (files that share a
        SOP Instance UID replace each other: the last one stored is the one kept)."""
        return next(sop for sop, path in self.files.items() if path.name.startswith(prefix))


@pytest.fixture(scope="module")
def stored(server_module: Server) -> Stored:
    result = Stored(server_module.url)
    for path in corpus_files():
        if path.relative_to(CORPUS).parts[0] not in FOLDERS:
            continue
        response = stow_file(server_module.url, path)
        if response.status_code in (200, 202):
            for item in sequence(response.json(), "00081199"):
                result.files[value(item, "00081155")] = path
    assert len(result.files) > 50
    return result


def _syntax(ds: pydicom.Dataset) -> str:
    """The transfer syntax a file is in (Implicit VR Little Endian without File Meta)."""
    return str(ds.file_meta.get("TransferSyntaxUID", "1.2.840.10008.1.2"))


def _parts(response: httpx.Response) -> list[tuple[str, bytes]]:
    """(Content-Type, payload) of each part of a multipart/related response."""
    head = f"Content-Type: {response.headers['content-type']}\r\n\r\n".encode()
    message = email.parser.BytesParser().parsebytes(head + response.content)
    assert message.is_multipart(), response.headers["content-type"]
    return [(p["Content-Type"], p.get_payload(decode=True)) for p in message.get_payload()]


def _strip_uris(js: JsonDict) -> JsonDict:
    out: JsonDict = {}
    for tag, element in js.items():
        element = dict(element)
        if "BulkDataURI" in element or "InlineBinary" in element:
            element.pop("BulkDataURI", None)
            element.pop("InlineBinary", None)
            element["bulk"] = True
        elif element.get("vr") == "SQ" and element.get("Value"):
            element["Value"] = [_strip_uris(item) for item in element["Value"]]
        out[tag] = element
    return out


def test_every_instance_metadata_matches_pydicom(stored: Stored) -> None:
    """Instance metadata is pydicom's DICOM JSON of the file (bulk values by URI)."""
    client = DICOMwebClient(url=stored.url)
    compared = 0
    for sop in stored.files:
        ds = stored.dataset(sop)
        ours = client.retrieve_instance_metadata(
            str(ds.StudyInstanceUID), str(ds.SeriesInstanceUID), sop
        )
        theirs = ds.to_json_dict(bulk_data_threshold=1024, bulk_data_element_handler=lambda e: "x")
        assert _strip_uris(ours).keys() == _strip_uris(theirs).keys(), stored.files[sop]
        for tag, element in _strip_uris(theirs).items():
            if "bulk" not in element and element.get("vr") != "SQ":
                assert _strip_uris(ours)[tag] == element, (stored.files[sop], tag)
        compared += 1
    assert compared == len(stored.files)


def test_bulkdata_uris_resolve_to_the_values(stored: Stored) -> None:
    """Every top-level BulkDataURI (except Pixel Data) answers the element's bytes."""
    checked = 0
    for sop in stored.files:
        ds = stored.dataset(sop)
        metadata = httpx.get(f"{stored.path_of(sop)}/metadata").json()[0]
        for tag, element in metadata.items():
            if "BulkDataURI" not in element or tag == "7FE00010":
                continue
            raw = httpx.get(element["BulkDataURI"], headers={"Accept": "application/octet-stream"})
            assert raw.status_code == 200, element["BulkDataURI"]
            expected = ds[int(tag, 16)].value
            assert raw.content == expected, (stored.files[sop], tag)
            checked += 1
    assert checked >= 3


def test_bulkdata_range_and_multipart(stored: Stored) -> None:
    """HTTP Range on a bulk value: 206 single part, and the same bytes in a multipart part."""
    sop = stored.by_name("US_palette_segmented_16bit_lut.dcm")
    ds = stored.dataset(sop)
    url = f"{stored.path_of(sop)}/bulkdata/00281221"
    whole = bytes(ds[0x00281221].value)
    ranged = httpx.get(url, headers={"Accept": "application/octet-stream", "Range": "bytes=10-99"})
    assert ranged.status_code == 206
    assert ranged.content == whole[10:100]
    assert ranged.headers["Content-Range"] == f"bytes 10-99/{len(whole)}"
    assert (
        httpx.get(url, headers={"Range": "bytes=-5", "Accept": "application/octet-stream"}).content
        == whole[-5:]
    )
    [(content_type, payload)] = _parts(httpx.get(url))
    assert content_type.startswith("application/octet-stream") and payload == whole
    client = DICOMwebClient(url=stored.url)
    assert client.retrieve_bulkdata(url, byte_range=(0, 9))[0] == whole[:10]
    bad = httpx.get(
        url, headers={"Accept": "application/octet-stream", "Range": f"bytes={len(whole)}-"}
    )
    assert bad.status_code == 416


def test_frames_as_stored_match_the_encapsulated_frames(stored: Stored) -> None:
    """transfer-syntax=*: each frame is the stored codestream, read by byte range."""
    checked = 0
    skipped: list[str] = []
    for sop, path in stored.files.items():
        ds = stored.dataset(sop)
        syntax = _syntax(ds)
        if "PixelData" not in ds or syntax in NATIVE_TRANSFER_SYNTAXES:
            continue
        count = int(ds.get("NumberOfFrames", 1) or 1)
        expected = list(generate_frames(ds.PixelData, number_of_frames=count))
        if len(expected) != count:  # pydicom cannot split it (XA_4frame: 4 frames, 3 fragments)
            skipped.append(path.name)
            continue
        order = list(range(count, 0, -1))
        response = httpx.get(
            f"{stored.path_of(sop)}/frames/{','.join(map(str, order))}",
            headers={
                "Accept": 'multipart/related; type="application/octet-stream"; transfer-syntax=*'
            },
        )
        assert response.status_code == 200, (path, response.text)
        parts = _parts(response)
        assert [p for _, p in parts] == [expected[n - 1] for n in order], path
        assert all(f"transfer-syntax={syntax}" in t for t, _ in parts)
        checked += 1
    assert checked >= 15 and len(skipped) <= 1, skipped


def test_native_frames_match_pydicom_pixel_data(stored: Stored) -> None:
    """Native frames (the default) of natively stored little-endian instances are exact."""
    checked = 0
    for sop, path in stored.files.items():
        ds = stored.dataset(sop)
        syntax = _syntax(ds)
        if "PixelData" not in ds or syntax not in NATIVE_TRANSFER_SYNTAXES or syntax == BIG_ENDIAN:
            continue
        if int(ds.BitsAllocated) == 1:
            continue
        count = int(ds.get("NumberOfFrames", 1) or 1)
        size = len(ds.PixelData) // count
        response = httpx.get(f"{stored.path_of(sop)}/frames/1,{count}")
        assert response.status_code == 200, (path, response.text)
        parts = _parts(response)
        assert parts[0][1] == ds.PixelData[:size]
        assert parts[1][1] == ds.PixelData[(count - 1) * size : count * size]
        assert parts[0][0].startswith("application/octet-stream")
        checked += 1
    assert checked >= 10


LOSSLESS = {
    "1.2.840.10008.1.2.4.57", "1.2.840.10008.1.2.4.70", "1.2.840.10008.1.2.4.80",
    "1.2.840.10008.1.2.4.90", "1.2.840.10008.1.2.5", "1.2.840.10008.1.2.4.201",
}  # fmt: skip
LOSSY = {
    "1.2.840.10008.1.2.4.50", "1.2.840.10008.1.2.4.51", "1.2.840.10008.1.2.4.81",
    "1.2.840.10008.1.2.4.91", "1.2.840.10008.1.2.4.203",
}  # fmt: skip


def test_decoded_frames_match_pydicom(stored: Stored) -> None:
    """Compressed frames asked as application/octet-stream are decoded: every frame of a
    lossless syntax equals pydicom's decoding exactly; lossy ones are within 1% of the range
    (the same codecs decode both sides, so in practice they are equal too)."""
    checked = {"lossless": 0, "lossy": 0}
    for sop, path in stored.files.items():
        ds = stored.dataset(sop)
        syntax = _syntax(ds)
        if syntax not in LOSSLESS | LOSSY or "PixelData" not in ds:
            continue
        count = int(ds.get("NumberOfFrames", 1) or 1)
        response = httpx.get(
            f"{stored.path_of(sop)}/frames/{','.join(str(n) for n in range(1, count + 1))}",
            headers={"Accept": 'multipart/related; type="application/octet-stream"'},
        )
        assert response.status_code == 200, (path, response.text)
        parts = _parts(response)
        samples = int(ds.Rows) * int(ds.Columns) * int(ds.SamplesPerPixel)
        if path.name == "XA_4frame_jpeg_lossless.dcm":  # pydicom cannot split its 4 frames
            assert [len(p) for _, p in parts] == [samples * int(ds.BitsAllocated) // 8] * count
            continue
        assert all(f"transfer-syntax={EXPLICIT_LE}" in t for t, _ in parts)
        ds.decompress()
        size = len(ds.PixelData) // count
        for n, (_, payload) in enumerate(parts):
            expected = bytes(ds.PixelData[n * size : (n + 1) * size])
            if syntax in LOSSLESS:
                assert payload == expected, (path, n)
            else:
                dtype = np.uint8 if int(ds.BitsAllocated) == 8 else np.uint16
                ours, theirs = np.frombuffer(payload, dtype), np.frombuffer(expected, dtype)
                span = max(int(theirs.max()) - int(theirs.min()), 1)
                assert np.abs(ours.astype(float) - theirs).mean() <= 0.01 * span, (path, n)
        checked["lossless" if syntax in LOSSLESS else "lossy"] += 1
    assert checked["lossless"] >= 8 and checked["lossy"] >= 5, checked


def test_dicomweb_client_retrieves_study_series_instance_and_frames(stored: Stored) -> None:
    """retrieve_study/series/instance (Explicit VR LE by default) and retrieve_instance_frames."""
    client = DICOMwebClient(url=stored.url)
    sop = stored.by_name("enhanced_MR_10frame")
    ds = stored.dataset(sop)
    study, series = str(ds.StudyInstanceUID), str(ds.SeriesInstanceUID)
    stored_syntax = _syntax(ds)
    assert stored_syntax == "1.2.840.10008.1.2.5"  # RLE: the last of the files sharing the UID
    as_stored = client.retrieve_instance(study, series, sop)  # the client asks for "*"
    assert as_stored.file_meta.TransferSyntaxUID == stored_syntax
    instance = client.retrieve_instance(
        study, series, sop, media_types=(("application/dicom", EXPLICIT_LE),)
    )
    assert instance.file_meta.TransferSyntaxUID == EXPLICIT_LE
    assert np.array_equal(instance.pixel_array, ds.pixel_array)
    in_series = client.retrieve_series(study, series)
    assert sop in {str(i.SOPInstanceUID) for i in in_series}
    in_study = client.retrieve_study(study)
    assert len(in_study) >= len(in_series)
    [frame] = client.retrieve_instance_frames(
        study, series, sop, frame_numbers=[3], media_types=(("image/dicom-rle", stored_syntax),)
    )
    expected = list(generate_frames(ds.PixelData, number_of_frames=10))[2]
    assert frame == expected
    metadata = client.retrieve_series_metadata(study, series)
    assert sop in {value(m, "00080018") for m in metadata}


def test_raw_file_bytes_with_transfer_syntax_star(stored: Stored) -> None:
    """transfer-syntax=* sends every instance as stored, byte for byte."""
    for sop, path in list(stored.files.items())[:30]:
        response = httpx.get(
            stored.path_of(sop),
            headers={"Accept": 'multipart/related; type="application/dicom"; transfer-syntax=*'},
        )
        [(_, payload)] = _parts(response)
        assert payload == path.read_bytes()


def test_instances_as_stored_have_a_content_length_and_a_validator(stored: Stored) -> None:
    """As stored: Content-Length (no chunks), the body the stored files; a series' weak ETag
    answers If-None-Match with 304; a small transcoded answer is sent whole too."""
    sop = next(iter(stored.files))
    ds = stored.dataset(sop)
    series = f"{stored.url}/studies/{ds.StudyInstanceUID}/series/{ds.SeriesInstanceUID}"
    as_stored = {"Accept": 'multipart/related; type="application/dicom"; transfer-syntax=*'}
    with httpx.stream("GET", series, headers=as_stored) as response:
        body = b"".join(response.iter_raw())
        assert response.status_code == 200
        assert "transfer-encoding" not in response.headers
        assert int(response.headers["Content-Length"]) == len(body)
        etag = response.headers["ETag"]
    assert etag.startswith('W/"')
    assert stored.files[sop].read_bytes() in body
    again = httpx.get(series, headers={**as_stored, "If-None-Match": etag})
    assert again.status_code == 304 and again.headers["ETag"] == etag and not again.content
    other = httpx.get(series, headers={"Accept": "application/zip", "If-None-Match": etag})
    assert other.status_code == 200  # another representation, another tag
    implicit = next(s for s in stored.files if _syntax(stored.dataset(s)) == IMPLICIT_LE)
    explicit = {"Accept": "application/dicom"}  # the default transfer syntax: Explicit VR LE
    with httpx.stream("GET", stored.path_of(implicit), headers=explicit) as response:
        body = b"".join(response.iter_raw())
        assert response.status_code == 200
        assert int(response.headers["Content-Length"]) == len(body)  # small: sent whole
        assert b"transfer-syntax=1.2.840.10008.1.2.1\r\n" in body


def test_rendered_frames_are_the_pixels_of_the_stored_file(stored: Stored) -> None:
    """A rendered frame (read through the frame table: the header and that frame only) is the
    frame ``render_frames`` makes from the whole corpus file, in both modes (S3 included)."""
    for prefix in ("enhanced_MR_10frame", "US_cine_30frame_jpeg", "CT_small", "rle_MR_small"):
        sop = stored.by_name(prefix)
        path = stored.files[sop]
        frames = number_of_frames(stored.dataset(sop))
        for number in sorted({1, frames}):
            response = httpx.get(
                f"{stored.path_of(sop)}/frames/{number}/rendered", headers={"Accept": "image/png"}
            )
            assert response.status_code == 200, (path.name, number, response.text)
            want = render_frames(path, [number], RenderParams(), "image/png")
            got = np.asarray(Image.open(io.BytesIO(response.content)))
            assert np.array_equal(got, np.asarray(Image.open(io.BytesIO(want)))), path.name


def test_series_thumbnails_are_made_ahead_by_a_consumer_of_events(
    stored: Stored, server_module: Server
) -> None:
    """The thumbnail processor (a consumer of ``events``) stores each image series' thumbnail:
    the bytes a live rendering makes; a thumbnail request without parameters answers the one
    stored, one with parameters or ``Cache-Control: no-cache`` is rendered."""
    ds = stored.dataset(stored.by_name("enhanced_MR_10frame"))
    series = f"studies/{ds.StudyInstanceUID}/series/{ds.SeriesInstanceUID}"
    settings = server_module.settings()
    held = asyncio.run(stored_object(settings, f"{settings.site}/{series}/thumbnail"))
    assert held is not None, "no thumbnail was made for the series"
    label, _, jpeg = held.partition(b"\n")
    assert label.split()[0].decode() in stored.files
    url = f"{stored.url}/{series}/thumbnail"
    accept = {"Accept": "image/jpeg, image/png;q=0.5"}  # a representation no test asked before
    key = f"{settings.site}/{series}/thumbnail"
    marked = io.BytesIO()
    Image.new("L", (8, 8), 77).save(marked, "JPEG")  # stands for the made-ahead thumbnail
    asyncio.run(put_object(settings, key, label + b"\n" + marked.getvalue()))
    try:
        assert httpx.get(url, headers=accept).content == marked.getvalue()
        live = httpx.get(url, headers={**accept, "Cache-Control": "no-cache"})
        assert live.status_code == 200 and live.content == jpeg
    finally:
        asyncio.run(put_object(settings, key, held))
    small = httpx.get(url, params={"viewport": "64,64"}, headers=accept)
    assert Image.open(io.BytesIO(small.content)).size == (64, 64)


def test_zip_holds_every_instance_of_a_series(stored: Stored) -> None:
    """application/zip: one entry per instance, as stored."""
    sop = next(iter(stored.files))
    ds = stored.dataset(sop)
    url = f"{stored.url}/studies/{ds.StudyInstanceUID}/series/{ds.SeriesInstanceUID}"
    response = httpx.get(url, headers={"Accept": "application/zip"})
    assert response.status_code == 200 and response.headers["content-type"] == "application/zip"
    with zipfile.ZipFile(io.BytesIO(response.content)) as archive:
        names = archive.namelist()
        member = f"{ds.StudyInstanceUID}/{ds.SeriesInstanceUID}/{sop}.dcm"
        assert member in names
        assert archive.read(member) == stored.files[sop].read_bytes()


def test_metadata_etag_gzip_and_xml(stored: Stored) -> None:
    """ETag with If-None-Match → 304; gzip when accepted; PS3.19 XML on request."""
    sop = stored.by_name("enhanced_MR_10frame")
    ds = stored.dataset(sop)
    url = f"{stored.url}/studies/{ds.StudyInstanceUID}/metadata"
    first = httpx.get(url, headers={"Accept-Encoding": "gzip"})
    assert first.status_code == 200 and first.headers["Content-Encoding"] == "gzip"
    etag = first.headers["ETag"]
    again = httpx.get(url, headers={"If-None-Match": etag})
    assert again.status_code == 304 and again.headers["ETag"] == etag
    raw = httpx.get(url, headers={"Accept-Encoding": "identity"})
    assert "Content-Encoding" not in raw.headers
    with httpx.stream("GET", url, headers={"Accept-Encoding": "gzip"}) as streamed:
        assert gzip.decompress(b"".join(streamed.iter_raw())) == raw.content
    xml = httpx.get(url, headers={"Accept": 'multipart/related; type="application/dicom+xml"'})
    assert xml.status_code == 200
    assert all(t.startswith("application/dicom+xml") for t, _ in _parts(xml))


@pytest.mark.parametrize(
    ("suffix", "headers", "status"),
    [
        ("/studies/9.9.9", {}, 404),
        ("/studies/9.9.9/metadata", {}, 404),
        ("{series}/instances/9.9.9", {}, 404),
        ("{instance}/frames/999", {}, 404),
        ("{instance}/frames/0", {}, 400),
        ("{instance}/frames/1,x", {}, 400),
        ("{instance}/bulkdata/00100010", {}, 404),
        ("{instance}/metadata", {"Accept": "text/html"}, 406),
        ("{instance}", {"Accept": "image/png"}, 406),
        ("{instance}/frames/1", {"Accept": "text/plain"}, 406),
    ],
)
def test_errors(stored: Stored, suffix: str, headers: dict[str, str], status: int) -> None:
    """404 unknown entities or frames, 400 malformed frame lists, 406 unsatisfiable Accept."""
    sop = stored.by_name("enhanced_MR_10frame")
    ds = stored.dataset(sop)
    series = f"/studies/{ds.StudyInstanceUID}/series/{ds.SeriesInstanceUID}"
    target = suffix.format(series=series, instance=f"{series}/instances/{sop}")
    response = httpx.get(f"{stored.url}{target}", headers=headers)
    assert response.status_code == status, response.text
