"""Bad metadata + bulk data requests, in process (PS3.18 10.5.1.4, 10.5.3, Annex I).

Each bad instance gets its Failure Reason and a Warning text while the good ones of the same
request are stored (202); a request whose metadata cannot be read at all is a 400, one too
large a 413, an unsupported type a 415. Nothing of a refused instance is left anywhere: not in
the index, not in the object store's staging area.
"""

from __future__ import annotations

import struct
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from pacsflow.dicom.status import FailureReason
from tests.support import capture as wic
from tests.support.metadata_archive import Archive, archive_in_process

JPEG = wic.encode(wic.photo(48, 32), "JPEG")
CONTEXT = wic.PatientContext()


@pytest.fixture
async def archive(tmp_path: Path) -> AsyncIterator[Archive]:
    async with archive_in_process(tmp_path) as running:
        yield running


def good() -> wic.Capture:
    return wic.capture(CONTEXT, "image/jpeg", JPEG)


def with_class(
    sop_class: str, media_type: str, data: bytes, tag: str = wic.PIXEL_DATA
) -> wic.Capture:
    return wic.capture(
        CONTEXT, media_type, data, tag=tag, **{"00080016": {"vr": "UI", "Value": [sop_class]}}
    )


async def assert_only_stored(archive: Archive, stored: list[wic.Stored]) -> None:
    """The index holds exactly the stored instances; no staged part is left behind."""
    found = (await archive.http.get("/dicom-web/instances")).json()
    assert sorted(i["00080018"]["Value"][0] for i in found) == sorted(s.sop_uid for s in stored)
    assert await archive.keys("default/staging") == []


async def outcome(archive: Archive, captures: list[wic.Capture], **options: Any) -> Any:
    response = await archive.client.store(captures, **options)
    assert response.status_code in (200, 202, 409), response.text
    return response


def raw_request(parts: list[tuple[str, bytes, str | None]]) -> tuple[bytes, str]:
    """A metadata request built part by part: (media type, bytes, Content-Location)."""
    return wic.multipart_body("application/dicom+json", parts)


@pytest.mark.parametrize(
    ("metadata", "text"),
    [
        (b'[{"00100020": {"vr": "LO", "Value": ["X"]}', "not JSON"),
        (b'{"00100020": {"vr": "LO", "Value": ["X"]}}', "not an array"),
        (b"[]", "holds no data set"),
    ],
    ids=["malformed", "object", "empty"],
)
async def test_metadata_that_cannot_be_read_is_a_bad_request(
    archive: Archive, metadata: bytes, text: str
) -> None:
    body, content_type = raw_request(
        [("application/dicom+json", metadata, None), ("image/jpeg", JPEG, "urn:x")]
    )
    response = await archive.http.post(
        "/dicom-web/studies", content=body, headers={"Content-Type": content_type}
    )
    assert response.status_code == 400 and text in response.text
    await assert_only_stored(archive, [])


async def test_the_first_part_must_be_the_metadata(archive: Archive) -> None:
    body, content_type = raw_request([("image/jpeg", JPEG, "urn:x")])
    response = await archive.http.post(
        "/dicom-web/studies", content=body, headers={"Content-Type": content_type}
    )
    assert response.status_code == 400 and "8.6.1.2" in response.text


async def test_whole_request_media_types(archive: Archive) -> None:
    body, content_type = wic.json_request([good()])
    unsupported = content_type.replace("application/dicom+json", "application/dicom+yaml")
    response = await archive.http.post(
        "/dicom-web/studies", content=body, headers={"Content-Type": unsupported}
    )
    assert response.status_code == 415
    await assert_only_stored(archive, [])
    response = await archive.http.post(
        "/dicom-web/studies",
        content=body,
        headers={"Content-Type": content_type, "Accept": "text/html"},
    )
    # An Accept that offers no response type gets the default, not a refused upload
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("application/dicom+json")
    assert len(response.json()["00081199"]["Value"]) == 1


async def test_malformed_xml_fails_its_instance_only(archive: Archive) -> None:
    """One Native DICOM Model part per instance: a bad one is refused, the others stored."""
    body, content_type = wic.xml_request([good()])
    boundary = content_type.rsplit("=", 1)[1]
    bad = [
        b"<NativeDicomModel><DicomAttribute tag='00100020' vr='LO'>",
        b'<?xml version="1.0"?><!DOCTYPE x [<!ENTITY e "boom">]><NativeDicomModel/>',
        b"<Dataset/>",
    ]
    extra = b"".join(
        f"--{boundary}\r\nContent-Type: application/dicom+xml\r\n\r\n".encode() + doc + b"\r\n"
        for doc in bad
    )
    response = await archive.http.post(
        "/dicom-web/studies", content=extra + body, headers={"Content-Type": content_type}
    )
    assert response.status_code == 202
    assert [reason for _, reason in wic.failed(response.json())] == [0xC000] * 3
    warning = response.headers["warning"]
    assert "DTDs and entities are not allowed" in warning and "Native DICOM Model" in warning
    await assert_only_stored(archive, wic.referenced(response.json()))


