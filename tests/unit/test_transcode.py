"""Transcoding between transfer syntaxes (pacsflow.dicom.transcode) on the real corpus.

Every image of ``transfer-syntax/`` and ``multiframe/`` is transcoded to Explicit VR Little
Endian and compared with pydicom's own decoding of the source (exact, lossy sources too: both
use the same decoder), then from that uncompressed form to every encodable target and back:

* lossless targets (JPEG lossless 4.57/4.70, JPEG-LS 4.80, JPEG 2000 4.90, RLE): pixel-exact;
* JPEG-LS near-lossless (4.81, NEAR=2): every sample within 2 of the source;
* the other lossy targets (JPEG 4.50/4.51, JPEG 2000 4.91 at 5:1): mean absolute error at most
  2% of the image's value range (max - min), and Lossy Image Compression "01" with its method.

An image a codec cannot hold (``_refusal`` below says which and why) must raise
``TranscodeError``: nothing is skipped.
"""

from __future__ import annotations

import csv
import hashlib
import io
from dataclasses import replace
from functools import cache
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from pydicom import dcmread
from pydicom.dataset import Dataset
from pydicom.encaps import generate_frames

from pacsflow.dicom.codecs import LOSSY_METHOD
from pacsflow.dicom.transcode import (
    DECODABLE,
    DEFAULT_TRANSFER_SYNTAX,
    ENCODABLE,
    LOSSY,
    MEDIA_TYPES,
    FrameGeometry,
    TranscodeError,
    can_encode_frame,
    can_transcode,
    decode_frame,
    encode_frame,
    frame_geometry,
    transcode_instance,
)
from pacsflow.errors import NotAcceptable
from tests.support.corpus import CORPUS, corpus_files

pytestmark = pytest.mark.timeout(120)

IMPLICIT = "1.2.840.10008.1.2"
EXPLICIT = "1.2.840.10008.1.2.1"
DEFLATED = "1.2.840.10008.1.2.1.99"
BIG_ENDIAN = "1.2.840.10008.1.2.2"
BASELINE = "1.2.840.10008.1.2.4.50"
EXTENDED = "1.2.840.10008.1.2.4.51"
JPEG_LOSSLESS = "1.2.840.10008.1.2.4.57"
JPEG_SV1 = "1.2.840.10008.1.2.4.70"
JLS = "1.2.840.10008.1.2.4.80"
JLS_NEAR = "1.2.840.10008.1.2.4.81"
J2K_LOSSLESS = "1.2.840.10008.1.2.4.90"
J2K = "1.2.840.10008.1.2.4.91"
HTJ2K = ("1.2.840.10008.1.2.4.201", "1.2.840.10008.1.2.4.202", "1.2.840.10008.1.2.4.203")
RLE = "1.2.840.10008.1.2.5"
NATIVE = (IMPLICIT, EXPLICIT, DEFLATED)
LOSSLESS_TARGETS = (JPEG_LOSSLESS, JPEG_SV1, JLS, J2K_LOSSLESS, RLE)
LOSSY_TARGETS = (BASELINE, EXTENDED, JLS_NEAR, J2K)


def _manifest() -> dict[str, dict[str, str]]:
    with (CORPUS / "MANIFEST.csv").open() as fp:
        return {row["path"]: row for row in csv.DictReader(fp)}


MANIFEST = _manifest()


def _rel(path: Path) -> str:
    return path.relative_to(CORPUS).as_posix()


IMAGES = [
    _rel(p)
    for p in corpus_files()
    if _rel(p).startswith(("transfer-syntax/", "multiframe/")) and MANIFEST[_rel(p)]["Rows"]
]
HTJ2K_FILES = [_rel(p) for p in corpus_files() if _rel(p).startswith("derived/htj2k_")]
NO_PIXEL_DATA = [
    _rel(p)
    for p in corpus_files()
    if _rel(p).startswith(("objects/", "derived/"))
    and "no pixel data" in MANIFEST[_rel(p)]["notes"]
    and "SOPInstanceUID" in dcmread(p, stop_before_pixels=True, force=True)
]


@cache
def _source(rel: str) -> tuple[bytes, np.ndarray]:
    """The file's bytes and pydicom's decoding of it (the reference)."""
    data = (CORPUS / rel).read_bytes()
    return data, dcmread(io.BytesIO(data)).pixel_array


