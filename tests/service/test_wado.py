"""WADO-RS request handling in process (PS3.18 10.4): frames as stored, native and decoded,
bulk data and Range, media types and negotiation, ETag and compression, zip, errors; over the
real corpus stored through STOW-RS."""

from __future__ import annotations

import gzip
import io
import zipfile
from collections.abc import AsyncIterator

import numpy as np
import pytest
import pytest_asyncio
from pydicom.encaps import generate_frames

from pacsflow.dicom.frames import unpadded
from pacsflow.dicom.uids import NATIVE_TRANSFER_SYNTAXES
from tests.support.archive import Archive
from tests.support.corpus import CORPUS, corpus_files
from tests.support.dicomweb import ACCEPT_AS_STORED, parts, sequence, value
from tests.support.stored import EXPLICIT_LE, Stored, syntax_of

pytestmark = pytest.mark.asyncio(loop_scope="module")

FOLDERS = ("transfer-syntax", "multiframe", "modality", "objects", "charset")
BIG_ENDIAN = "1.2.840.10008.1.2.2"
LOSSLESS = {
    "1.2.840.10008.1.2.4.57", "1.2.840.10008.1.2.4.70", "1.2.840.10008.1.2.4.80",
    "1.2.840.10008.1.2.4.90", "1.2.840.10008.1.2.5", "1.2.840.10008.1.2.4.201",
}  # fmt: skip
LOSSY = {
    "1.2.840.10008.1.2.4.50", "1.2.840.10008.1.2.4.51", "1.2.840.10008.1.2.4.81",
    "1.2.840.10008.1.2.4.91", "1.2.840.10008.1.2.4.203",
}  # fmt: skip


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def stored(archive: Archive) -> AsyncIterator[Stored]:
    """The corpus files of FOLDERS the archive accepted, by SOP Instance UID."""
    result = Stored(archive.url)
    for path in corpus_files():
        if path.relative_to(CORPUS).parts[0] not in FOLDERS:
            continue
        response = await archive.stow_files(path)
        if response.status_code in (200, 202):
            for item in sequence(response.json(), "00081199"):
                result.files[value(item, "00081155")] = path
    assert len(result.files) > 50
    yield result


async def test_bulkdata_uris_resolve_to_the_values(archive: Archive, stored: Stored) -> None:
    """Every top-level BulkDataURI (except Pixel Data) answers the element's bytes."""
    checked = 0
    for sop in stored.files:
        ds = stored.dataset(sop)
        metadata = (await archive.client.get(f"{stored.path_of(sop)}/metadata")).json()[0]
        for tag, element in metadata.items():
            if "BulkDataURI" not in element or tag == "7FE00010":
                continue
            raw = await archive.client.get(
                element["BulkDataURI"], headers={"Accept": "application/octet-stream"}
            )
            assert raw.status_code == 200, element["BulkDataURI"]
            expected = ds[int(tag, 16)].value
            assert raw.content == expected, (stored.files[sop], tag)
            checked += 1
    assert checked >= 3


async def test_bulkdata_range_and_multipart(archive: Archive, stored: Stored) -> None:
    """HTTP Range on a bulk value: 206 single part, and the same bytes in a multipart part."""
    sop = stored.by_name("US_palette_segmented_16bit_lut.dcm")
    ds = stored.dataset(sop)
    url = f"{stored.path_of(sop)}/bulkdata/00281221"
    whole = bytes(ds[0x00281221].value)
    octets = {"Accept": "application/octet-stream"}
    ranged = await archive.client.get(url, headers={**octets, "Range": "bytes=10-99"})
    assert ranged.status_code == 206
    assert ranged.content == whole[10:100]
    assert ranged.headers["Content-Range"] == f"bytes 10-99/{len(whole)}"
    suffix = await archive.client.get(url, headers={**octets, "Range": "bytes=-5"})
    assert suffix.content == whole[-5:]
    [(content_type, payload)] = parts(await archive.client.get(url))
    assert content_type.startswith("application/octet-stream") and payload == whole
    bad = await archive.client.get(url, headers={**octets, "Range": f"bytes={len(whole)}-"})
    assert bad.status_code == 416


async def test_frames_as_stored_match_the_encapsulated_frames(
    archive: Archive, stored: Stored
) -> None:
    """transfer-syntax=*: each frame is the stored codestream, read by byte range (without the
    null byte that padded a JPEG/JPEG 2000 fragment to an even length, PS3.5 A.4)."""
    checked = 0
    skipped: list[str] = []
    for sop, path in stored.files.items():
        ds = stored.dataset(sop)
        syntax = syntax_of(ds)
        if "PixelData" not in ds or syntax in NATIVE_TRANSFER_SYNTAXES:
            continue
        count = int(ds.get("NumberOfFrames", 1) or 1)
        expected = [
            unpadded(syntax, frame)
            for frame in generate_frames(ds.PixelData, number_of_frames=count)
        ]
        if len(expected) != count:  # pydicom cannot split it (XA_4frame: 4 frames, 3 fragments)
            skipped.append(path.name)
            continue
        order = list(range(count, 0, -1))
        response = await archive.client.get(
            f"{stored.path_of(sop)}/frames/{','.join(map(str, order))}",
            headers={
                "Accept": 'multipart/related; type="application/octet-stream"; transfer-syntax=*'
            },
        )
        assert response.status_code == 200, (path, response.text)
        found = parts(response)
        assert [p for _, p in found] == [expected[n - 1] for n in order], path
        assert all(f"transfer-syntax={syntax}" in t for t, _ in found)
        checked += 1
    assert checked >= 15 and len(skipped) <= 1, skipped


