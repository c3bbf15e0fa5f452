"""Image Pixel Description from bulk data media (PS3.18 10.5.2, Table 10.5.2-1), unit level.

Codestream headers read by pacsflow agree with the real corpus instances that carry them;
PNG/GIF transformations are lossless; video and documents are recognised or refused with the
Failure Reason the response will carry.
"""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pydicom
import pytest
from PIL import Image
from pydicom.encaps import generate_frames

from pacsflow.dicom.header import PartRejected
from pacsflow.dicom.status import FailureReason
from pacsflow.stow.codestreams import probe_jpeg, probe_jpeg2000
from pacsflow.stow.documents import check_document
from pacsflow.stow.raster import transform_raster
from pacsflow.stow.video import probe_video
from tests.support import capture as wic
from tests.support.corpus import CORPUS


def first_frame(path: Path) -> tuple[pydicom.Dataset, bytes]:
    ds = pydicom.dcmread(path)
    frame = next(generate_frames(ds.PixelData, number_of_frames=int(ds.get("NumberOfFrames", 1))))
    return ds, frame.removesuffix(b"\x00") if frame.endswith(b"\xff\xd9\x00") else frame


@pytest.mark.parametrize(
    "name",
    [
        "transfer-syntax/jpeg_baseline_ybr_full.dcm",
        "transfer-syntax/jpeg_baseline_ybr_full_422.dcm",
        "transfer-syntax/jpeg_extended_12bit_NM.dcm",
        "transfer-syntax/jpeg_lossless_sv1_rgb_gdcm.dcm",
        "transfer-syntax/jpeg_lossless_sv1_NM_16bit.dcm",
        "transfer-syntax/j2k_lossless_US_ybr_rct.dcm",
        "transfer-syntax/j2k_lossy_US_ybr_ict.dcm",
        "transfer-syntax/j2k_lossy_MR2.dcm",
        "modality/CR_RG3_mono1_j2k_lossless.dcm",
        "derived/htj2k_lossless_US_rgb.dcm",
        "derived/htj2k_lossy_US_rgb.dcm",
        "derived/htj2k_lossless_CT_small.dcm",
    ],
)
def test_codestream_headers_agree_with_the_corpus(name: str) -> None:
    """What a real encoder wrote in the data set is what the codestream says."""
    ds, frame = first_frame(CORPUS / name)
    probe = probe_jpeg if "jpeg" in name else probe_jpeg2000
    media = (
        probe_jpeg(io.BytesIO(frame), len(frame))
        if probe is probe_jpeg
        else probe_jpeg2000(io.BytesIO(frame), len(frame), "image/jph")
    )
    assert media.transfer_syntax == ds.file_meta.TransferSyntaxUID
    for keyword in ("Rows", "Columns", "SamplesPerPixel", "BitsAllocated", "PixelRepresentation"):
        if keyword not in media.guessed:  # a JPEG does not say whether samples are signed
            assert media.attributes[keyword] == ds[keyword].value, keyword
    photometric = ds.PhotometricInterpretation.replace("MONOCHROME1", "MONOCHROME2")
    assert media.attributes["PhotometricInterpretation"] == photometric
    assert media.span == (0, len(frame)) and media.native is None


def test_an_unmarked_three_component_jpeg_leaves_the_colour_space_to_the_metadata() -> None:
    """No JFIF, no Adobe marker, components 0, 1, 2: YCbCr is only a guess; RGB may be sent."""
    _, frame = first_frame(CORPUS / "transfer-syntax/jpeg_baseline_rgb_no_color_transform.dcm")
    media = probe_jpeg(io.BytesIO(frame), len(frame))
    assert media.attributes["PhotometricInterpretation"] == "YBR_FULL"
    assert "PhotometricInterpretation" in media.guessed
    jfif = wic.encode(wic.photo(), "JPEG", subsampling=0)  # 4:4:4 with a JFIF marker
    media = probe_jpeg(io.BytesIO(jfif), len(jfif))
    assert media.attributes["PhotometricInterpretation"] == "YBR_FULL"
    assert "PhotometricInterpretation" not in media.guessed


def test_a_jp2_file_encapsulates_its_codestream_box() -> None:
    jp2 = wic.encode(wic.photo(40, 20), "JPEG2000", irreversible=True)
    media = probe_jpeg2000(io.BytesIO(jp2), len(jp2), "image/jp2")
    assert media.span is not None
    start, length = media.span
    assert jp2[start : start + 4] == b"\xff\x4f\xff\x51" and start + length == len(jp2)
    assert media.transfer_syntax == "1.2.840.10008.1.2.4.91"
    assert media.lossy_method == "ISO_15444_1"


def _cmyk_jpeg() -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(wic.photo()).convert("CMYK").save(buffer, format="JPEG")
    return buffer.getvalue()