@cache
def _explicit(rel: str) -> bytes:
    out, actual = transcode_instance(_source(rel)[0], EXPLICIT)
    assert actual == EXPLICIT
    return out


def _read(data: bytes) -> Dataset:
    return dcmread(io.BytesIO(data), force=True)


def _refusal(g: FrameGeometry, target: str) -> str | None:
    """Why ``target`` cannot hold this decoded image (PS3.5 8.2 and codec limits), or None."""
    if g.bits_allocated > 16:
        return "RLE, JPEG and JPEG-LS take 8 or 16 bits allocated; OpenJPEG refuses 32-bit"
    if target in LOSSY and g.photometric_interpretation == "PALETTE COLOR":
        return "palette indices cannot be compressed lossily (PS3.5 8.2)"
    if target == BASELINE and (g.bits_stored != 8 or g.pixel_representation):
        return "JPEG baseline is 8-bit unsigned"
    if target == EXTENDED and (
        g.samples_per_pixel != 1
        or (g.bits_allocated, g.bits_stored) not in ((8, 8), (16, 12))
        or g.pixel_representation
    ):
        return "JPEG extended is 8- or 12-bit unsigned greyscale"
    if target in (J2K_LOSSLESS, J2K) and min(g.rows, g.columns) < 32:
        return "OpenJPEG's 6 resolution levels need at least 32 rows and columns"
    return None


def _assert_close(actual: np.ndarray, reference: np.ndarray, target: str) -> None:
    diff = np.abs(actual.astype(np.float64) - reference.astype(np.float64))
    if target == JLS_NEAR:
        assert diff.max() <= 2, f"JPEG-LS NEAR=2 exceeded: {diff.max()}"
        return
    span = max(1.0, float(reference.max()) - float(reference.min()))
    assert diff.mean() <= 0.02 * span, f"MAE {diff.mean():.3f} > 2% of {span}"


def _values(ds: Dataset, keyword: str) -> list[str]:
    value: Any = ds.get(keyword)
    if value is None or value == "":
        return []
    return [str(v) for v in value] if ds[keyword].VM > 1 else [str(value)]


# --- support sets and media types -----------------------------------------------------------


def test_support_sets_are_what_the_installed_codecs_do() -> None:
    assert {*NATIVE, *LOSSLESS_TARGETS, *LOSSY_TARGETS} == ENCODABLE
    assert {*NATIVE, BIG_ENDIAN, *LOSSLESS_TARGETS, *LOSSY_TARGETS, *HTJ2K} == DECODABLE
    assert issubclass(TranscodeError, NotAcceptable)


def test_can_transcode() -> None:
    assert can_transcode(BASELINE, EXPLICIT)
    assert can_transcode(BIG_ENDIAN, J2K_LOSSLESS)
    assert can_transcode(HTJ2K[0], RLE)
    assert can_transcode(BIG_ENDIAN, BIG_ENDIAN)  # as stored
    assert not can_transcode(EXPLICIT, BIG_ENDIAN)  # retired, and PS3.18 8.7.3 forbids it
    assert not can_transcode(EXPLICIT, HTJ2K[0])  # no maintained Python HTJ2K encoder
    assert not can_transcode("1.2.840.10008.1.2.4.100", EXPLICIT)  # MPEG-2
    assert can_encode_frame(JLS, J2K) and not can_encode_frame(JLS, HTJ2K[2])


def test_media_types_follow_ps3_18_table_8_7_3_5() -> None:
    assert {MEDIA_TYPES[t] for t in (BASELINE, EXTENDED, JPEG_LOSSLESS, JPEG_SV1)} == {"image/jpeg"}
    assert MEDIA_TYPES[JLS] == MEDIA_TYPES[JLS_NEAR] == "image/jls"
    assert MEDIA_TYPES[J2K_LOSSLESS] == MEDIA_TYPES[J2K] == "image/jp2"
    assert {MEDIA_TYPES[t] for t in HTJ2K} == {"image/jphc"}
    assert MEDIA_TYPES[RLE] == "image/dicom-rle"
    assert {MEDIA_TYPES[t] for t in (*NATIVE, BIG_ENDIAN)} == {"application/octet-stream"}
    assert {
        "application/octet-stream": EXPLICIT,
        "image/jpeg": JPEG_SV1,
        "image/jls": JLS,
        "image/jp2": J2K_LOSSLESS,
        "image/jphc": HTJ2K[0],
        "image/dicom-rle": RLE,
        "image/x-dicom-rle": RLE,
    } == DEFAULT_TRANSFER_SYNTAX
    for media, syntax in DEFAULT_TRANSFER_SYNTAX.items():
        assert MEDIA_TYPES[syntax] == media.replace("x-dicom-rle", "dicom-rle")


