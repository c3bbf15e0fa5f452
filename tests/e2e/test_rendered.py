"""Rendered resources, thumbnails and WADO-URI end to end (PS3.18 10.4, 8.3.5, 8.3.6, 9).

Through dicomweb-client's ``retrieve_*_rendered`` and raw HTTP, on the embedded server with real
corpus files: decoded images have the expected size and mode, window and viewport change the
output, animated GIFs carry every frame, structured reports and PDFs come out as documents.
"""

from __future__ import annotations

import io
import warnings
from collections.abc import Iterator

import httpx
import numpy as np
import pydicom
import pytest
from dicomweb_client.api import DICOMwebClient
from PIL import Image
from pydicom.uid import generate_uid

from tests.conftest import CORPUS, Server, start_server
from tests.helpers import client_encoding, stow, stow_file

FILES = {
    "ct": "modality/CT_small.dcm",
    "mr10": "multiframe/enhanced_MR_10frame_rle.dcm",
    "rgb": "multiframe/SC_rgb_2frame.dcm",
    "sr": "objects/SR_comprehensive_nested.dcm",
    "us": "multiframe/US_cine_30frame_jpeg_ybr_full_422.dcm",
}


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    secret = {"PACSFLOW_ANONYMIZE_SECRET": "a-secret-of-the-rendered-tests"}  # anonymize=yes
    srv = start_server(tmp_path_factory.mktemp("rendered") / "data", secret)
    try:
        for name in FILES.values():
            assert stow_file(srv.url, CORPUS / name).status_code == 200, name
        yield srv
    finally:
        srv.stop()


def _ds(key: str) -> pydicom.Dataset:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return pydicom.dcmread(CORPUS / FILES[key], stop_before_pixels=True)


def _url(server: Server, key: str) -> str:
    ds = _ds(key)
    series = f"{server.url}/studies/{ds.StudyInstanceUID}/series/{ds.SeriesInstanceUID}"
    return f"{series}/instances/{ds.SOPInstanceUID}"


def _image(response: httpx.Response) -> Image.Image:
    assert response.status_code == 200, response.text
    return Image.open(io.BytesIO(response.content))


def test_instance_rendered_through_dicomweb_client(server: Server) -> None:
    client = DICOMwebClient(url=server.url)
    ds = _ds("ct")
    uids = (str(ds.StudyInstanceUID), str(ds.SeriesInstanceUID), str(ds.SOPInstanceUID))
    jpeg = Image.open(io.BytesIO(client.retrieve_instance_rendered(*uids)))
    assert (jpeg.format, jpeg.size, jpeg.mode) == ("JPEG", (128, 128), "L")
    png = client.retrieve_instance_rendered(*uids, media_types=("image/png",))
    assert Image.open(io.BytesIO(png)).format == "PNG"
    small = client.retrieve_instance_rendered(*uids, params={"viewport": "64,64"})
    as_png = httpx.get(f"{_url(server, 'ct')}/rendered", params={"accept": "image/png"})
    assert as_png.headers["content-type"] == "image/png"
    assert Image.open(io.BytesIO(small)).size == (64, 64)
    frame = client.retrieve_instance_frames_rendered(*uids, frame_numbers=[1])
    assert Image.open(io.BytesIO(frame)).size == (128, 128)


def test_window_changes_the_pixels(server: Server) -> None:
    """A narrow window saturates more pixels than a wide one (PS3.18 8.3.5.1.2)."""
    url = f"{_url(server, 'ct')}/rendered"
    png = {"Accept": "image/png"}
    narrow = np.asarray(_image(httpx.get(url, params={"window": "40,80,linear"}, headers=png)))
    wide = np.asarray(_image(httpx.get(url, params={"window": "40,4000,linear"}, headers=png)))
    assert ((narrow == 0) | (narrow == 255)).mean() > ((wide == 0) | (wide == 255)).mean()
    assert not np.array_equal(narrow, wide)
    sigmoid = np.asarray(_image(httpx.get(url, params={"window": "40,80,sigmoid"}, headers=png)))
    assert not np.array_equal(sigmoid, narrow)


