"""Pixel codec helpers for transcoding: frame geometry, media types, JPEG encoding with GDCM.

PS3.18 8.7.3.3.2 (Table 8.7.3-5: media types of compressed Bulkdata), PS3.5 8.2 and A.4
(encapsulated transfer syntaxes), PS3.3 C.7.6.1.1.5 (lossy compression history). pydicom 3 has
no JPEG (ISO 10918) encoder: this module is also a pydicom encoding plugin (``is_available``,
``ENCODER_DEPENDENCIES``, ``encode_pixel_data``) that encodes JPEG baseline, extended and
lossless with ``gdcm.ImageChangeTransferSyntax``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, replace
from types import MappingProxyType
from typing import TYPE_CHECKING, Any, Final

import numpy as np
from pydicom.pixels.encoders.base import Encoder
from pydicom.pixels.utils import pack_bits
from pydicom.uid import (
    HTJ2K,
    JPEG2000,
    MPEG2MPHL,
    MPEG2MPML,
    UID,
    DeflatedExplicitVRLittleEndian,
    ExplicitVRBigEndian,
    ExplicitVRLittleEndian,
    HTJ2KLossless,
    HTJ2KLosslessRPCL,
    ImplicitVRLittleEndian,
    JPEG2000Lossless,
    JPEGBaseline8Bit,
    JPEGExtended12Bit,
    JPEGLossless,
    JPEGLosslessSV1,
    JPEGLSLossless,
    JPEGLSNearLossless,
    RLELossless,
)

try:
    import gdcm

    HAVE_GDCM = True
except ImportError:  # pragma: no cover - python-gdcm is a declared dependency
    HAVE_GDCM = False

from pacsflow.dicom.uids import MPEG_FAMILY

if TYPE_CHECKING:
    from pydicom.dataelem import DataElement
    from pydicom.dataset import Dataset
    from pydicom.pixels.encoders.base import EncodeRunner

__all__ = [
    "DEFAULT_TRANSFER_SYNTAX",
    "ENCODER_DEPENDENCIES",
    "JPEG_QUALITY",
    "LOSSY",
    "LOSSY_METHOD",
    "MEDIA_TYPES",
    "FrameGeometry",
    "encode_pixel_data",
    "gdcm_encoder",
    "is_available",
    "mark_lossy",
    "native_bytes",
    "swap_big_endian_values",
    "swap_bytes",
]


# Targets whose encodings here lose information: Lossy Image Compression (PS3.3 C.7.6.1.1.5).
LOSSY: Final = frozenset({JPEGBaseline8Bit, JPEGExtended12Bit, JPEGLSNearLossless, JPEG2000, HTJ2K})
LOSSY_METHOD: Final[Mapping[str, str]] = {  # PS3.3 C.7.6.1.1.5.1 Lossy Image Compression Method
    JPEGBaseline8Bit: "ISO_10918_1",
    JPEGExtended12Bit: "ISO_10918_1",
    JPEGLSNearLossless: "ISO_14495_1",
    JPEG2000: "ISO_15444_1",
}
JPEG_QUALITY: Final = 90
"""IJG quality of the lossy JPEG (baseline/extended) encodings."""
_SWAP_WIDTH: Final = {"OW": 2, "OF": 4, "OL": 4, "OD": 8, "OV": 8}

ENCODER_DEPENDENCIES: Final = {
    u: ("gdcm>=3.0.10",)
    for u in (JPEGBaseline8Bit, JPEGExtended12Bit, JPEGLossless, JPEGLosslessSV1)
}

_OCTET_STREAM: Final = "application/octet-stream"
_MPEG2: Final = (MPEG2MPML, MPEG2MPHL)  # and their .1 variants
MEDIA_TYPES: Final[Mapping[str, str]] = MappingProxyType(
    {
        ImplicitVRLittleEndian: _OCTET_STREAM,
        ExplicitVRLittleEndian: _OCTET_STREAM,
        DeflatedExplicitVRLittleEndian: _OCTET_STREAM,
        ExplicitVRBigEndian: _OCTET_STREAM,
        JPEGBaseline8Bit: "image/jpeg",
        JPEGExtended12Bit: "image/jpeg",
        JPEGLossless: "image/jpeg",
        JPEGLosslessSV1: "image/jpeg",
        JPEGLSLossless: "image/jls",
        JPEGLSNearLossless: "image/jls",
        JPEG2000Lossless: "image/jp2",
        JPEG2000: "image/jp2",
        HTJ2KLossless: "image/jphc",
        HTJ2KLosslessRPCL: "image/jphc",
        HTJ2K: "image/jphc",
        RLELossless: "image/dicom-rle",
        **{ts: "video/mpeg2" if ts.startswith(_MPEG2) else "video/mp4" for ts in MPEG_FAMILY},
    }
)
"""Transfer syntax -> media type of one frame (PS3.18 Tables 8.7.3-4 and 8.7.3-5); a video's
"frame" is its whole stream."""

DEFAULT_TRANSFER_SYNTAX: Final[Mapping[str, str]] = MappingProxyType(
    {
        _OCTET_STREAM: ExplicitVRLittleEndian,
        "image/jpeg": JPEGLosslessSV1,
        "image/jls": JPEGLSLossless,
        "image/jp2": JPEG2000Lossless,
        "image/jphc": HTJ2KLossless,
        "image/dicom-rle": RLELossless,
        "image/x-dicom-rle": RLELossless,  # the older name of image/dicom-rle
    }
)
"""Media type -> the Default (D) transfer syntax of PS3.18 Tables 8.7.3-4 and 8.7.3-5."""


@dataclass(frozen=True, slots=True)
class FrameGeometry:
    """Image Pixel Module attributes that describe one frame (PS3.3 C.7.6.3)."""

    rows: int
    columns: int
    samples_per_pixel: int
    bits_allocated: int
    bits_stored: int
    pixel_representation: int
    photometric_interpretation: str
    planar_configuration: int = 0

    @classmethod
    def from_dataset(cls, ds: Dataset) -> FrameGeometry:
        """The geometry of the frames of ``ds``; ``ValueError`` when an attribute is missing."""
        try:
            return cls(
                int(ds.Rows),
                int(ds.Columns),
                int(ds.SamplesPerPixel),
                int(ds.BitsAllocated),
                int(ds.BitsStored),
                int(ds.PixelRepresentation),
                str(ds.PhotometricInterpretation),
                int(ds.get("PlanarConfiguration", 0) or 0),
            )
        except (AttributeError, TypeError, ValueError) as exc:
            raise ValueError(f"incomplete Image Pixel Module: {exc}") from exc

    @classmethod
    def from_json(cls, attributes: Mapping[str, Any]) -> FrameGeometry:
        """The geometry in DICOM JSON attributes (PS3.18 F.2); ``ValueError`` when incomplete."""

        def value(tag: str, default: Any = None) -> Any:
            values = (attributes.get(tag) or {}).get("Value") or [default]
            if values[0] is None:
                raise ValueError(f"attribute ({tag[:4]},{tag[4:]}) is missing")
            return values[0]

        return cls(
            int(value("00280010")),
            int(value("00280011")),
            int(value("00280002")),
            int(value("00280100")),
            int(value("00280101")),
            int(value("00280103")),
            str(value("00280004")),
            int(value("00280006", 0)),
        )

    def decoded(self, as_rgb: bool = True) -> FrameGeometry:
        """This compressed geometry once decoded by pydicom (YCbCr to RGB with ``as_rgb``)."""
        pi = self.photometric_interpretation
        if pi in ("YBR_RCT", "YBR_ICT") or (as_rgb and pi in ("YBR_FULL", "YBR_FULL_422")):
            pi = "RGB"  # the JPEG 2000 decoder always inverts its component transform
        elif pi == "YBR_FULL_422":
            pi = "YBR_FULL"  # upsampled
        return replace(self, photometric_interpretation=pi)

    def options(self, **overrides: Any) -> dict[str, Any]:
        """pydicom's decoding/encoding options for one frame of this geometry."""
        opts: dict[str, Any] = {
            "rows": self.rows,
            "columns": self.columns,
            "samples_per_pixel": self.samples_per_pixel,
            "bits_allocated": self.bits_allocated,
            "bits_stored": self.bits_stored,
            "pixel_representation": self.pixel_representation,
            "photometric_interpretation": self.photometric_interpretation,
            "number_of_frames": 1,
        }
        if self.samples_per_pixel > 1:
            opts["planar_configuration"] = self.planar_configuration
        opts.update(overrides)
        return opts