# --- whole instances ------------------------------------------------------------------------


def test_corpus_has_the_files_these_tests_need() -> None:
    syntaxes = {MANIFEST[rel]["TransferSyntaxUID"] for rel in IMAGES + HTJ2K_FILES}
    assert syntaxes >= {*NATIVE, BIG_ENDIAN, BASELINE, EXTENDED, JPEG_SV1, JLS, JLS_NEAR}
    assert syntaxes >= {J2K_LOSSLESS, J2K, RLE, HTJ2K[0], HTJ2K[2]}
    assert len(IMAGES) >= 40 and len(NO_PIXEL_DATA) >= 10


@pytest.mark.parametrize("rel", IMAGES + HTJ2K_FILES)
def test_to_explicit_le_matches_pydicom_decoding(rel: str) -> None:
    data, reference = _source(rel)
    source = _read(data)
    ds = _read(_explicit(rel))
    assert ds.file_meta.TransferSyntaxUID == EXPLICIT
    assert ds.SOPInstanceUID == source.SOPInstanceUID
    assert ds.file_meta.MediaStorageSOPInstanceUID == source.SOPInstanceUID
    assert ds.Rows == source.Rows and ds.Columns == source.Columns
    assert not ds["PixelData"].is_undefined_length
    np.testing.assert_array_equal(ds.pixel_array, reference)
    if source.PhotometricInterpretation in ("YBR_FULL", "YBR_FULL_422", "YBR_RCT", "YBR_ICT"):
        assert ds.PhotometricInterpretation == "RGB"  # decoded as pydicom's decompress() does


@pytest.mark.parametrize("rel", IMAGES)
def test_implicit_and_deflated_round_trip_is_byte_exact(rel: str) -> None:
    explicit = _explicit(rel)
    implicit, actual = transcode_instance(explicit, IMPLICIT)
    assert actual == IMPLICIT
    deflated, actual = transcode_instance(implicit, DEFLATED)
    assert actual == DEFLATED
    back, actual = transcode_instance(deflated, EXPLICIT)
    assert actual == EXPLICIT
    expected = _read(explicit).PixelData
    for data, syntax in ((implicit, IMPLICIT), (deflated, DEFLATED), (back, EXPLICIT)):
        ds = _read(data)
        assert ds.file_meta.TransferSyntaxUID == syntax
        assert ds.PixelData == expected
    source = _read(_source(rel)[0])
    if source.file_meta.TransferSyntaxUID in NATIVE:  # never decoded: the stored bytes
        assert _read(explicit).PixelData == source.PixelData


@pytest.mark.parametrize("target", LOSSLESS_TARGETS)
@pytest.mark.parametrize("rel", IMAGES)
def test_lossless_targets_round_trip_pixel_exact(rel: str, target: str) -> None:
    explicit = _explicit(rel)
    decoded = _read(explicit)
    if reason := _refusal(FrameGeometry.from_dataset(decoded), target):
        with pytest.raises(TranscodeError):
            transcode_instance(explicit, target)
        return
    encoded, actual = transcode_instance(explicit, target)
    assert actual == target
    ds = _read(encoded)
    assert ds.file_meta.TransferSyntaxUID == target, reason
    assert ds["PixelData"].is_undefined_length  # encapsulated (PS3.5 A.4)
    assert ds.SOPInstanceUID == decoded.SOPInstanceUID
    assert ds.get("LossyImageCompression") == decoded.get("LossyImageCompression")
    np.testing.assert_array_equal(ds.pixel_array, _source(rel)[1])
    back, _ = transcode_instance(encoded, EXPLICIT)
    assert _read(back).PixelData == decoded.PixelData


