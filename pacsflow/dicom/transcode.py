"""Transcode DICOM instances and frames between transfer syntaxes (PS3.18 8.7.3.3, 8.7.3.4, 10.4).

Decoding uses pydicom 3's decoders (numpy, pylibjpeg-libjpeg/-openjpeg/-rle, pyjpegls, GDCM);
encoding uses pydicom's encoders (RLE, JPEG-LS with pyjpegls, JPEG 2000 with pylibjpeg-openjpeg)
and, for JPEG (ISO 10918), the GDCM plugin in ``pacsflow.dicom.codecs``. HTJ2K and Explicit VR
Big Endian are decoded, never encoded. Decoded YCbCr pixels (JPEG YBR_FULL_422, J2K YBR_RCT and
YBR_ICT) become RGB, as pydicom's ``Dataset.decompress()`` does. SOP Instance UIDs are kept: the
result is a representation of the stored instance, not a new instance.
"""

from __future__ import annotations

import io
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, Final

import numpy as np
from pydicom import dcmread
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.encaps import encapsulate, encapsulate_extended
from pydicom.errors import InvalidDicomError
from pydicom.filewriter import dcmwrite
from pydicom.pixels.decoders.base import get_decoder
from pydicom.pixels.encoders.base import get_encoder
from pydicom.pixels.utils import as_pixel_options
from pydicom.uid import (
    JPEG2000,
    UID,
    DeflatedExplicitVRLittleEndian,
    ExplicitVRBigEndian,
    ExplicitVRLittleEndian,
    ImplicitVRLittleEndian,
    JPEGBaseline8Bit,
    JPEGExtended12Bit,
    JPEGLSNearLossless,
    RLELossless,
)
from pydicom.valuerep import VR

from pacsflow.dicom.codecs import (
    DEFAULT_TRANSFER_SYNTAX,
    LOSSY,
    MEDIA_TYPES,
    FrameGeometry,
    gdcm_encoder,
    mark_lossy,
    native_bytes,
    swap_big_endian_values,
    swap_bytes,
)
from pacsflow.dicom.uids import (
    JPEG2000_FAMILY,
    JPEG_FAMILY,
    NATIVE_TRANSFER_SYNTAXES,
)
from pacsflow.errors import NotAcceptable

if TYPE_CHECKING:
    from pydicom.pixels.encoders.base import Encoder

__all__ = [
    "DECODABLE",
    "DEFAULT_TRANSFER_SYNTAX",
    "ENCODABLE",
    "LOSSY",
    "LOSSY_OPTIONS",
    "MEDIA_TYPES",
    "FrameGeometry",
    "TranscodeError",
    "can_encode_frame",
    "can_transcode",
    "decode_frame",
    "encode_frame",
    "frame_geometry",
    "transcode_instance",
]


class TranscodeError(NotAcceptable):
    """The instance or frame cannot be represented in the requested transfer syntax (406)."""


_LITTLE_ENDIAN_NATIVE: Final = frozenset(
    {ImplicitVRLittleEndian, ExplicitVRLittleEndian, DeflatedExplicitVRLittleEndian}
)
_COMPRESSED: Final = JPEG_FAMILY | JPEG2000_FAMILY | {RLELossless}

LOSSY_OPTIONS: Final[dict[str, dict[str, Any]]] = {
    JPEGLSNearLossless: {"jls_error": 2},  # JPEG-LS NEAR: every sample within +-2
    JPEG2000: {"j2k_cr": [5]},  # JPEG 2000: one quality layer at 5:1
}
"""Encoder options of the lossy targets (JPEG quality: ``codecs.JPEG_QUALITY``)."""

_LOSSY_JPEG: Final = frozenset({JPEGBaseline8Bit, JPEGExtended12Bit})


def _encoder(uid: str) -> Encoder | None:
    try:
        encoder = get_encoder(uid)
    except NotImplementedError:
        return gdcm_encoder(uid)
    return encoder if encoder.is_available else gdcm_encoder(uid)


def _decodable(uid: str) -> bool:
    try:
        return bool(get_decoder(uid).is_available)
    except NotImplementedError:
        return False


_ENCODERS: Final = {uid: e for uid in sorted(_COMPRESSED) if (e := _encoder(uid)) is not None}
ENCODABLE: Final = frozenset(_LITTLE_ENDIAN_NATIVE | _ENCODERS.keys())
"""Target transfer syntaxes this process can write (asked of pydicom and GDCM at import)."""
DECODABLE: Final = frozenset(NATIVE_TRANSFER_SYNTAXES | {u for u in _COMPRESSED if _decodable(u)})
"""Source transfer syntaxes this process can read pixels from."""


def can_transcode(source_ts: str, target_ts: str) -> bool:
    """Whether ``source_ts`` can become ``target_ts`` (the image itself may still refuse)."""
    return source_ts == target_ts or (source_ts in DECODABLE and target_ts in ENCODABLE)