def is_available(uid: str) -> bool:
    """pydicom plugin hook: whether this plugin can encode ``uid``."""
    return HAVE_GDCM and uid in ENCODER_DEPENDENCIES


def encode_pixel_data(src: bytes, runner: EncodeRunner) -> bytes:
    """pydicom plugin hook: one frame of little-endian native ``src`` as a JPEG codestream.

    The runner's photometric interpretation is the one after encoding: ``YBR_FULL_422``
    means RGB input that libjpeg (inside GDCM) converts to subsampled YCbCr.
    """
    uid = str(runner.transfer_syntax)
    photometric = str(runner.photometric_interpretation)
    source_pi = "RGB" if photometric == "YBR_FULL_422" else photometric
    pi_type = gdcm.PhotometricInterpretation.GetPIType(source_pi)
    if pi_type == gdcm.PhotometricInterpretation.PI_END:
        raise ValueError(f"GDCM does not know photometric interpretation {source_pi!r}")
    writer = gdcm.ImageWriter()  # owns the image; keep it referenced until the end
    image = writer.GetImage()
    image.SetNumberOfDimensions(2)
    image.SetDimensions((runner.columns, runner.rows, 1))
    image.SetPhotometricInterpretation(gdcm.PhotometricInterpretation(pi_type))
    image.SetTransferSyntax(gdcm.TransferSyntax(gdcm.TransferSyntax.ImplicitVRLittleEndian))
    bits = runner.bits_stored
    # GDCM picks its 8/12/16-bit libjpeg by Bits Allocated: 16 would give a lossy JPEG of
    # 16-bit precision, which ISO 10918 does not have; 12 reads the same 16-bit words.
    allocated = 12 if uid in LOSSY and bits == 12 else runner.bits_allocated
    pixel_format = gdcm.PixelFormat(
        runner.samples_per_pixel, allocated, bits, bits - 1, runner.pixel_representation
    )
    image.SetPixelFormat(pixel_format)
    if runner.samples_per_pixel > 1:
        image.SetPlanarConfiguration(runner.planar_configuration)
    element = gdcm.DataElement(gdcm.Tag(0x7FE0, 0x0010))
    element.SetByteStringValue(src)
    image.SetDataElement(element)
    converter = gdcm.ImageChangeTransferSyntax()
    converter.SetTransferSyntax(gdcm.TransferSyntax(gdcm.TransferSyntax.GetTSType(uid)))
    if uid in LOSSY:
        codec = gdcm.JPEGCodec()
        codec.SetPixelFormat(pixel_format)
        codec.SetLossless(False)
        codec.SetQuality(JPEG_QUALITY)
        converter.SetUserCodec(codec)
    converter.SetInput(image)
    if not converter.Change():
        raise RuntimeError(f"GDCM could not encode the frame as {uid}")
    fragments = converter.GetOutput().GetDataElement().GetSequenceOfFragments()
    if fragments is None or fragments.GetNumberOfFragments() < 1:
        raise RuntimeError("GDCM returned no encapsulated fragments")
    return b"".join(
        fragments.GetFragment(i).GetByteValue().GetBuffer().encode("utf-8", "surrogateescape")
        for i in range(fragments.GetNumberOfFragments())
    )