@pytest.mark.parametrize("target", LOSSY_TARGETS)
@pytest.mark.parametrize("rel", IMAGES)
def test_lossy_targets_within_tolerance_and_flagged(rel: str, target: str) -> None:
    explicit = _explicit(rel)
    decoded = _read(explicit)
    if _refusal(FrameGeometry.from_dataset(decoded), target):
        with pytest.raises(TranscodeError):
            transcode_instance(explicit, target)
        return
    encoded, actual = transcode_instance(explicit, target)
    assert actual == target
    ds = _read(encoded)
    assert ds.file_meta.TransferSyntaxUID == target
    assert ds.LossyImageCompression == "01"
    methods = _values(ds, "LossyImageCompressionMethod")
    ratios = _values(ds, "LossyImageCompressionRatio")
    assert methods[-1] == LOSSY_METHOD[target] and float(ratios[-1]) > 0
    if decoded.get("LossyImageCompression") == "01":  # the history is kept
        assert methods[:-1] == _values(decoded, "LossyImageCompressionMethod")
    if target in (BASELINE, EXTENDED) and decoded.SamplesPerPixel == 3:
        assert ds.PhotometricInterpretation == "YBR_FULL_422"  # libjpeg's YCbCr
    _assert_close(ds.pixel_array, _source(rel)[1], target)


@pytest.mark.parametrize("rel", HTJ2K_FILES)
def test_htj2k_is_decoded_not_encoded(rel: str) -> None:
    data, reference = _source(rel)
    encoded, _ = transcode_instance(data, J2K_LOSSLESS)
    np.testing.assert_array_equal(_read(encoded).pixel_array, reference)
    for target in HTJ2K:
        with pytest.raises(TranscodeError):
            transcode_instance(_explicit(rel), target)


def test_big_endian_is_read_and_never_written() -> None:
    rel = "transfer-syntax/explicit_be_MR_small.dcm"
    data, reference = _source(rel)
    ds = _read(_explicit(rel))
    assert ds.WindowCenter == _read(data).WindowCenter  # numeric values re-encoded
    np.testing.assert_array_equal(ds.pixel_array, reference)
    assert transcode_instance(data, BIG_ENDIAN) == (data, BIG_ENDIAN)  # as stored
    with pytest.raises(TranscodeError):
        transcode_instance(_explicit(rel), BIG_ENDIAN)


@pytest.mark.filterwarnings("ignore:Expected implicit VR:UserWarning")
def test_undecodable_pixel_data_raises() -> None:
    # 4 frames in 3 fragments without an offset table: no pydicom decoder splits them.
    data = (CORPUS / "modality/XA_4frame_jpeg_lossless.dcm").read_bytes()
    with pytest.raises(TranscodeError):
        transcode_instance(data, EXPLICIT)
    with pytest.raises(TranscodeError):
        transcode_instance(b"not DICOM at all", EXPLICIT)


def _json(ds: Dataset, *, private: bool = True) -> dict[str, Any]:
    """DICOM JSON with bulk values hashed; without private elements' values if not ``private``.

    Implicit VR loses the VR of private elements, so they come back as UN (PS3.5 6.2.2).
    """

    def bulk(element: Any) -> str:
        return hashlib.sha256(bytes(element.value)).hexdigest()

    attributes = ds.to_json_dict(bulk_data_threshold=64, bulk_data_element_handler=bulk)
    return {k: (v if private or not int(k[3], 16) % 2 else None) for k, v in attributes.items()}


@pytest.mark.parametrize("rel", NO_PIXEL_DATA)
def test_instances_without_pixel_data(rel: str) -> None:
    data = (CORPUS / rel).read_bytes()
    original = _json(_read(data))
    for target in (IMPLICIT, EXPLICIT, DEFLATED, BASELINE, J2K_LOSSLESS, RLE, HTJ2K[0]):
        out, actual = transcode_instance(data, target)
        # PS3.18 8.7.3.4: with no pixels to compress, Explicit VR Little Endian is sent.
        assert actual == (target if target in NATIVE else EXPLICIT)
        ds = _read(out)
        assert ds.file_meta.TransferSyntaxUID == actual
        if target == IMPLICIT:
            assert _json(ds, private=False) == _json(_read(data), private=False)
        else:
            assert _json(ds) == original
    with pytest.raises(TranscodeError):
        transcode_instance(data, BIG_ENDIAN)


