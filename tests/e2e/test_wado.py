"""WADO-RS end to end through dicomweb-client (PS3.18 10.4, 8.3.5), in both modes: the real
corpus stored by STOW-RS, its metadata, instances, frames, bulk data and rendered images read
back. The protocol cases (media types, Range, ETag, errors) are in tests/service/test_wado.py."""

from __future__ import annotations

import asyncio
import io
from typing import Any

import httpx
import numpy as np
import pytest
from dicomweb_client.api import DICOMwebClient
from PIL import Image
from pydicom.encaps import generate_frames

from pacsflow.dicom.frames import number_of_frames
from pacsflow.render import render_frames
from pacsflow.render.params import RenderParams
from tests.support.backends import put_object, stored_object
from tests.support.corpus import CORPUS, uids_of
from tests.support.dicomweb import stow_file, value
from tests.support.servers import Server
from tests.support.stored import EXPLICIT_LE, Stored, syntax_of

IMPLICIT_LE = "1.2.840.10008.1.2"

JsonDict = dict[str, Any]


@pytest.fixture
def stored(corpus_archive: Stored) -> Stored:
    """The corpus as the archive of this mode holds it (tests/e2e/conftest.py)."""
    return corpus_archive


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


def test_bulkdata_byte_range_through_the_client(stored: Stored) -> None:
    """retrieve_bulkdata with a byte range: the first bytes of the bulk value."""
    sop = stored.by_name("US_palette_segmented_16bit_lut.dcm")
    whole = bytes(stored.dataset(sop)[0x00281221].value)
    url = f"{stored.path_of(sop)}/bulkdata/00281221"
    client = DICOMwebClient(url=stored.url)
    assert client.retrieve_bulkdata(url, byte_range=(0, 9))[0] == whole[:10]


def test_dicomweb_client_retrieves_study_series_instance_and_frames(stored: Stored) -> None:
    """retrieve_study/series/instance (Explicit VR LE by default) and retrieve_instance_frames."""
    client = DICOMwebClient(url=stored.url)
    sop = stored.by_name("enhanced_MR_10frame")
    ds = stored.dataset(sop)
    study, series = str(ds.StudyInstanceUID), str(ds.SeriesInstanceUID)
    stored_syntax = syntax_of(ds)
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


def test_instance_rendered_through_dicomweb_client(stored: Stored) -> None:
    """retrieve_instance_rendered and retrieve_instance_frames_rendered (PS3.18 8.3.5)."""
    client = DICOMwebClient(url=stored.url)
    uids = uids_of(CORPUS / "modality" / "CT_small.dcm")  # or its deflated copy, same UIDs
    assert uids[2] in stored.files
    jpeg = Image.open(io.BytesIO(client.retrieve_instance_rendered(*uids)))
    assert (jpeg.format, jpeg.size, jpeg.mode) == ("JPEG", (128, 128), "L")
    png = client.retrieve_instance_rendered(*uids, media_types=("image/png",))
    assert Image.open(io.BytesIO(png)).format == "PNG"
    small = client.retrieve_instance_rendered(*uids, params={"viewport": "64,64"})
    assert Image.open(io.BytesIO(small)).size == (64, 64)
    frame = client.retrieve_instance_frames_rendered(*uids, frame_numbers=[1])
    assert Image.open(io.BytesIO(frame)).size == (128, 128)


def test_instances_as_stored_have_a_content_length_and_a_validator(stored: Stored) -> None:
    """One instance as stored: a single application/dicom body with its Content-Length (no
    chunks), the stored file; a series' weak ETag answers If-None-Match with 304; a small
    transcoded multipart answer is sent whole too."""
    sop = next(iter(stored.files))
    ds = stored.dataset(sop)
    single = {"Accept": "application/dicom; transfer-syntax=*"}
    with httpx.stream("GET", stored.path_of(sop), headers=single) as response:
        body = b"".join(response.iter_raw())
        assert response.status_code == 200
        assert "transfer-encoding" not in response.headers
        assert int(response.headers["Content-Length"]) == len(body)
    assert body == stored.files[sop].read_bytes()
    series = f"{stored.url}/studies/{ds.StudyInstanceUID}/series/{ds.SeriesInstanceUID}"
    as_stored = {"Accept": 'multipart/related; type="application/dicom"; transfer-syntax=*'}
    response = httpx.get(series, headers=as_stored)
    assert response.status_code == 200 and stored.files[sop].read_bytes() in response.content
    etag = response.headers["ETag"]
    assert etag.startswith('W/"')
    again = httpx.get(series, headers={**as_stored, "If-None-Match": etag})
    assert again.status_code == 304 and again.headers["ETag"] == etag and not again.content
    other = httpx.get(series, headers={"Accept": "application/zip", "If-None-Match": etag})
    assert other.status_code == 200  # another representation, another tag
    implicit = next(s for s in stored.files if syntax_of(stored.dataset(s)) == IMPLICIT_LE)
    explicit = {"Accept": 'multipart/related; type="application/dicom"'}  # default: Explicit LE
    with httpx.stream("GET", stored.path_of(implicit), headers=explicit) as response:
        body = b"".join(response.iter_raw())
        assert response.status_code == 200
        assert int(response.headers["Content-Length"]) == len(body)  # small: sent whole
        assert f"transfer-syntax={EXPLICIT_LE}\r\n".encode() in body


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


def test_series_thumbnails_are_made_ahead_by_a_consumer_of_events(server: Server) -> None:
    """The thumbnail processor (a consumer of ``events``) stores each image series' thumbnail:
    the bytes a live rendering makes; a thumbnail request without parameters answers the one
    stored, one with parameters or ``Cache-Control: no-cache`` is rendered."""
    path = CORPUS / "multiframe" / "enhanced_MR_10frame_rle.dcm"
    assert stow_file(server.url, path).status_code == 200
    study, series_uid, sop = uids_of(path)
    series = f"studies/{study}/series/{series_uid}"
    settings = server.settings()
    key = f"{settings.site}/{series}/thumbnail"
    held = asyncio.run(stored_object(settings, key))
    assert held is not None, "no thumbnail was made for the series"
    label, _, jpeg = held.partition(b"\n")
    assert label.split()[0].decode() == sop
    url = f"{server.url}/{series}/thumbnail"
    accept = {"Accept": "image/jpeg, image/png;q=0.5"}
    marked = io.BytesIO()
    Image.new("L", (8, 8), 77).save(marked, "JPEG")  # stands for the made-ahead thumbnail
    asyncio.run(put_object(settings, key, label + b"\n" + marked.getvalue()))
    assert httpx.get(url, headers=accept).content == marked.getvalue()
    live = httpx.get(url, headers={**accept, "Cache-Control": "no-cache"})
    assert live.status_code == 200 and live.content == jpeg
    small = httpx.get(url, params={"viewport": "64,64"}, headers=accept)
    assert Image.open(io.BytesIO(small.content)).size == (64, 64)