def can_encode_frame(source_ts: str, target_ts: str) -> bool:
    """Whether frames stored in ``source_ts`` can be sent in ``target_ts`` (decode + encode)."""
    return can_transcode(source_ts, target_ts)


def frame_geometry(attributes: Mapping[str, Any]) -> FrameGeometry:
    """The frame geometry of an instance's DICOM JSON attributes (PS3.18 F.2)."""
    try:
        return FrameGeometry.from_json(attributes)
    except ValueError as exc:
        raise TranscodeError(f"cannot transcode frames: {exc}") from exc


def transcode_instance(data: bytes, target_ts: str) -> tuple[bytes, str]:
    """Re-encode a Part 10 file in ``target_ts``; return it with the syntax actually used.

    An instance without Pixel Data asked for in a compressed syntax is returned in Explicit VR
    Little Endian, the default of PS3.18 8.7.3.4, and says so in the returned syntax. Raise
    ``TranscodeError`` when the pair or this image cannot be transcoded.
    """
    try:
        ds = dcmread(io.BytesIO(data), force=True)
    except (InvalidDicomError, EOFError, ValueError, OSError) as exc:
        raise TranscodeError(f"not a readable DICOM file: {exc}") from exc
    source = _source_syntax(ds)
    part10 = data[128:132] == b"DICM"
    if source == target_ts and part10:
        return data, target_ts
    if "PixelData" not in ds:
        if target_ts not in ENCODABLE and target_ts not in _COMPRESSED:
            raise TranscodeError(f"cannot write transfer syntax {target_ts}")
        actual = target_ts if target_ts in _LITTLE_ENDIAN_NATIVE else ExplicitVRLittleEndian
        if source == actual and part10:
            return data, actual
        if source == ExplicitVRBigEndian:
            swap_big_endian_values(ds)
        return _write(ds, actual), actual
    if not can_transcode(source, target_ts):
        raise TranscodeError(f"cannot transcode {source} to {target_ts}")
    if target_ts in _LITTLE_ENDIAN_NATIVE and source in _LITTLE_ENDIAN_NATIVE:
        return _write(ds, target_ts), target_ts  # only the data set encoding changes
    arr, props = _decode_dataset(ds, source)
    if source == ExplicitVRBigEndian:
        swap_big_endian_values(ds)
    for ext in ("ExtendedOffsetTable", "ExtendedOffsetTableLengths"):
        ds.pop(ext, None)
    ds.PhotometricInterpretation = props["photometric_interpretation"]
    if int(ds.SamplesPerPixel) > 1:
        ds.PlanarConfiguration = 0  # decoded arrays are pixel-interleaved
    if target_ts in _LITTLE_ENDIAN_NATIVE:
        _set_native(ds, arr)
    else:
        _set_encoded(ds, arr, target_ts)
    return _write(ds, target_ts), target_ts


