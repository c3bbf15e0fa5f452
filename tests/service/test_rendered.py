"""Rendered resources, thumbnails and WADO-URI in process (PS3.18 8.3.5, 8.3.6, 9): decoded
images have the expected size and mode, window and viewport change the output, animated GIFs
carry every frame, structured reports come out as documents, bad parameters are 400 and
unsatisfiable media types 406; over real corpus files stored through STOW-RS."""

from __future__ import annotations

import io
import warnings
from collections.abc import AsyncIterator

import httpx
import numpy as np
import pydicom
import pytest
import pytest_asyncio
from PIL import Image
from pydicom.uid import generate_uid

from tests.support.archive import Archive, running_archive
from tests.support.corpus import CORPUS
from tests.support.dicomweb import client_encoding

pytestmark = pytest.mark.asyncio(loop_scope="module")

FILES = {
    "ct": "modality/CT_small.dcm",
    "mr10": "multiframe/enhanced_MR_10frame_rle.dcm",
    "rgb": "multiframe/SC_rgb_2frame.dcm",
    "sr": "objects/SR_comprehensive_nested.dcm",
    "us": "multiframe/US_cine_30frame_jpeg_ybr_full_422.dcm",
}


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def archive(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Archive]:
    """The module's archive, with the de-identification secret ``anonymize=yes`` needs."""
    data = tmp_path_factory.mktemp("rendered") / "data"
    async with running_archive(data, anonymize_secret="a-secret-of-the-rendered-tests") as running:
        yield running


@pytest_asyncio.fixture(scope="module", loop_scope="module", autouse=True)
async def stored(archive: Archive) -> AsyncIterator[None]:
    """The files of FILES stored once for the module."""
    for name in FILES.values():
        assert (await archive.stow_files(CORPUS / name)).status_code == 200, name
    yield


def _ds(key: str) -> pydicom.Dataset:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return pydicom.dcmread(CORPUS / FILES[key], stop_before_pixels=True)


def _url(key: str) -> str:
    ds = _ds(key)
    series = f"/studies/{ds.StudyInstanceUID}/series/{ds.SeriesInstanceUID}"
    return f"{series}/instances/{ds.SOPInstanceUID}"


def _image(response: httpx.Response) -> Image.Image:
    assert response.status_code == 200, response.text
    return Image.open(io.BytesIO(response.content))


async def test_accept_query_parameter_chooses_the_media_type(archive: Archive) -> None:
    """``accept=image/png`` in the query (PS3.18 8.3.3.1) beside the Accept header."""
    as_png = await archive.client.get(f"{_url('ct')}/rendered", params={"accept": "image/png"})
    assert as_png.headers["content-type"] == "image/png"


async def test_window_changes_the_pixels(archive: Archive) -> None:
    """A narrow window saturates more pixels than a wide one (PS3.18 8.3.5.1.2)."""
    url = f"{_url('ct')}/rendered"
    png = {"Accept": "image/png"}
    narrow = np.asarray(
        _image(await archive.client.get(url, params={"window": "40,80,linear"}, headers=png))
    )
    wide = np.asarray(
        _image(await archive.client.get(url, params={"window": "40,4000,linear"}, headers=png))
    )
    assert ((narrow == 0) | (narrow == 255)).mean() > ((wide == 0) | (wide == 255)).mean()
    assert not np.array_equal(narrow, wide)
    sigmoid = np.asarray(
        _image(await archive.client.get(url, params={"window": "40,80,sigmoid"}, headers=png))
    )
    assert not np.array_equal(sigmoid, narrow)


async def test_gif_animates_every_frame_and_colour_stays_colour(archive: Archive) -> None:
    gif = _image(
        await archive.client.get(f"{_url('mr10')}/rendered", headers={"Accept": "image/gif"})
    )
    assert gif.format == "GIF" and gif.n_frames == 10
    frames = _image(
        await archive.client.get(
            f"{_url('mr10')}/frames/3,5,7/rendered", headers={"Accept": "image/gif"}
        )
    )
    assert frames.n_frames == 3
    rgb = _image(await archive.client.get(f"{_url('rgb')}/rendered"))
    assert rgb.mode == "RGB"
    ybr = _image(await archive.client.get(f"{_url('us')}/frames/15/rendered"))
    assert ybr.mode == "RGB" and np.asarray(ybr).std() > 1


