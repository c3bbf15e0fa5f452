"""STOW-RS of DICOM JSON/XML metadata with bulk data, in process (PS3.18 10.5.1.4, IHE WIC).

A WIC-style capture client sends photos, videos and documents with patient/study metadata; the
instances come back through WADO-RS equal to what pydicom builds from the same metadata and
bytes: uncompressed values exactly, compressed bytes unchanged as frames, and rendered.
"""

from __future__ import annotations

import copy
import io
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import numpy as np
import pydicom
import pytest
from PIL import Image
from pydicom.dataset import Dataset
from pydicom.encaps import generate_frames

from pacsflow.dicom.xml import xml_to_dataset
from pacsflow.stow.assemble import IMPLEMENTATION_CLASS_UID
from tests.support import capture as wic
from tests.support.corpus import CORPUS
from tests.support.dicomweb import multipart
from tests.support.metadata_archive import Archive, archive_in_process

VL_PHOTO = "1.2.840.10008.5.1.4.1.1.77.1.4"
VIDEO_PHOTO = "1.2.840.10008.5.1.4.1.1.77.1.4.1"
MF_TRUE_COLOR_SC = "1.2.840.10008.5.1.4.1.1.7.4"


@pytest.fixture
async def archive(tmp_path: Path) -> AsyncIterator[Archive]:
    async with archive_in_process(tmp_path) as running:
        yield running


def expected_dataset(metadata: dict[str, Any], bulk: dict[str, bytes]) -> Dataset:
    """What pydicom builds from the same metadata and bulk data bytes."""
    return Dataset.from_json(copy.deepcopy(metadata), lambda tag, vr, uri: bulk[uri])


def assert_holds(stored: Dataset, expected: Dataset, skip: tuple[str, ...] = ()) -> None:
    """Every element of ``expected`` is in ``stored`` with the same VR and value."""
    for element in expected:
        if element.keyword in skip:
            continue
        assert stored[element.tag] == element, element.keyword or element.tag


async def store_one(archive: Archive, capture: wic.Capture, **options: Any) -> wic.Stored:
    response = await archive.client.store([capture], **options)
    assert response.status_code == 200, (response.text, response.headers.get("warning"))
    (stored,) = wic.referenced(response.json())
    return stored


async def test_a_photo_captured_as_json_and_jpeg(archive: Archive) -> None:
    """The WIC flow: patient context + a JPEG; UIDs, pixel description and meta completed."""
    context = wic.PatientContext()
    picture = wic.photo(96, 64)
    jpeg = wic.encode(picture, "JPEG", quality=90)
    capture = wic.capture(context, "image/jpeg", jpeg)
    stored = await store_one(archive, capture)
    assert stored.sop_class_uid == VL_PHOTO
    ds = await archive.client.instance(stored.url)
    assert ds.file_meta.TransferSyntaxUID == "1.2.840.10008.1.2.4.50"
    assert ds.file_meta.ImplementationClassUID == IMPLEMENTATION_CLASS_UID
    assert ds.file_meta.MediaStorageSOPInstanceUID == ds.SOPInstanceUID == stored.sop_uid
    assert (ds.Rows, ds.Columns, ds.SamplesPerPixel) == (64, 96, 3)
    assert ds.PhotometricInterpretation == "YBR_FULL_422"  # Pillow subsamples the chroma
    assert (ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation) == (8, 8, 7, 0)
    assert (ds.LossyImageCompression, ds.LossyImageCompressionMethod) == ("01", "ISO_10918_1")
    assert ds.Modality == "XC" and ds.InstanceCreationDate and ds.InstanceNumber == 1
    assert ds.ImageType == ["ORIGINAL", "PRIMARY"]
    for uid in (ds.StudyInstanceUID, ds.SeriesInstanceUID, ds.SOPInstanceUID):
        assert uid.startswith("2.25.")
    expected = expected_dataset(
        {k: v for k, v in capture.metadata.items() if k != wic.PIXEL_DATA}, {}
    )
    assert_holds(ds, expected)
    (frame,) = generate_frames(ds.PixelData, number_of_frames=1)
    assert frame.rstrip(b"\x00") == jpeg.rstrip(b"\x00")  # one fragment, padded to even
    content_type, served = await archive.client.frame(stored.url)
    assert served == jpeg and content_type.startswith("image/jpeg")
    with Image.open(io.BytesIO(jpeg)) as decoded:
        reference = np.asarray(decoded.convert("RGB"), dtype=int)
    rendered = await archive.client.rendered(stored.url)
    assert rendered.status_code == 200 and rendered.headers["content-type"] == "image/png"
    with Image.open(io.BytesIO(rendered.content)) as image:
        assert image.size == (96, 64)
        assert np.abs(np.asarray(image.convert("RGB"), dtype=int) - reference).mean() < 3