async def test_native_frames_match_pydicom_pixel_data(archive: Archive, stored: Stored) -> None:
    """Native frames (the default) of natively stored little-endian instances are exact."""
    checked = 0
    for sop, path in stored.files.items():
        ds = stored.dataset(sop)
        syntax = syntax_of(ds)
        if "PixelData" not in ds or syntax not in NATIVE_TRANSFER_SYNTAXES or syntax == BIG_ENDIAN:
            continue
        if int(ds.BitsAllocated) == 1:
            continue
        count = int(ds.get("NumberOfFrames", 1) or 1)
        size = len(ds.PixelData) // count
        response = await archive.client.get(f"{stored.path_of(sop)}/frames/1,{count}")
        assert response.status_code == 200, (path, response.text)
        found = parts(response)
        assert found[0][1] == ds.PixelData[:size]
        assert found[1][1] == ds.PixelData[(count - 1) * size : count * size]
        assert found[0][0].startswith("application/octet-stream")
        checked += 1
    assert checked >= 10


async def test_decoded_frames_match_pydicom(archive: Archive, stored: Stored) -> None:
    """Compressed frames asked as application/octet-stream are decoded: every frame of a
    lossless syntax equals pydicom's decoding exactly; lossy ones are within 1% of the range
    (the same codecs decode both sides, so in practice they are equal too)."""
    checked = {"lossless": 0, "lossy": 0}
    for sop, path in stored.files.items():
        ds = stored.dataset(sop)
        syntax = syntax_of(ds)
        if syntax not in LOSSLESS | LOSSY or "PixelData" not in ds:
            continue
        count = int(ds.get("NumberOfFrames", 1) or 1)
        response = await archive.client.get(
            f"{stored.path_of(sop)}/frames/{','.join(str(n) for n in range(1, count + 1))}",
            headers={"Accept": 'multipart/related; type="application/octet-stream"'},
        )
        assert response.status_code == 200, (path, response.text)
        found = parts(response)
        samples = int(ds.Rows) * int(ds.Columns) * int(ds.SamplesPerPixel)
        if path.name == "XA_4frame_jpeg_lossless.dcm":  # pydicom cannot split its 4 frames
            assert [len(p) for _, p in found] == [samples * int(ds.BitsAllocated) // 8] * count
            continue
        assert all(f"transfer-syntax={EXPLICIT_LE}" in t for t, _ in found)
        ds.decompress()
        size = len(ds.PixelData) // count
        for n, (_, payload) in enumerate(found):
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


async def test_raw_file_bytes_with_transfer_syntax_star(archive: Archive, stored: Stored) -> None:
    """transfer-syntax=* sends every instance as stored, byte for byte."""
    for sop, path in list(stored.files.items())[:30]:
        response = await archive.client.get(
            stored.path_of(sop), headers={"Accept": ACCEPT_AS_STORED}
        )
        [(_, payload)] = parts(response)
        assert payload == path.read_bytes()


async def test_zip_holds_every_instance_of_a_series(archive: Archive, stored: Stored) -> None:
    """application/zip: one entry per instance, as stored."""
    sop = next(iter(stored.files))
    ds = stored.dataset(sop)
    url = f"/studies/{ds.StudyInstanceUID}/series/{ds.SeriesInstanceUID}"
    response = await archive.client.get(url, headers={"Accept": "application/zip"})
    assert response.status_code == 200 and response.headers["content-type"] == "application/zip"
    with zipfile.ZipFile(io.BytesIO(response.content)) as archived:
        names = archived.namelist()
        member = f"{ds.StudyInstanceUID}/{ds.SeriesInstanceUID}/{sop}.dcm"
        assert member in names
        assert archived.read(member) == stored.files[sop].read_bytes()


async def test_metadata_etag_gzip_and_xml(archive: Archive, stored: Stored) -> None:
    """ETag with If-None-Match → 304; gzip when accepted; PS3.19 XML on request."""
    sop = stored.by_name("enhanced_MR_10frame")
    ds = stored.dataset(sop)
    url = f"/studies/{ds.StudyInstanceUID}/metadata"
    first = await archive.client.get(url, headers={"Accept-Encoding": "gzip"})
    assert first.status_code == 200 and first.headers["Content-Encoding"] == "gzip"
    etag = first.headers["ETag"]
    again = await archive.client.get(url, headers={"If-None-Match": etag})
    assert again.status_code == 304 and again.headers["ETag"] == etag
    raw = await archive.client.get(url, headers={"Accept-Encoding": "identity"})
    assert "Content-Encoding" not in raw.headers
    async with archive.client.stream("GET", url, headers={"Accept-Encoding": "gzip"}) as streamed:
        compressed = b"".join([chunk async for chunk in streamed.aiter_raw()])
    assert gzip.decompress(compressed) == raw.content
    xml = await archive.client.get(
        url, headers={"Accept": 'multipart/related; type="application/dicom+xml"'}
    )
    assert xml.status_code == 200
    assert all(t.startswith("application/dicom+xml") for t, _ in parts(xml))


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
async def test_errors(
    archive: Archive, stored: Stored, suffix: str, headers: dict[str, str], status: int
) -> None:
    """404 unknown entities or frames, 400 malformed frame lists, 406 unsatisfiable Accept."""
    sop = stored.by_name("enhanced_MR_10frame")
    ds = stored.dataset(sop)
    series = f"/studies/{ds.StudyInstanceUID}/series/{ds.SeriesInstanceUID}"
    target = suffix.format(series=series, instance=f"{series}/instances/{sop}")
    response = await archive.client.get(target, headers=headers)
    assert response.status_code == status, response.text