def test_gif_animates_every_frame_and_colour_stays_colour(server: Server) -> None:
    gif = _image(httpx.get(f"{_url(server, 'mr10')}/rendered", headers={"Accept": "image/gif"}))
    assert gif.format == "GIF" and gif.n_frames == 10
    frames = _image(
        httpx.get(f"{_url(server, 'mr10')}/frames/3,5,7/rendered", headers={"Accept": "image/gif"})
    )
    assert frames.n_frames == 3
    rgb = _image(httpx.get(f"{_url(server, 'rgb')}/rendered"))
    assert rgb.mode == "RGB"
    ybr = _image(httpx.get(f"{_url(server, 'us')}/frames/15/rendered"))
    assert ybr.mode == "RGB" and np.asarray(ybr).std() > 1


def test_structured_report_renders_as_html_and_text(server: Server) -> None:
    url = f"{_url(server, 'sr')}/rendered"
    html = httpx.get(url)
    assert html.headers["content-type"].startswith("text/html")
    assert "<html" in html.text.lower()
    text = httpx.get(url, headers={"Accept": "text/plain"})
    assert text.headers["content-type"].startswith("text/plain") and text.text.strip()
    assert httpx.get(url, headers={"Accept": "image/jpeg"}).status_code == 406


def test_thumbnails_at_every_level(server: Server) -> None:
    ds = _ds("mr10")
    study = f"{server.url}/studies/{ds.StudyInstanceUID}"
    for url in (
        f"{study}/thumbnail",
        f"{study}/series/{ds.SeriesInstanceUID}/thumbnail",
        f"{_url(server, 'mr10')}/thumbnail",
        f"{_url(server, 'mr10')}/frames/2/thumbnail",
    ):
        image = _image(httpx.get(url))
        assert image.format == "JPEG" and max(image.size) <= 128
    big = _image(httpx.get(f"{_url(server, 'ct')}/thumbnail", params={"viewport": "32,32"}))
    assert big.size == (32, 32)
    assert httpx.get(f"{_url(server, 'sr')}/thumbnail").status_code == 406


def test_renderings_are_validated_by_etag_and_follow_a_replaced_instance(server: Server) -> None:
    """A rendering carries a weak ETag: If-None-Match answers 304, other parameters or Accept
    make another tag, and an instance replaced under the same UIDs renders anew (its digest is
    in the tag), not from the server's render cache."""
    ds = pydicom.dcmread(CORPUS / FILES["ct"])
    ds.StudyInstanceUID, ds.SeriesInstanceUID = generate_uid(), generate_uid()
    ds.SOPInstanceUID = ds.file_meta.MediaStorageSOPInstanceUID = generate_uid()
    stored = stow(server.url, [client_encoding(ds)])
    assert stored.status_code == 200, (stored.headers, stored.text)
    study = f"{server.url}/studies/{ds.StudyInstanceUID}"
    url = f"{study}/series/{ds.SeriesInstanceUID}/instances/{ds.SOPInstanceUID}/rendered"
    png = {"Accept": "image/png"}
    first = httpx.get(url, headers=png)
    etag = first.headers["ETag"]
    assert first.status_code == 200 and etag.startswith('W/"')
    assert first.headers["Vary"] == "Accept"
    again = httpx.get(url, headers={**png, "If-None-Match": etag})
    assert again.status_code == 304 and again.headers["ETag"] == etag and not again.content
    assert httpx.get(url, headers=png).content == first.content  # the same picture again
    anew = httpx.get(url, headers={**png, "Cache-Control": "no-cache", "If-None-Match": '"x"'})
    assert anew.headers["ETag"] == etag and anew.content == first.content  # rendered anew
    jpeg = httpx.get(url, headers={"Accept": "image/jpeg", "If-None-Match": etag})
    assert jpeg.status_code == 200 and jpeg.headers["ETag"] != etag
    windowed = httpx.get(url, params={"window": "0,100,linear"}, headers=png)
    assert windowed.status_code == 200 and windowed.headers["ETag"] != etag
    ds.PixelData = (4095 - ds.pixel_array).astype(ds.pixel_array.dtype).tobytes()  # inverted
    assert stow(server.url, [client_encoding(ds)]).status_code == 202  # replaced: a warning
    replaced = httpx.get(url, headers={**png, "If-None-Match": etag})
    assert replaced.status_code == 200 and replaced.headers["ETag"] != etag
    assert not np.array_equal(np.asarray(_image(replaced)), np.asarray(_image(first)))
    thumbnail = httpx.get(f"{study}/thumbnail").headers["ETag"]
    again = httpx.get(f"{study}/thumbnail", headers={"If-None-Match": thumbnail})
    assert again.status_code == 304