async def test_bulk_data_references_that_do_not_resolve(archive: Archive) -> None:
    """A BulkDataURI naming no part, a part named twice, two parts of one name, a part no one
    names: each instance fails with its reason; the part no one names is an Other Failure."""
    missing = good()
    missing.metadata[wic.PIXEL_DATA]["BulkDataURI"] = "urn:nowhere"
    shared_a, shared_b = good(), good()
    shared_b.metadata[wic.PIXEL_DATA]["BulkDataURI"] = shared_a.bulk[0].location
    shared_b.bulk = []
    twin = good()
    twin.bulk.append(wic.Bulk("image/jpeg", JPEG, twin.bulk[0].location))
    ok = good()
    captures = [ok, missing, shared_a, shared_b, twin]
    body, content_type = wic.json_request(captures)
    response = await archive.http.post(
        "/dicom-web/studies", content=body, headers={"Content-Type": content_type}
    )
    result = response.json()
    assert response.status_code == 202
    assert [r for _, r in wic.failed(result)] == [
        FailureReason.BULK_DATA_MISSING,
        FailureReason.BULK_DATA_AMBIGUOUS,
        FailureReason.BULK_DATA_AMBIGUOUS,
        FailureReason.BULK_DATA_AMBIGUOUS,
    ]
    warning = response.headers["warning"]
    assert "matches the Content-Location of no part" in warning
    assert "is referenced 2 times" in warning and "2 parts have Content-Location" in warning
    await assert_only_stored(archive, wic.referenced(result))


async def test_a_part_no_instance_references_is_an_other_failure(archive: Archive) -> None:
    capture = good()
    capture.bulk.append(wic.Bulk("image/png", wic.encode(wic.photo(), "PNG")))
    response = await outcome(archive, [capture])
    result = response.json()
    assert response.status_code == 202 and len(wic.referenced(result)) == 1
    assert result["0008119A"]["Value"] == [{"00081197": {"vr": "US", "Value": [0xC000]}}]
    assert "is referenced by no BulkDataURI" in response.headers["warning"]


def progressive_jpeg() -> bytes:
    return wic.encode(wic.photo(), "JPEG", progressive=True)


def _png16() -> bytes:
    """A 16-bit-per-channel RGB PNG written to the PNG specification (Pillow cannot write one)."""
    import zlib

    def chunk(kind: bytes, data: bytes) -> bytes:
        return (
            struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))
        )

    rows = b"".join(b"\x00" + b"\x12\x34" * 3 * 4 for _ in range(4))
    header = struct.pack(">IIBBBBB", 4, 4, 16, 2, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(rows))
        + chunk(b"IEND", b"")
    )


async def test_media_that_do_not_fit(archive: Archive) -> None:
    """Media vs SOP Class (A900), media without a transfer syntax (C122), media that are not
    what they say (C000), metadata contradicting the media (A900)."""
    mp4 = wic.video([wic.photo(32, 32, seed=s) for s in range(4)])
    pdf = wic.encode(wic.photo(), "PDF")
    vl_photo, video_photo = "1.2.840.10008.5.1.4.1.1.77.1.4", "1.2.840.10008.5.1.4.1.1.77.1.4.1"
    rows = good()
    rows.metadata["00280010"] = {"vr": "US", "Value": [10]}
    lossless_claim = good()
    lossless_claim.metadata["00282110"] = {"vr": "CS", "Value": ["00"]}
    cases: list[tuple[wic.Capture, int, str]] = [
        (with_class(vl_photo, "video/mp4", mp4), 0xA900, "single-image SOP Class"),
        (with_class(video_photo, "image/jpeg", JPEG), 0xA900, "video SOP Class"),
        (
            with_class(
                "1.2.840.10008.5.1.4.1.1.104.1", "text/xml", wic.cda(), wic.ENCAPSULATED_DOCUMENT
            ),
            0xA900,
            "cannot be the Encapsulated Document of Encapsulated PDF",
        ),
        (
            with_class("1.2.840.10008.5.1.4.1.1.88.11", "image/jpeg", JPEG),
            0xA900,
            "has no Pixel Data",
        ),
        (rows, 0xA900, "Rows (0028,0010) is 10 in the metadata but 32"),
        (lossless_claim, 0xA900, "Lossy Image Compression (0028,2110) is 00"),
        (wic.capture(CONTEXT, "image/tiff", wic.encode(wic.photo(), "TIFF")), 0xC122, "image/tiff"),
        (wic.capture(CONTEXT, "image/jpeg", progressive_jpeg()), 0xC122, "progressive JPEG"),
        (wic.capture(CONTEXT, "image/png", _png16()), 0xC122, "16 bits per colour channel"),
        (wic.capture(CONTEXT, "image/jpeg", pdf), 0xC000, "does not start with the SOI marker"),
        (
            wic.capture(CONTEXT, "application/pdf", JPEG, tag=wic.ENCAPSULATED_DOCUMENT),
            0xC000,
            "%PDF- header",
        ),
        (
            wic.capture(CONTEXT, "application/msword", pdf, tag=wic.ENCAPSULATED_DOCUMENT),
            0xC122,
            "application/msword is not supported",
        ),
    ]
    response = await outcome(archive, [good()] + [c for c, _, _ in cases])
    assert response.status_code == 202
    assert [r for _, r in wic.failed(response.json())] == [r for _, r, _ in cases]
    warning = response.headers["warning"]
    for _, _, text in cases:
        assert text in warning, text
    await assert_only_stored(archive, wic.referenced(response.json()))


