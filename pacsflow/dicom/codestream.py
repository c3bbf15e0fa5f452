"""Cheap checks of an encapsulated frame's codestream headers, without decoding it (PS3.5 A.4).

``PACSFLOW_VALIDATE_PIXEL_DATA=structure`` checks every frame this way: the JPEG and JPEG-LS
marker segments up to the first scan (ITU-T T.81 B.2, T.87 C.2), with the scan parameters
the frame's process requires (sequential DCT: Ss=0, Se=63, Ah=Al=0; lossless: predictor 1-7,
Se=0), the Huffman tables a Huffman-coded scan needs (T.81 B.2.4.2: no default tables), and
the End of Image marker; a JPEG 2000 codestream's SOC, SIZ and EOC markers (ISO/IEC
15444-1 A.4); an RLE header's segment count and offsets (PS3.5 G.3.1). It reads a few hundred
bytes of a frame, where decoding reads all of it and costs 100-400 times as much
(docs/conformance.md). Written by hand: the codec packages only decode whole frames.
"""

from __future__ import annotations

from itertools import pairwise
from typing import Final

from pydicom.uid import RLELossless as RLE_LOSSLESS

from pacsflow.dicom.uids import JPEG2000_FAMILY, JPEG_FAMILY

__all__ = ["HEAD_BYTES", "CodestreamError", "check_codestream"]

HEAD_BYTES: Final = 64 * 1024  # read of a frame's start: its headers, tables and profiles
_SOI: Final = 0xD8
_SOC_SIZ: Final = b"\xff\x4f\xff\x51"
_JP2_SIGNATURE: Final = b"\x00\x00\x00\x0cjP  "
_EOI: Final = b"\xff\xd9"
_SOS: Final = 0xDA
_SEQUENTIAL: Final = frozenset({0xC0, 0xC1, 0xC9})  # baseline, extended (Huffman, arithmetic)
_LOSSLESS: Final = frozenset({0xC3, 0xC7, 0xCB, 0xCF})
_JPEG_LS: Final = frozenset({0xF7})
_NOT_SOF: Final = frozenset({0xC4, 0xC8, 0xCC})  # DHT, JPG, DAC
_DHT: Final = 0xC4
_HUFFMAN: Final = frozenset({0xC0, 0xC1, 0xC2, 0xC3, 0xC5, 0xC6, 0xC7})  # entropy coded by tables
_STANDALONE: Final = frozenset({0x01, *range(0xD0, 0xD8)})  # TEM, RSTn


class CodestreamError(ValueError):
    """A frame's codestream headers are not valid for its transfer syntax."""


def check_codestream(
    transfer_syntax: str, head: bytes, tail: bytes, size: int, shape: tuple[int, int, int]
) -> None:
    """Raise ``CodestreamError`` when a frame's headers are wrong for ``transfer_syntax``.

    ``head``: the frame's first bytes (``HEAD_BYTES``, or all of it); ``tail``: its last three
    bytes; ``size``: its length; ``shape``: Rows, Columns and Samples per Pixel of the Image
    Pixel Module, which the codestream's own dimensions must match (PS3.5 8.2). Headers that
    reach beyond ``head`` are not checked.
    """
    if transfer_syntax in JPEG_FAMILY:
        _jpeg(head, size, shape)
        _ends_with_eoi(tail)
    elif transfer_syntax in JPEG2000_FAMILY:
        if head.startswith(_JP2_SIGNATURE):  # a JP2 file around the codestream (tolerated)
            head = head[max(head.find(_SOC_SIZ), 0) :]
        if head[:4] != _SOC_SIZ or len(head) < 42:
            raise CodestreamError("the JPEG 2000 codestream does not start with SOC and SIZ")
        width, height, x0, y0 = (int.from_bytes(head[i : i + 4], "big") for i in (8, 12, 16, 20))
        components = int.from_bytes(head[40:42], "big")
        _same_shape((height - y0, width - x0, components), shape, "JPEG 2000")
        _ends_with_eoi(tail)
    elif transfer_syntax == RLE_LOSSLESS:
        _rle(head, size)


def _ends_with_eoi(tail: bytes) -> None:
    """The codestream ends with its end marker (FFD9), one pad byte (to an even length) after
    it allowed."""
    if _EOI not in tail[-3:]:
        raise CodestreamError("the codestream does not end with its end marker (FFD9)")


