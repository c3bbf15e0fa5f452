"""Codestream header checks without decoding (pacsflow/dicom/codestream.py, PS3.5 A.4, 8.2)."""

from __future__ import annotations

import pytest
from pydicom.uid import RLELossless as RLE_LOSSLESS

from pacsflow.dicom.codestream import CodestreamError, check_codestream

JPEG_BASELINE = "1.2.840.10008.1.2.4.50"
JPEG_LS = "1.2.840.10008.1.2.4.80"
J2K = "1.2.840.10008.1.2.4.90"
SHAPE = (4, 8, 1)  # rows, columns, samples


# a DC Huffman table (class 0, id 0) with one code of length 1 for the value 0
DHT = b"\xff\xc4\x00\x14\x00" + b"\x01" + bytes(15) + b"\x00"


def _jpeg(
    sof: int = 0xC0, scan: bytes = b"\x00\x3f\x00", rows: int = 4, tables: bytes = DHT
) -> bytes:
    frame = b"\xff\xc0"[:1] + bytes([sof]) + b"\x00\x0b\x08" + rows.to_bytes(2, "big")
    frame += (8).to_bytes(2, "big") + b"\x01\x01\x11\x00"
    sos = b"\xff\xda\x00\x08\x01\x01\x00" + scan
    return b"\xff\xd8" + tables + frame + sos + b"\x12\x34" + b"\xff\xd9"


def _check(ts: str, frame: bytes, shape: tuple[int, int, int] = SHAPE) -> None:
    check_codestream(ts, frame, frame[-3:], len(frame), shape)


def test_a_well_formed_jpeg_passes() -> None:
    _check(JPEG_BASELINE, _jpeg())
    _check(JPEG_BASELINE, _jpeg() + b"\x00")  # even-length padding after EOI
    _check(JPEG_LS, _jpeg(sof=0xF7, scan=b"\x00\x00\x00", tables=b""))  # no Huffman coding


@pytest.mark.parametrize(
    ("frame", "reason"),
    [
        (_jpeg(scan=b"\x00\x00\x00"), "Se=63"),  # the spectral selection of a DCT scan
        (_jpeg(rows=5), "Image Pixel Module"),
        (_jpeg()[:-2], "end marker"),
        (b"\x00" + _jpeg()[1:], "SOI"),
        (_jpeg(sof=0xF7, scan=b"\x00\x07\x00"), "interleave"),
        (_jpeg(tables=b""), "Huffman table"),  # T.81 B.2.4.2: no default tables
    ],
)
def test_malformed_jpeg_headers_are_refused(frame: bytes, reason: str) -> None:
    with pytest.raises(CodestreamError, match=reason):
        _check(JPEG_BASELINE if b"\xff\xf7" not in frame else JPEG_LS, frame)


def test_jpeg_2000_size_must_match_the_image() -> None:
    siz = b"\x00\x29\x00\x00" + (8).to_bytes(4, "big") + (4).to_bytes(4, "big") + bytes(24)
    frame = b"\xff\x4f\xff\x51" + siz + b"\x00\x01" + b"\x07\x01\x01" + b"\xff\xd9"
    _check(J2K, frame)
    with pytest.raises(CodestreamError, match="Image Pixel Module"):
        _check(J2K, frame, (4, 9, 1))


def test_rle_header_offsets() -> None:
    header = (2).to_bytes(4, "little") + (64).to_bytes(4, "little") + (70).to_bytes(4, "little")
    frame = header + bytes(64 - len(header)) + bytes(10)
    _check(RLE_LOSSLESS, frame)
    with pytest.raises(CodestreamError, match="increasing"):
        _check(RLE_LOSSLESS, frame[:70])
    with pytest.raises(CodestreamError, match="segments"):
        _check(RLE_LOSSLESS, bytes(64))