async def test_a_png_through_xml_is_stored_as_its_exact_pixels(archive: Archive) -> None:
    """PNG has no transfer syntax: transformed to native RGB, pixel for pixel (Table 10.5.2-1);
    the XML response carries what the JSON one would."""
    picture = wic.photo(40, 30, seed=5)
    png = wic.encode(picture, "PNG")
    capture = wic.capture(wic.PatientContext(), "image/png", png)
    response = await archive.client.store([capture], xml=True, accept="application/dicom+xml")
    assert response.status_code == 200 and response.headers["content-type"] == (
        "application/dicom+xml"
    )
    (stored,) = wic.referenced(xml_to_dataset(response.content))
    ds = await archive.client.instance(stored.url)
    assert ds.file_meta.TransferSyntaxUID == "1.2.840.10008.1.2.1"
    assert (ds.PhotometricInterpretation, ds.PlanarConfiguration) == ("RGB", 0)
    assert ds.PixelData == picture.tobytes()
    assert np.array_equal(ds.pixel_array, picture)
    assert "LossyImageCompression" not in ds


@pytest.mark.parametrize(
    "name",
    [
        "modality/CT_small.dcm",
        "modality/MR_siemens_overlay_icon.dcm",  # bulk data nested in the Icon Image Sequence
        "multiframe/enhanced_MR_10frame.dcm",
        "modality/US_rgb.dcm",
    ],
)
async def test_uncompressed_bulk_data_round_trips_exactly(archive: Archive, name: str) -> None:
    """A real instance sent as JSON, its bulk values as octet-stream parts and InlineBinary, is
    retrieved equal to what pydicom builds from that metadata and those bytes."""
    source = pydicom.dcmread(CORPUS / name)
    capture = wic.from_dataset(source)
    capture.metadata["00190010"] = {"vr": "LO", "Value": ["PACSFLOW TEST"]}
    capture.metadata["00191010"] = {"vr": "OB", "InlineBinary": "AQIDBA=="}  # F.2.7: 1 2 3 4
    stored = await store_one(archive, capture)
    assert stored.sop_uid == source.SOPInstanceUID
    ds = await archive.client.instance(stored.url)
    assert ds.file_meta.TransferSyntaxUID == "1.2.840.10008.1.2.1"
    assert_holds(ds, expected_dataset(capture.metadata, wic.bulk_values(capture)))
    assert ds.PixelData == source.PixelData
    assert np.array_equal(ds.pixel_array, source.pixel_array)
    assert ds[0x00191010].value == b"\x01\x02\x03\x04"


async def test_jpeg_2000_and_htj2k_keep_their_codestreams(archive: Archive) -> None:
    """A JP2 file's codestream (jp2c box) and an HTJ2K codestream are encapsulated unchanged."""
    picture = wic.photo(48, 32, seed=3)
    jp2 = wic.encode(picture, "JPEG2000", irreversible=False)
    htj2k_source = pydicom.dcmread(CORPUS / "derived/htj2k_lossless_US_rgb.dcm")
    (htj2k,) = generate_frames(htj2k_source.PixelData, number_of_frames=1)
    htj2k = htj2k.rstrip(b"\x00") if htj2k.endswith(b"\xff\xd9\x00") else htj2k
    context = wic.PatientContext()
    captures = [wic.capture(context, "image/jp2", jp2), wic.capture(context, "image/jph", htj2k)]
    response = await archive.client.store(captures)
    assert response.status_code == 200, response.headers.get("warning")
    first, second = wic.referenced(response.json())
    ds = await archive.client.instance(first.url)
    assert ds.file_meta.TransferSyntaxUID == "1.2.840.10008.1.2.4.90"
    assert np.array_equal(ds.pixel_array, picture)  # lossless
    _, codestream = await archive.client.frame(first.url)
    assert codestream.startswith(b"\xff\x4f\xff\x51") and codestream in jp2
    ds = await archive.client.instance(second.url)
    assert ds.file_meta.TransferSyntaxUID == "1.2.840.10008.1.2.4.201"
    assert (ds.Rows, ds.Columns, ds.PhotometricInterpretation) == (240, 320, "YBR_RCT")
    assert (await archive.client.frame(second.url))[1] == htj2k