# --- frames ---------------------------------------------------------------------------------


def _stored_frames(ds: Dataset) -> list[bytes]:
    count = int(ds.get("NumberOfFrames", 1) or 1)
    if ds.file_meta.TransferSyntaxUID not in (*NATIVE, BIG_ENDIAN):
        return list(generate_frames(ds.PixelData, number_of_frames=count))
    size = ds.Rows * ds.Columns * ds.SamplesPerPixel * ds.BitsAllocated // 8
    return [ds.PixelData[i * size : (i + 1) * size] for i in range(count)]


def _frame_bytes(frame: np.ndarray, g: FrameGeometry) -> bytes:
    if g.samples_per_pixel > 1 and g.planar_configuration == 1:
        frame = np.moveaxis(frame, -1, 0)
    return frame.astype(frame.dtype.newbyteorder("<")).tobytes()


@pytest.mark.parametrize("rel", IMAGES + HTJ2K_FILES)
def test_decode_frame_matches_pixel_array(rel: str) -> None:
    data, reference = _source(rel)
    ds = _read(data)
    geometry = FrameGeometry.from_dataset(ds)
    frames = _stored_frames(ds)
    expected = reference if len(frames) > 1 else reference[np.newaxis]
    for i, frame in enumerate(frames):
        native = decode_frame(frame, ds.file_meta.TransferSyntaxUID, geometry)
        assert native == _frame_bytes(expected[i], geometry), f"frame {i + 1}"


@pytest.mark.parametrize("rel", [r for r in IMAGES if r.startswith("multiframe/")])
def test_encode_frame_round_trip(rel: str) -> None:
    data, reference = _source(rel)
    ds = _read(data)
    source = ds.file_meta.TransferSyntaxUID
    stored = FrameGeometry.from_dataset(ds)
    decoded = stored if source in (*NATIVE, BIG_ENDIAN) else stored.decoded()
    frames = _stored_frames(ds)
    for i in (0, len(frames) - 1):
        native = decode_frame(frames[i], source, stored)
        for target in LOSSLESS_TARGETS + LOSSY_TARGETS:
            if _refusal(decoded, target):
                with pytest.raises(TranscodeError):
                    encode_frame(native, target, decoded)
                continue
            encoded = encode_frame(native, target, decoded)
            assert encoded == encode_frame(native, target, stored)  # the stored geometry works
            label = decoded.photometric_interpretation
            if target in (BASELINE, EXTENDED) and decoded.samples_per_pixel == 3:
                label = "YBR_FULL_422"
            back = decode_frame(encoded, target, replace(decoded, photometric_interpretation=label))
            if target in LOSSY:
                shape = reference[i].shape if len(frames) > 1 else reference.shape
                dtype = reference.dtype.newbyteorder("<")
                restored = np.frombuffer(back, dtype=dtype).reshape(shape)
                _assert_close(restored, reference[i] if len(frames) > 1 else reference, target)
            else:
                assert back == native, f"frame {i + 1} as {target}"
    assert encode_frame(native, EXPLICIT, decoded) == native
    with pytest.raises(TranscodeError):
        encode_frame(native, BIG_ENDIAN, decoded)


def test_frame_geometry_from_dicom_json() -> None:
    attributes = {
        "00280010": {"vr": "US", "Value": [240]},
        "00280011": {"vr": "US", "Value": [320]},
        "00280002": {"vr": "US", "Value": [3]},
        "00280100": {"vr": "US", "Value": [8]},
        "00280101": {"vr": "US", "Value": [8]},
        "00280103": {"vr": "US", "Value": [0]},
        "00280004": {"vr": "CS", "Value": ["YBR_FULL_422"]},
    }
    g = frame_geometry(attributes)
    assert g == FrameGeometry(240, 320, 3, 8, 8, 0, "YBR_FULL_422", 0)
    assert g.decoded().photometric_interpretation == "RGB"
    assert g.decoded(as_rgb=False).photometric_interpretation == "YBR_FULL"
    del attributes["00280100"]
    with pytest.raises(TranscodeError):
        frame_geometry(attributes)