def decode_frame(
    frame: bytes, source_ts: str, geometry: FrameGeometry, *, as_rgb: bool = True
) -> bytes:
    """One frame of the stored ``geometry`` as native little-endian pixel bytes.

    Native frames keep their layout; only Big Endian ones are byte-swapped. Decoded frames
    keep the Planar Configuration of ``geometry``; their colour is ``geometry.decoded(as_rgb)``:
    with ``as_rgb`` YCbCr becomes RGB, as in what ``transcode_instance`` writes.
    """
    if source_ts in _LITTLE_ENDIAN_NATIVE:
        return bytes(frame)
    if source_ts == ExplicitVRBigEndian:
        return swap_bytes(bytes(frame), geometry.bits_allocated // 8)
    if source_ts not in DECODABLE:
        raise TranscodeError(f"cannot decode transfer syntax {source_ts}")
    try:
        opts = geometry.options(as_rgb=as_rgb)
        arr, _ = get_decoder(source_ts).as_array(encapsulate([bytes(frame)]), **opts)
    except Exception as exc:  # any codec failure: pydicom plugins raise various types
        raise TranscodeError(f"cannot decode the {source_ts} frame: {exc}") from exc
    if geometry.samples_per_pixel > 1 and geometry.planar_configuration == 1:
        arr = np.moveaxis(arr, -1, 0)
    return native_bytes(arr, geometry.bits_allocated)


def encode_frame(native: bytes, target_ts: str, geometry: FrameGeometry) -> bytes:
    """One native little-endian frame laid out as ``geometry`` says, encoded in ``target_ts``.

    The native syntaxes return it unchanged. A frame that ``decode_frame`` decoded from a
    compressed source is described by ``geometry.decoded()``; given the stored geometry
    instead, full-size YBR_FULL_422, YBR_RCT and YBR_ICT frames are read as RGB. Lossy JPEG
    of RGB yields a YCbCr codestream (YBR_FULL_422), as ``transcode_instance`` labels it.
    """
    if target_ts in _LITTLE_ENDIAN_NATIVE:
        return bytes(native)
    encoder = _ENCODERS.get(target_ts)
    if encoder is None:
        raise TranscodeError(f"cannot encode transfer syntax {target_ts}")
    src = bytes(native)
    pi = geometry.photometric_interpretation
    samples = geometry.rows * geometry.columns * geometry.samples_per_pixel
    width = max(1, geometry.bits_allocated // 8)
    if pi in ("YBR_RCT", "YBR_ICT") or (pi == "YBR_FULL_422" and len(src) >= samples * width):
        pi = "RGB"
    if geometry.samples_per_pixel > 1 and geometry.planar_configuration == 1:
        planes = np.frombuffer(src, dtype=f"<u{width}")[:samples]
        src = planes.reshape(geometry.samples_per_pixel, -1).T.tobytes()
    opts = geometry.options(
        planar_configuration=0, photometric_interpretation=_encoded_photometric(target_ts, pi)
    )
    try:
        return bytes(encoder.encode(src, **opts, **LOSSY_OPTIONS.get(target_ts, {})))
    except Exception as exc:  # any codec failure: pydicom plugins raise various types
        raise TranscodeError(f"cannot encode the frame as {target_ts}: {exc}") from exc


def _source_syntax(ds: Dataset) -> str:
    meta = getattr(ds, "file_meta", None)
    uid = str(meta.get("TransferSyntaxUID", "")) if meta is not None else ""
    if uid:
        return uid
    implicit, little = ds.original_encoding
    if not little:
        return ExplicitVRBigEndian
    return ImplicitVRLittleEndian if implicit else ExplicitVRLittleEndian


def _decode_dataset(ds: Dataset, source: str) -> tuple[np.ndarray, dict[str, Any]]:
    try:
        opts: dict[str, Any] = {"as_rgb": True}
        arr, props = get_decoder(source).as_array(ds, **opts)
    except Exception as exc:  # any codec failure: pydicom plugins raise various types
        raise TranscodeError(f"cannot decode the {source} pixel data: {exc}") from exc
    return arr.astype(arr.dtype.newbyteorder("<"), copy=False), dict(props)


def _encoded_photometric(target: str, photometric: str) -> str:
    if photometric == "YBR_FULL_422":
        raise TranscodeError("subsampled YBR_FULL_422 input cannot be encoded")
    if target in _LOSSY_JPEG and photometric == "RGB":
        return "YBR_FULL_422"  # libjpeg turns RGB into subsampled YCbCr (PS3.5 8.2.1)
    return photometric


def _set_native(ds: Dataset, arr: np.ndarray) -> None:
    raw = native_bytes(arr, int(ds.BitsAllocated))
    ds.PixelData = raw + b"\x00" * (len(raw) % 2)
    element = ds["PixelData"]
    element.VR = VR.OB if int(ds.BitsAllocated) <= 8 else VR.OW
    element.is_undefined_length = False


def _set_encoded(ds: Dataset, arr: np.ndarray, target: str) -> None:
    encoder = _ENCODERS[target]
    photometric = _encoded_photometric(target, str(ds.PhotometricInterpretation))
    opts = as_pixel_options(ds, photometric_interpretation=photometric, planar_configuration=0)
    try:
        frames = list(encoder.iter_encode(arr, **opts, **LOSSY_OPTIONS.get(target, {})))
    except Exception as exc:  # any codec failure: pydicom plugins raise various types
        raise TranscodeError(f"cannot encode this image as {target}: {exc}") from exc
    if sum(len(f) + 8 for f in frames) > 0xFFFFFFF0:  # PS3.5 A.4: Extended Offset Table
        ds.PixelData, ds.ExtendedOffsetTable, ds.ExtendedOffsetTableLengths = encapsulate_extended(
            frames
        )
    else:
        ds.PixelData = encapsulate(frames)
    element = ds["PixelData"]
    element.VR = VR.OB
    element.is_undefined_length = True
    ds.PhotometricInterpretation = photometric
    if target in LOSSY:
        mark_lossy(ds, target, arr.nbytes / max(1, sum(len(f) for f in frames)))


def _write(ds: Dataset, target: str) -> bytes:
    meta = getattr(ds, "file_meta", None)
    if meta is None:
        meta = ds.file_meta = FileMetaDataset()
    meta.TransferSyntaxUID = UID(target)
    if "MediaStorageSOPClassUID" not in meta and "SOPClassUID" in ds:
        meta.MediaStorageSOPClassUID = ds.SOPClassUID
    if "MediaStorageSOPInstanceUID" not in meta and "SOPInstanceUID" in ds:
        meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
    out = io.BytesIO()
    try:
        dcmwrite(out, ds, enforce_file_format=True)
    except (ValueError, AttributeError, TypeError, OverflowError) as exc:
        raise TranscodeError(f"cannot write the instance as {target}: {exc}") from exc
    return out.getvalue()