def gdcm_encoder(uid: str) -> Encoder | None:
    """A pydicom ``Encoder`` for a JPEG (ISO 10918) syntax backed by GDCM, or None."""
    if not is_available(uid):
        return None
    encoder = Encoder(UID(uid))
    encoder.add_plugin("gdcm", (__name__, "encode_pixel_data"))
    return encoder


def native_bytes(arr: np.ndarray, bits_allocated: int) -> bytes:
    """Little-endian native Pixel Data bytes of a decoded array (1-bit data packed)."""
    if bits_allocated == 1:
        return pack_bits(arr)
    return arr.astype(arr.dtype.newbyteorder("<"), copy=False).tobytes()


def swap_bytes(raw: bytes, width: int) -> bytes:
    """Big-endian words of ``width`` bytes as little-endian ones (unchanged for bytes)."""
    if width < 2 or len(raw) % width:
        return raw
    return np.frombuffer(raw, dtype=f">u{width}").astype(f"<u{width}").tobytes()


def swap_big_endian_values(ds: Dataset) -> None:
    """Byte-swap the OW/OF/OL/OD/OV values pydicom keeps raw, except the top Pixel Data."""

    def swap(dataset: Dataset, element: DataElement) -> None:
        width = _SWAP_WIDTH.get(str(element.VR))
        top_pixels = dataset is ds and element.tag == 0x7FE00010
        if width and isinstance(element.value, bytes) and not top_pixels:
            element.value = swap_bytes(element.value, width)

    ds.walk(swap)


def mark_lossy(ds: Dataset, target: str, ratio: float) -> None:
    """Set Lossy Image Compression, Ratio and Method (PS3.3 C.7.6.1.1.5), kept as history."""
    ratios: list[str] = []
    methods: list[str] = []
    if ds.get("LossyImageCompression") == "01":
        ratios = [str(r) for r in _values(ds.get("LossyImageCompressionRatio"))]
        methods = [str(m) for m in _values(ds.get("LossyImageCompressionMethod"))]
    ds.LossyImageCompression = "01"
    ds.LossyImageCompressionRatio = [*ratios, f"{ratio:.2f}"]
    ds.LossyImageCompressionMethod = [*methods, LOSSY_METHOD[target]]


def _values(value: Any) -> list[Any]:
    if value is None or value == "":
        return []
    if isinstance(value, str | bytes | int | float):
        return [value]
    return list(value)