async def test_an_animated_gif_becomes_a_multi_frame_image(archive: Archive) -> None:
    """Table 10.5.2-1 note 3: every GIF frame fully decoded, in a multi-frame SOP Class."""
    frames = [wic.photo(32, 24, seed=s) for s in range(3)]
    data = wic.gif(frames, duration_ms=80)
    stored = await store_one(archive, wic.capture(wic.PatientContext(), "image/gif", data))
    assert stored.sop_class_uid == MF_TRUE_COLOR_SC
    ds = await archive.client.instance(stored.url)
    assert (ds.NumberOfFrames, ds.FrameTime, ds.ConversionType) == (3, 80.0, "WSD")
    with Image.open(io.BytesIO(data)) as gif:
        for index in range(3):
            gif.seek(index)
            assert np.array_equal(ds.pixel_array[index], np.asarray(gif.convert("RGB")))


@pytest.mark.parametrize(
    ("fmt", "media_type", "syntax"),
    [
        ("mp4", "video/mp4", "1.2.840.10008.1.2.4.102"),
        ("mpeg", "video/mpeg", "1.2.840.10008.1.2.4.100"),
    ],
)
async def test_video_is_encapsulated_unchanged(
    archive: Archive, fmt: str, media_type: str, syntax: str
) -> None:
    """An H.264 MP4 and an MPEG-2 stream from FFmpeg: Video Photographic, the stream served back."""
    data = wic.video([wic.photo(64, 48, seed=s) for s in range(12)], fmt)
    stored = await store_one(archive, wic.capture(wic.PatientContext(), media_type, data))
    assert stored.sop_class_uid == VIDEO_PHOTO
    ds = await archive.client.instance(stored.url)
    assert ds.file_meta.TransferSyntaxUID == syntax
    assert (ds.Rows, ds.Columns, ds.NumberOfFrames, ds.FrameTime) == (48, 64, 12, 100.0)
    assert ds.PhotometricInterpretation == "YBR_PARTIAL_420"
    content_type, stream = await archive.client.frame(stored.url)
    assert content_type.startswith("video/")
    assert stream[: len(data)] == data and stream[len(data) :] in (b"", b"\x00")  # PS3.5 A.4


async def test_documents_pdf_cda_stl(archive: Archive) -> None:
    """Each document in its Encapsulated Document SOP Class; PDF rendered as itself."""
    context = wic.PatientContext()
    documents = {
        "application/pdf": (wic.encode(wic.photo(), "PDF"), "1.2.840.10008.5.1.4.1.1.104.1"),
        "text/xml": (wic.cda(), "1.2.840.10008.5.1.4.1.1.104.2"),
        "model/stl": (wic.stl(), "1.2.840.10008.5.1.4.1.1.104.3"),
    }
    captures = [
        wic.capture(context, media, data, tag=wic.ENCAPSULATED_DOCUMENT)
        for media, (data, _) in documents.items()
    ]
    response = await archive.client.store(captures)
    assert response.status_code == 200, response.headers.get("warning")
    for stored, (media, (data, sop_class)) in zip(
        wic.referenced(response.json()), documents.items(), strict=True
    ):
        assert stored.sop_class_uid == sop_class
        ds = await archive.client.instance(stored.url)
        assert ds.MIMETypeOfEncapsulatedDocument == media
        assert ds.EncapsulatedDocumentLength == len(data)
        assert ds.EncapsulatedDocument[: len(data)] == data
        assert ds.Modality == ("M3D" if media == "model/stl" else "DOC")
    pdf = wic.referenced(response.json())[0]
    rendered = await archive.client.rendered(pdf.url, "application/pdf")
    assert rendered.status_code == 200 and rendered.content == documents["application/pdf"][0]