def _same_shape(found: tuple[int, int, int], shape: tuple[int, int, int], kind: str) -> None:
    rows, columns, samples = found
    if (rows and rows != shape[0]) or columns != shape[1] or samples != shape[2]:
        raise CodestreamError(
            f"the {kind} codestream is {columns}x{rows} with {samples} components, not the "
            f"{shape[1]}x{shape[0]} with {shape[2]} samples of the Image Pixel Module"
        )


def _jpeg(frame: bytes, size: int, shape: tuple[int, int, int]) -> None:
    """Marker segments from SOI to the first SOS, the scan header against the frame's process."""
    if frame[:2] != b"\xff\xd8":
        raise CodestreamError("the JPEG codestream does not start with SOI (FFD8)")
    position, process, huffman_tables = 2, 0, 0
    while True:
        while frame[position : position + 2] == b"\xff\xff":
            position += 1  # fill bytes
        if position + 4 > len(frame) and len(frame) < size:
            return
        if position + 2 > len(frame) or frame[position] != 0xFF:
            raise CodestreamError(f"no JPEG marker at byte {position} before the first scan")
        marker = frame[position + 1]
        if marker in _STANDALONE or marker == _SOI:
            position += 2
            continue
        length = int.from_bytes(frame[position + 2 : position + 4], "big")
        if position + 2 + length > len(frame) and len(frame) < size:
            return  # the headers go on beyond what was read
        if length < 2 or position + 2 + length > len(frame):
            raise CodestreamError(f"JPEG marker FF{marker:02X} has an invalid length {length}")
        segment = frame[position + 4 : position + 2 + length]
        if (0xC0 <= marker <= 0xCF and marker not in _NOT_SOF) or marker in _JPEG_LS:
            process = marker
            if len(segment) < 6:
                raise CodestreamError(f"the JPEG frame header FF{marker:02X} is too short")
            found = (int.from_bytes(segment[1:3], "big"), int.from_bytes(segment[3:5], "big"))
            _same_shape((*found, segment[5]), shape, "JPEG")
        elif marker == _DHT:
            huffman_tables += 1
        elif marker == _SOS:
            _scan_header(segment, process)
            if process in _HUFFMAN and not huffman_tables:
                raise CodestreamError("a Huffman-coded JPEG scan comes before any Huffman table")
            return
        position += 2 + length


def _scan_header(segment: bytes, process: int) -> None:
    """SOS: Ns components, then Ss, Se, Ah/Al as the frame's process requires."""
    if not process:
        raise CodestreamError("the first JPEG scan comes before any frame header (SOF)")
    count = segment[0] if segment else 0
    if not 1 <= count <= 4 or len(segment) != 4 + 2 * count:
        raise CodestreamError(f"the JPEG scan header is malformed ({count} components)")
    ss, se, approximation = segment[-3], segment[-2], segment[-1]
    if process in _SEQUENTIAL and (ss, se, approximation) != (0, 63, 0):
        raise CodestreamError(
            f"a sequential DCT scan needs Ss=0, Se=63, Ah=Al=0, not {ss}, {se}, {approximation}"
        )
    if process in _LOSSLESS and not (1 <= ss <= 7 and se == 0 and approximation >> 4 == 0):
        raise CodestreamError(f"a lossless scan needs a predictor 1-7 and Se=0, not {ss}, {se}")
    if process in _JPEG_LS and se > 2:
        raise CodestreamError(f"a JPEG-LS scan's interleave mode is 0-2, not {se}")


def _rle(frame: bytes, size: int) -> None:
    """The RLE header: 1-15 segments whose offsets start at 64 and grow within the frame."""
    if len(frame) < 64:
        raise CodestreamError("the RLE frame is shorter than its 64-byte header")
    count = int.from_bytes(frame[:4], "little")
    if not 1 <= count <= 15:
        raise CodestreamError(f"the RLE header is malformed ({count} segments)")
    offsets = [int.from_bytes(frame[4 + 4 * i : 8 + 4 * i], "little") for i in range(count)]
    if offsets[0] != 64:
        raise CodestreamError(f"the first RLE segment starts at {offsets[0]}, not 64")
    if any(b <= a for a, b in pairwise(offsets)) or offsets[-1] >= size:
        raise CodestreamError("the RLE segment offsets are not increasing within the frame")