@pytest.mark.parametrize(
    ("data", "reason", "text"),
    [
        (wic.encode(wic.photo(), "JPEG", progressive=True), 0xC122, "progressive"),
        (_cmyk_jpeg(), 0xC122, "4 components"),
        (wic.encode(wic.photo(), "PNG"), 0xC000, "SOI marker"),
        (wic.encode(wic.photo(), "JPEG")[:20], 0xC000, "no frame and scan header"),
        (wic.encode(wic.photo(), "JPEG")[:200], 0xC000, "ends inside a header"),
    ],
    ids=["progressive", "cmyk", "png", "truncated", "cut"],
)
def test_jpegs_that_cannot_be_stored_unchanged(data: bytes, reason: int, text: str) -> None:
    with pytest.raises(PartRejected) as caught:
        probe_jpeg(io.BytesIO(data), len(data))
    assert caught.value.reason == reason and text in caught.value.message


def _png(image: Image.Image) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return buffer.getvalue()


def test_png_modes_are_transformed_losslessly() -> None:
    rgb = wic.photo(16, 8)
    palette = Image.fromarray(rgb).quantize(16)
    media = transform_raster(io.BytesIO(_png(palette)), "image/png", 1 << 20)
    assert media.attributes["PhotometricInterpretation"] == "RGB"
    assert media.native == palette.convert("RGB").tobytes()  # indexed colour as true colour
    rgba = Image.fromarray(np.dstack([rgb, np.full(rgb.shape[:2], 7, np.uint8)]))
    media = transform_raster(io.BytesIO(_png(rgba)), "image/png", 1 << 20)
    assert media.native == rgb.tobytes()  # alpha dropped (note 5)
    grey16 = np.arange(16 * 8, dtype=np.uint16).reshape(8, 16) * 500
    media = transform_raster(io.BytesIO(_png(Image.fromarray(grey16))), "image/png", 1 << 20)
    assert (media.attributes["BitsAllocated"], media.attributes["BitsStored"]) == (16, 16)
    assert media.attributes["PhotometricInterpretation"] == "MONOCHROME2"
    assert media.native == grey16.astype("<u2").tobytes()


def test_raster_limits_and_garbage() -> None:
    png = wic.encode(wic.photo(64, 64), "PNG")
    with pytest.raises(PartRejected) as caught:
        transform_raster(io.BytesIO(png), "image/png", 1000)
    assert caught.value.reason == FailureReason.OUT_OF_RESOURCES
    with pytest.raises(PartRejected) as caught:
        transform_raster(io.BytesIO(b"GIF89a not really"), "image/gif", 1 << 20)
    assert caught.value.reason == FailureReason.CANNOT_UNDERSTAND


def test_video_codecs_without_a_transfer_syntax_are_refused() -> None:
    import av

    buffer = io.BytesIO()
    with av.open(buffer, "w", format="mp4") as container:
        stream = container.add_stream("mpeg4", rate=10)  # MPEG-4 Part 2: no DICOM syntax
        stream.width, stream.height, stream.pix_fmt = 32, 32, "yuv420p"
        for frame in (wic.photo(32, 32, seed=s) for s in range(3)):
            for packet in stream.encode(av.VideoFrame.from_ndarray(frame, format="rgb24")):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
    data = buffer.getvalue()
    with pytest.raises(PartRejected) as caught:
        probe_video(io.BytesIO(data), "video/mp4", len(data))
    assert caught.value.reason == FailureReason.TRANSFER_SYNTAX_NOT_SUPPORTED
    mp4 = wic.video([wic.photo(32, 32, seed=s) for s in range(3)])
    with pytest.raises(PartRejected) as caught:
        probe_video(io.BytesIO(mp4), "video/mpeg", len(mp4))  # an MP4 sent as MPEG-2
    assert "holds a mov,mp4" in caught.value.message
    with pytest.raises(PartRejected) as caught:
        probe_video(io.BytesIO(b"\x00" * 64), "video/mp4", 64)
    assert caught.value.reason == FailureReason.CANNOT_UNDERSTAND


@pytest.mark.parametrize(
    ("media", "data", "ok"),
    [
        ("model/stl", b"solid t\nfacet normal 0 0 1\nendfacet\nendsolid t\n", True),
        ("model/stl", wic.stl()[:-10], False),
        ("text/xml", b"<ClinicalDocument xmlns='urn:hl7-org:v3'/>", True),
        ("text/xml", b"<html/>", False),
        ("text/xml", b"<ClinicalDocument xmlns='urn:hl7-org:v3'>", False),
        ("application/pdf", b"%PDF-1.4\n%%EOF", True),
        ("application/pdf", b"PK\x03\x04", False),
    ],
)
def test_documents_are_what_their_media_type_says(media: str, data: bytes, ok: bool) -> None:
    if ok:
        check_document(io.BytesIO(data), media, len(data))
        return
    with pytest.raises(PartRejected) as caught:
        check_document(io.BytesIO(data), media, len(data))
    assert caught.value.reason == FailureReason.CANNOT_UNDERSTAND