async def test_structured_report_renders_as_html_and_text(archive: Archive) -> None:
    url = f"{_url('sr')}/rendered"
    html = await archive.client.get(url)
    assert html.headers["content-type"].startswith("text/html")
    assert "<html" in html.text.lower()
    text = await archive.client.get(url, headers={"Accept": "text/plain"})
    assert text.headers["content-type"].startswith("text/plain") and text.text.strip()
    assert (await archive.client.get(url, headers={"Accept": "image/jpeg"})).status_code == 406


async def test_thumbnails_at_every_level(archive: Archive) -> None:
    ds = _ds("mr10")
    study = f"/studies/{ds.StudyInstanceUID}"
    for url in (
        f"{study}/thumbnail",
        f"{study}/series/{ds.SeriesInstanceUID}/thumbnail",
        f"{_url('mr10')}/thumbnail",
        f"{_url('mr10')}/frames/2/thumbnail",
    ):
        image = _image(await archive.client.get(url))
        assert image.format == "JPEG" and max(image.size) <= 128
    big = _image(await archive.client.get(f"{_url('ct')}/thumbnail", params={"viewport": "32,32"}))
    assert big.size == (32, 32)
    assert (await archive.client.get(f"{_url('sr')}/thumbnail")).status_code == 406


async def test_series_rendered_is_one_part_per_instance(archive: Archive) -> None:
    ds = _ds("ct")
    response = await archive.client.get(
        f"/studies/{ds.StudyInstanceUID}/series/{ds.SeriesInstanceUID}/rendered"
    )
    assert response.status_code == 200
    assert response.headers["content-type"].startswith('multipart/related; type="image/jpeg"')
    assert response.content.count(b"Content-Type: image/jpeg") == 1


@pytest.mark.parametrize(
    ("suffix", "params", "status"),
    [
        ("/rendered", {"window": "40"}, 400),
        ("/rendered", {"window": "40,-1,linear"}, 400),
        ("/rendered", {"window": "40,400,cubic"}, 400),
        ("/rendered", {"viewport": "a,b"}, 400),
        ("/rendered", {"quality": "101"}, 400),
        ("/rendered", {"annotation": "everything"}, 400),
        ("/rendered", {"nonsense": "1"}, 400),
        ("/frames/2/rendered", {}, 404),
        ("/frames/0/rendered", {}, 400),
    ],
)
async def test_invalid_rendering_requests(
    archive: Archive, suffix: str, params: dict[str, str], status: int
) -> None:
    response = await archive.client.get(f"{_url('ct')}{suffix}", params=params)
    assert response.status_code == status, response.text


async def test_annotation_burns_in_text(archive: Archive) -> None:
    url = f"{_url('ct')}/rendered"
    png = {"Accept": "image/png"}
    plain = np.asarray(_image(await archive.client.get(url, headers=png)))
    annotated = np.asarray(
        _image(
            await archive.client.get(url, params={"annotation": "patient,technique"}, headers=png)
        )
    )
    assert plain.shape == annotated.shape and not np.array_equal(plain, annotated)


async def _wado(archive: Archive, key: str, **extra: str) -> httpx.Response:
    ds = _ds(key)
    params = {
        "requestType": "WADO",
        "studyUID": str(ds.StudyInstanceUID),
        "seriesUID": str(ds.SeriesInstanceUID),
        "objectUID": str(ds.SOPInstanceUID),
        **extra,
    }
    return await archive.client.get("/wado", params=params)


async def test_wado_uri_renders_and_retrieves(archive: Archive) -> None:
    """PS3.18 9: image/jpeg by default, rows/columns/window/frameNumber, application/dicom."""
    assert _image(await _wado(archive, "ct")).format == "JPEG"
    sized = _image(await _wado(archive, "ct", contentType="image/png", rows="64", columns="64"))
    assert sized.size == (64, 64)
    framed = _image(
        await _wado(archive, "mr10", frameNumber="4", windowCenter="200", windowWidth="400")
    )
    assert framed.format == "JPEG"
    dicom = await _wado(archive, "ct", contentType="application/dicom")
    assert dicom.headers["content-type"] == "application/dicom"
    ds = pydicom.dcmread(io.BytesIO(dicom.content))
    assert ds.file_meta.TransferSyntaxUID == "1.2.840.10008.1.2.1"
    assert ds.SOPInstanceUID == _ds("ct").SOPInstanceUID
    report = await _wado(archive, "sr")
    assert report.headers["content-type"].startswith("text/html")