async def test_captures_append_to_an_existing_study(archive: Archive) -> None:
    """By Study Instance UID in the metadata, or by POST /studies/{study} with none: the
    captures join the study a modality stored, each request (capture session) in a series of
    its own."""
    ct = (CORPUS / "modality/CT_small.dcm").read_bytes()
    body, boundary = multipart([ct])
    response = await archive.http.post(
        "/dicom-web/studies",
        content=body,
        headers={
            "Content-Type": f'multipart/related; type="application/dicom"; boundary={boundary}'
        },
    )
    assert response.status_code == 200
    study = pydicom.dcmread(io.BytesIO(ct)).StudyInstanceUID
    jpeg = wic.encode(wic.photo(), "JPEG")
    by_uid = wic.capture(wic.PatientContext(study_uid=study), "image/jpeg", jpeg)
    by_target = wic.capture(wic.PatientContext(), "image/jpeg", jpeg)
    assert (await archive.client.store([by_uid])).status_code == 200
    assert (await archive.client.store([by_target], study=study)).status_code == 200
    series = (await archive.http.get(f"/dicom-web/studies/{study}/series")).json()
    modalities = sorted(s["00080060"]["Value"][0] for s in series)
    assert modalities == ["CT", "XC", "XC"]
    instances = (await archive.http.get(f"/dicom-web/studies/{study}/instances")).json()
    assert len(instances) == 3


async def test_one_capture_session_shares_its_study_and_series(archive: Archive) -> None:
    """Captures of one request for one patient: one new study, one series per modality."""
    context = wic.PatientContext(patient_id="WIC-SESSION")
    jpeg = wic.encode(wic.photo(), "JPEG")
    pdf = wic.encode(wic.photo(), "PDF")
    captures = [
        wic.capture(context, "image/jpeg", jpeg),
        wic.capture(context, "image/jpeg", jpeg),
        wic.capture(context, "application/pdf", pdf, tag=wic.ENCAPSULATED_DOCUMENT),
    ]
    response = await archive.client.store(captures)
    assert response.status_code == 200
    datasets = [await archive.client.instance(s.url) for s in wic.referenced(response.json())]
    assert len({ds.StudyInstanceUID for ds in datasets}) == 1
    assert datasets[0].SeriesInstanceUID == datasets[1].SeriesInstanceUID
    assert datasets[2].SeriesInstanceUID != datasets[0].SeriesInstanceUID
    assert [ds.InstanceNumber for ds in datasets] == [1, 2, 3]


async def test_a_lossless_jpeg_part_keeps_its_pixels_exactly(archive: Archive) -> None:
    """JPEG Lossless SV1 from a real modality sent as image/jpeg: the transfer syntax follows
    the media (.70), the metadata's signedness stands, the pixels decode exactly."""
    source = pydicom.dcmread(CORPUS / "transfer-syntax/jpeg_lossless_sv1_NM_16bit.dcm")
    (frame,) = generate_frames(source.PixelData, number_of_frames=1)
    metadata = {k: v for k, v in source.to_json_dict(1 << 30).items() if k != wic.PIXEL_DATA}
    capture = wic.Capture(metadata, [wic.Bulk("image/jpeg", frame)])
    capture.metadata[wic.PIXEL_DATA] = {"vr": "OB", "BulkDataURI": capture.bulk[0].location}
    stored = await store_one(archive, capture)
    ds = await archive.client.instance(stored.url)
    assert ds.file_meta.TransferSyntaxUID == "1.2.840.10008.1.2.4.70"
    assert ds.PixelRepresentation == 1 and ds.get("LossyImageCompression", "00") == "00"
    assert np.array_equal(ds.pixel_array, source.pixel_array)