def test_series_rendered_is_one_part_per_instance(server: Server) -> None:
    ds = _ds("ct")
    response = httpx.get(
        f"{server.url}/studies/{ds.StudyInstanceUID}/series/{ds.SeriesInstanceUID}/rendered"
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
def test_invalid_rendering_requests(
    server: Server, suffix: str, params: dict[str, str], status: int
) -> None:
    response = httpx.get(f"{_url(server, 'ct')}{suffix}", params=params)
    assert response.status_code == status, response.text


def test_annotation_burns_in_text(server: Server) -> None:
    url = f"{_url(server, 'ct')}/rendered"
    png = {"Accept": "image/png"}
    plain = np.asarray(_image(httpx.get(url, headers=png)))
    annotated = np.asarray(
        _image(httpx.get(url, params={"annotation": "patient,technique"}, headers=png))
    )
    assert plain.shape == annotated.shape and not np.array_equal(plain, annotated)


def _wado(server: Server, key: str, **extra: str) -> httpx.Response:
    ds = _ds(key)
    params = {
        "requestType": "WADO",
        "studyUID": str(ds.StudyInstanceUID),
        "seriesUID": str(ds.SeriesInstanceUID),
        "objectUID": str(ds.SOPInstanceUID),
        **extra,
    }
    return httpx.get(f"{server.url}/wado", params=params)


def test_wado_uri_renders_and_retrieves(server: Server) -> None:
    """PS3.18 9: image/jpeg by default, rows/columns/window/frameNumber, application/dicom."""
    assert _image(_wado(server, "ct")).format == "JPEG"
    sized = _image(_wado(server, "ct", contentType="image/png", rows="64", columns="64"))
    assert sized.size == (64, 64)
    framed = _image(_wado(server, "mr10", frameNumber="4", windowCenter="200", windowWidth="400"))
    assert framed.format == "JPEG"
    dicom = _wado(server, "ct", contentType="application/dicom")
    assert dicom.headers["content-type"] == "application/dicom"
    ds = pydicom.dcmread(io.BytesIO(dicom.content))
    assert ds.file_meta.TransferSyntaxUID == "1.2.840.10008.1.2.1"
    assert ds.SOPInstanceUID == _ds("ct").SOPInstanceUID
    report = _wado(server, "sr")
    assert report.headers["content-type"].startswith("text/html")


def test_wado_uri_anonymize_removes_identity(server: Server) -> None:
    original = _ds("ct")
    response = _wado(server, "ct", contentType="application/dicom", anonymize="yes")
    ds = pydicom.dcmread(io.BytesIO(response.content))
    assert ds.PatientIdentityRemoved == "YES"
    assert ds.get("PatientName", "") != original.PatientName
    assert ds.StudyInstanceUID != original.StudyInstanceUID
    again = pydicom.dcmread(
        io.BytesIO(_wado(server, "ct", contentType="application/dicom", anonymize="yes").content)
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
def test_wado_uri_errors(server: Server, extra: dict[str, str], status: int) -> None:
    assert _wado(server, "ct", **extra).status_code == status


def test_wado_uri_requires_the_three_uids(server: Server) -> None:
    response = httpx.get(f"{server.url}/wado", params={"requestType": "WADO", "studyUID": "1.2"})
    assert response.status_code == 400 and "seriesUID" in response.json()["message"]