async def test_metadata_for_another_study_in_a_study_targeted_post(archive: Archive) -> None:
    target = "1.2.826.0.1.3680043.8.498.1"
    other = wic.capture(
        wic.PatientContext(study_uid="1.2.826.0.1.3680043.8.498.2"), "image/jpeg", JPEG
    )
    response = await outcome(archive, [other], study=target)
    assert response.status_code == 409
    assert wic.failed(response.json())[0][1] == FailureReason.STUDY_INSTANCE_UID_MISMATCH
    assert "does not match the target study" in response.headers["warning"]
    await assert_only_stored(archive, [])


async def test_limits(tmp_path: Path) -> None:
    """A bulk part over PACSFLOW_STOW_BULK_MAX_BYTES fails its instance (A700, the rest is
    stored); a metadata part over PACSFLOW_STOW_METADATA_MAX_BYTES is a 413."""
    async with archive_in_process(
        tmp_path, stow_bulk_max_bytes=16 * 1024, stow_metadata_max_bytes=4096
    ) as archive:
        big = wic.capture(CONTEXT, "image/png", wic.encode(wic.photo(400, 300, seed=9), "PNG"))
        assert len(big.bulk[0].data) > 16 * 1024
        response = await outcome(archive, [good(), big])
        assert response.status_code == 202
        assert wic.failed(response.json()) == [("", FailureReason.OUT_OF_RESOURCES)]
        assert "PACSFLOW_STOW_BULK_MAX_BYTES" in response.headers["warning"]
        stored = wic.referenced(response.json())
        wide = good()
        wide.metadata["00081030"] = {"vr": "LO", "Value": ["x" * 5000]}
        response = await archive.client.store([wide])
        assert response.status_code == 413
        await assert_only_stored(archive, stored)


async def test_an_instance_ingest_refuses_goes_to_the_dead_letters(archive: Archive) -> None:
    """Assembly reads the frame header only: a JPEG whose Huffman tables are missing is
    admitted, refused by the ingest validation every instance goes through (its codestream
    check), and dead-lettered."""
    broken = wic.without_huffman_tables(JPEG)
    response = await outcome(archive, [wic.capture(CONTEXT, "image/jpeg", broken)])
    assert response.status_code == 409
    ((sop_uid, reason),) = wic.failed(response.json())
    assert reason == FailureReason.CANNOT_UNDERSTAND and sop_uid.startswith("2.25.")
    assert "Huffman table" in response.headers["warning"]
    letters = await archive.dead_letters()
    assert [letter.record["sop_uid"] for letter in letters] == [sop_uid]
    await assert_only_stored(archive, [])


async def test_a_resent_capture_follows_the_duplicate_policy(archive: Archive) -> None:
    """The same SOP Instance UID with other pixels replaces the stored one, with B100."""
    sop = {"00080018": {"vr": "UI", "Value": ["1.2.826.0.1.3680043.8.498.77"]}}
    first = wic.capture(CONTEXT, "image/jpeg", JPEG, **sop)
    second = wic.capture(CONTEXT, "image/jpeg", wic.encode(wic.photo(seed=8), "JPEG"), **sop)
    assert (await archive.client.store([first])).status_code == 200
    response = await archive.client.store([second])
    assert response.status_code == 202
    assert wic.referenced(response.json())[0].warning == 0xB100


async def test_the_request_limit_still_holds(tmp_path: Path) -> None:
    async with archive_in_process(tmp_path, max_request_bytes=8192) as archive:
        capture = wic.capture(CONTEXT, "image/png", wic.encode(wic.photo(200, 200), "PNG"))
        response = await archive.client.store([capture])
        assert response.status_code == 413
        assert isinstance(response, httpx.Response)
        await assert_only_stored(archive, [])