async def test_wado_uri_anonymize_removes_identity(archive: Archive) -> None:
    original = _ds("ct")
    response = await _wado(archive, "ct", contentType="application/dicom", anonymize="yes")
    ds = pydicom.dcmread(io.BytesIO(response.content))
    assert ds.PatientIdentityRemoved == "YES"
    assert ds.get("PatientName", "") != original.PatientName
    assert ds.StudyInstanceUID != original.StudyInstanceUID
    again = pydicom.dcmread(
        io.BytesIO(
            (await _wado(archive, "ct", contentType="application/dicom", anonymize="yes")).content
        )
    )
    assert again.StudyInstanceUID == ds.StudyInstanceUID  # the same mapping every time


@pytest.mark.parametrize(
    ("extra", "status"),
    [
        ({"requestType": "WADOX"}, 400),
        ({"objectUID": "9.9.9"}, 404),
        ({"objectUID": "not-a-uid"}, 400),
        ({"anonymize": "yes", "contentType": "image/jpeg"}, 400),
        ({"anonymize": "no"}, 400),
        ({"windowCenter": "40"}, 400),
        ({"contentType": "video/mpeg"}, 406),
        ({"frameNumber": "9"}, 400),
    ],
)
async def test_wado_uri_errors(archive: Archive, extra: dict[str, str], status: int) -> None:
    assert (await _wado(archive, "ct", **extra)).status_code == status


async def test_wado_uri_requires_the_three_uids(archive: Archive) -> None:
    response = await archive.client.get("/wado", params={"requestType": "WADO", "studyUID": "1.2"})
    assert response.status_code == 400 and "seriesUID" in response.json()["message"]


async def test_renderings_are_validated_by_etag_and_follow_a_replaced_instance(
    archive: Archive,
) -> None:
    """A rendering carries a weak ETag: If-None-Match answers 304, other parameters or Accept
    make another tag, and an instance replaced under the same UIDs renders anew (its digest is
    in the tag), not from the server's render cache."""
    client = archive.client
    ds = pydicom.dcmread(CORPUS / FILES["ct"])
    ds.StudyInstanceUID, ds.SeriesInstanceUID = generate_uid(), generate_uid()
    ds.SOPInstanceUID = ds.file_meta.MediaStorageSOPInstanceUID = generate_uid()
    stored = await archive.stow([client_encoding(ds)])
    assert stored.status_code == 200, (stored.headers, stored.text)
    study = f"/studies/{ds.StudyInstanceUID}"
    url = f"{study}/series/{ds.SeriesInstanceUID}/instances/{ds.SOPInstanceUID}/rendered"
    png = {"Accept": "image/png"}
    first = await client.get(url, headers=png)
    etag = first.headers["ETag"]
    assert first.status_code == 200 and etag.startswith('W/"')
    assert first.headers["Vary"] == "Accept"
    again = await client.get(url, headers={**png, "If-None-Match": etag})
    assert again.status_code == 304 and again.headers["ETag"] == etag and not again.content
    assert (await client.get(url, headers=png)).content == first.content  # the same again
    anew = await client.get(
        url, headers={**png, "Cache-Control": "no-cache", "If-None-Match": '"x"'}
    )
    assert anew.headers["ETag"] == etag and anew.content == first.content  # rendered anew
    jpeg = await client.get(url, headers={"Accept": "image/jpeg", "If-None-Match": etag})
    assert jpeg.status_code == 200 and jpeg.headers["ETag"] != etag
    windowed = await client.get(url, params={"window": "0,100,linear"}, headers=png)
    assert windowed.status_code == 200 and windowed.headers["ETag"] != etag
    ds.PixelData = (4095 - ds.pixel_array).astype(ds.pixel_array.dtype).tobytes()  # inverted
    assert (await archive.stow([client_encoding(ds)])).status_code == 202  # replaced: warning
    replaced = await client.get(url, headers={**png, "If-None-Match": etag})
    assert replaced.status_code == 200 and replaced.headers["ETag"] != etag
    assert not np.array_equal(np.asarray(_image(replaced)), np.asarray(_image(first)))
    thumbnail = (await client.get(f"{study}/thumbnail")).headers["ETag"]
    again = await client.get(f"{study}/thumbnail", headers={"If-None-Match": thumbnail})
    assert again.status_code == 304
