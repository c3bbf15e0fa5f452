"""Image Pixel Description from a JPEG or JPEG 2000 bulk part (PS3.18 10.5.2, Table 10.5.2-1).

A compressed Pixel Data part of a metadata request may come without Rows, Columns, Samples per
Pixel, Photometric Interpretation and the Bits attributes; they are read from the codestream's
headers here, with the transfer syntax the bytes are encapsulated in unchanged (PS3.5 8.2,
A.4): the frame header (SOFn) and scan header (SOS) of ISO 10918-1 B.2, the SIZ and COD marker
segments of ISO 15444-1 A.5.1 and A.6.1 (the Rsiz capability bit of ISO 15444-15 for HTJ2K),
and the boxes of the JP2/JPH file formats (ISO 15444-1 Annex I), whose codestream (``jp2c``)
is what DICOM encapsulates. Written here because no maintained Python library reads these
headers without decoding the image; they are a few fixed-layout segments.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from typing import Any, BinaryIO, Final

from pydicom.uid import (
    HTJ2K,
    JPEG2000,
    HTJ2KLossless,
    JPEG2000Lossless,
    JPEGBaseline8Bit,
    JPEGExtended12Bit,
    JPEGLossless,
    JPEGLosslessSV1,
)

from pacsflow.dicom.header import PartRejected
from pacsflow.dicom.status import FailureReason

__all__ = ["PixelMedia", "probe_jpeg", "probe_jpeg2000"]

_JP2_SIGNATURE: Final = b"\x00\x00\x00\x0cjP  \r\n\x87\n"
_J2K_START: Final = b"\xff\x4f\xff\x51"  # SOC then SIZ
_STANDALONE: Final = frozenset({0x01, *range(0xD0, 0xD9)})  # TEM, RSTn, SOI: no length
_SOF: Final = {0xC0: JPEGBaseline8Bit, 0xC1: JPEGExtended12Bit, 0xC3: JPEGLossless}
_UNSUPPORTED_SOF: Final = {
    0xC2: "progressive",
    0xC5: "hierarchical",
    0xC6: "hierarchical",
    0xC7: "hierarchical",
    0xC9: "arithmetic-coded",
    0xCA: "arithmetic-coded progressive",
    0xCB: "arithmetic-coded lossless",
    0xCD: "hierarchical",
    0xCE: "hierarchical",
    0xCF: "hierarchical",
}
_HEADER_LIMIT: Final = 1 << 22
_PRECISION_ONLY: Final = frozenset(
    {"BitsStored", "HighBit", "PixelRepresentation"}
)  # marker segments read before the first scan or tile


@dataclass(frozen=True, slots=True)
class PixelMedia:
    """Pixel Data derived from a bulk part: its transfer syntax and Image Pixel attributes.

    ``span`` is the byte range of the part that is encapsulated as the frame (the whole JPEG,
    the JP2 file's codestream); ``native`` holds transformed native pixels (PNG, GIF) instead.
    """

    transfer_syntax: str
    attributes: dict[str, Any]
    span: tuple[int, int] | None = None
    native: bytes | None = None
    lossy_method: str | None = None
    guessed: frozenset[str] = frozenset()  # attributes the media only suggest: a sent value wins


def _unsupported(media: str, why: str) -> PartRejected:
    return PartRejected(
        FailureReason.TRANSFER_SYNTAX_NOT_SUPPORTED,
        f"the {media} part cannot be stored unchanged: {why} (PS3.18 Table 10.5.2-1)",
    )


def _not_understood(media: str, why: str) -> PartRejected:
    return PartRejected(FailureReason.CANNOT_UNDERSTAND, f"the {media} part is not valid: {why}")


def _read(fp: BinaryIO, n: int, media: str) -> bytes:
    data = fp.read(n)
    if len(data) != n:
        raise _not_understood(media, "it ends inside a header")
    return data


def _pixel_attributes(
    rows: int, columns: int, samples: int, bits: int, signed: bool
) -> dict[str, Any]:
    if rows <= 0 or columns <= 0 or rows > 0xFFFF or columns > 0xFFFF:
        raise _unsupported("image", f"{columns} x {rows} pixels do not fit Rows and Columns")
    attributes: dict[str, Any] = {
        "Rows": rows,
        "Columns": columns,
        "SamplesPerPixel": samples,
        "BitsAllocated": 8 if bits <= 8 else 16,
        "BitsStored": bits,
        "HighBit": bits - 1,
        "PixelRepresentation": 1 if signed else 0,
    }
    if samples > 1:
        attributes["PlanarConfiguration"] = 0
    return attributes


def probe_jpeg(fp: BinaryIO, size: int) -> PixelMedia:
    """The transfer syntax and Image Pixel attributes of an ``image/jpeg`` part (ISO 10918-1)."""
    media = "image/jpeg"
    if _read(fp, 2, media) != b"\xff\xd8":
        raise _not_understood(media, "it does not start with the SOI marker")
    adobe_transform: int | None = None
    jfif = False
    frame: tuple[int, bytes] | None = None
    while fp.tell() < min(size, _HEADER_LIMIT):
        byte = _read(fp, 1, media)
        if byte != b"\xff":
            raise _not_understood(media, f"no marker at byte {fp.tell() - 1}")
        marker = _read(fp, 1, media)[0]
        while marker == 0xFF:  # fill bytes (B.1.1.2)
            marker = _read(fp, 1, media)[0]
        if marker in _STANDALONE:
            continue
        (length,) = struct.unpack(">H", _read(fp, 2, media))
        payload = _read(fp, length - 2, media)
        if marker == 0xEE and payload.startswith(b"Adobe") and len(payload) >= 12:
            adobe_transform = payload[11]
        elif marker == 0xE0 and payload.startswith(b"JFIF\x00"):
            jfif = True
        elif marker in _UNSUPPORTED_SOF:
            raise _unsupported(
                media, f"{_UNSUPPORTED_SOF[marker]} JPEG has no DICOM transfer syntax"
            )
        elif marker in _SOF:
            frame = (marker, payload)
        elif marker == 0xDA:  # SOS: the frame header came before it (B.2.1)
            if frame is None:
                raise _not_understood(media, "a scan starts before any frame header")
            return _jpeg_media(frame[0], frame[1], payload, adobe_transform, jfif, size)
    raise _not_understood(media, "no frame and scan header (SOFn, SOS) in its first bytes")


def _jpeg_media(
    marker: int, sof: bytes, sos: bytes, adobe_transform: int | None, jfif: bool, size: int
) -> PixelMedia:
    precision, rows, columns, count = struct.unpack(">BHHB", sof[:6])
    components = [sof[6 + 3 * i : 9 + 3 * i] for i in range(count)]
    if rows == 0:
        raise _unsupported("image/jpeg", "the number of lines is defined later (DNL)")
    if count not in (1, 3):
        raise _unsupported("image/jpeg", f"{count} components (DICOM takes 1 or 3)")
    syntax = _SOF[marker]
    if marker == 0xC3 and sos[1 + 2 * sos[0]] == 1:  # predictor Selection Value 1 (H.1.2.1)
        syntax = JPEGLosslessSV1
    if marker == 0xC0 and precision != 8:
        raise _not_understood("image/jpeg", f"a baseline JPEG with {precision}-bit samples")
    attributes = _pixel_attributes(rows, columns, count, precision, signed=False)
    photometric, certain = _jpeg_photometric(marker, components, adobe_transform, jfif)
    attributes["PhotometricInterpretation"] = photometric
    lossy = "ISO_10918_1" if syntax in (JPEGBaseline8Bit, JPEGExtended12Bit) else None
    # The sample precision bounds Bits Stored; signedness is not in a JPEG (PS3.5 8.2.1).
    guessed = _PRECISION_ONLY | (set() if certain else {"PhotometricInterpretation"})
    return PixelMedia(syntax, attributes, span=(0, size), lossy_method=lossy, guessed=guessed)


def _jpeg_photometric(
    marker: int, components: list[bytes], adobe_transform: int | None, jfif: bool
) -> tuple[str, bool]:
    """PS3.5 8.2.1: RGB when the components are not YCbCr, else YBR_FULL(_422); and whether
    the codestream says so (JFIF means YCbCr, an Adobe marker names its transform, component
    identifiers R, G, B mean RGB) or it is only the usual reading of three components."""
    if len(components) == 1:
        return "MONOCHROME2", True
    if marker == 0xC3:
        return "RGB", adobe_transform is not None or jfif
    if adobe_transform == 0 or [c[0] for c in components] == [82, 71, 66]:
        return "RGB", True
    luma, *chroma = (c[1] for c in components)  # sampling factors Hi << 4 | Vi
    subsampled = any((luma >> 4) > (c >> 4) or (luma & 15) > (c & 15) for c in chroma)
    return ("YBR_FULL_422" if subsampled else "YBR_FULL"), jfif or adobe_transform is not None


def probe_jpeg2000(fp: BinaryIO, size: int, media: str) -> PixelMedia:
    """The transfer syntax and Image Pixel attributes of a JPEG 2000 or HTJ2K part."""
    head = _read(fp, 12, media)
    if head == _JP2_SIGNATURE:
        start, length = _codestream_box(fp, size, media)
    elif head.startswith(_J2K_START):
        start, length = 0, size
    else:
        raise _not_understood(media, "neither a JP2/JPH file nor a JPEG 2000 codestream")
    fp.seek(start)
    if _read(fp, 4, media) != _J2K_START:
        raise _not_understood(media, "the codestream does not start with SOC and SIZ")
    (lsiz,) = struct.unpack(">H", _read(fp, 2, media))
    siz = _read(fp, lsiz - 2, media)
    rsiz, xsiz, ysiz, xosiz, yosiz = struct.unpack(">H4I", siz[:18])
    (csiz,) = struct.unpack(">H", siz[34:36])
    comps = [siz[36 + 3 * i : 39 + 3 * i] for i in range(csiz)]
    if (
        len(comps) != csiz
        or not comps
        or len({c for c in comps}) != 1
        or comps[0][1:] != b"\x01\x01"
    ):
        raise _unsupported(media, "its components differ in depth, sign or sub-sampling")
    mct, reversible = _coding_style(fp, start + length, media)
    ht = bool(rsiz & 0x4000)  # ISO 15444-15: Rsiz capability of an HTJ2K codestream
    syntax = (
        (HTJ2KLossless if reversible else HTJ2K)
        if ht
        else (JPEG2000Lossless if reversible else JPEG2000)
    )
    precision, signed = (comps[0][0] & 0x7F) + 1, bool(comps[0][0] & 0x80)
    attributes = _pixel_attributes(ysiz - yosiz, xsiz - xosiz, csiz, precision, signed)
    if csiz == 1:
        photometric = "MONOCHROME2"
    elif csiz == 3 and mct:
        photometric = "YBR_RCT" if reversible else "YBR_ICT"
    elif csiz == 3:
        photometric = "RGB"
    else:
        raise _unsupported(media, f"{csiz} components (DICOM takes 1 or 3)")
    attributes["PhotometricInterpretation"] = photometric
    lossy = None if reversible else ("ISO_15444_15" if ht else "ISO_15444_1")
    guessed = frozenset({"BitsStored", "HighBit"})  # the precision bounds Bits Stored
    return PixelMedia(syntax, attributes, (start, length), lossy_method=lossy, guessed=guessed)


def _codestream_box(fp: BinaryIO, size: int, media: str) -> tuple[int, int]:
    """The offset and length of the contiguous codestream box (``jp2c``) of a JP2/JPH file."""
    position = 12
    while position + 8 <= size:
        fp.seek(position)
        lbox, tbox = struct.unpack(">I4s", _read(fp, 8, media))
        header = 8
        if lbox == 1:
            (lbox,) = struct.unpack(">Q", _read(fp, 8, media))
            header = 16
        elif lbox == 0:
            lbox = size - position
        if lbox < header or position + lbox > size:
            raise _not_understood(media, f"box {tbox!r} at byte {position} overruns the file")
        if tbox == b"jp2c":
            return position + header, lbox - header
        position += lbox
    raise _not_understood(media, "the file has no codestream box (jp2c)")


def _coding_style(fp: BinaryIO, end: int, media: str) -> tuple[bool, bool]:
    """(multiple component transform, reversible 5-3 wavelet) from the main header's COD."""
    while fp.tell() + 4 <= min(end, _HEADER_LIMIT):
        marker, length = struct.unpack(">HH", _read(fp, 4, media))
        if marker == 0xFF90:  # SOT: the main header ended without COD
            break
        payload = _read(fp, length - 2, media)
        if marker == 0xFF52 and len(payload) >= 10:
            return bool(payload[4]), payload[9] == 1
    raise _not_understood(media, "the main header has no COD marker segment")
