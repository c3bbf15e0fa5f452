"""Frame offset table: where each frame of Pixel Data lies in the stored object (PS3.5 8.2, A.4).

WADO-RS frame retrieval (PS3.18 10.4.1.1.3) reads a frame by byte range through this table,
never by reading the whole instance. A frame is a list of ``(offset, length)`` segments: one
segment for native data, one or more fragments for encapsulated data. A video (the MPEG
transfer syntaxes, PS3.5 8.2.5-8.2.8) is one stream of all its frames: its table holds one
entry, the whole stream, which WADO-RS serves as the single part of a multi-frame media type
(PS3.18 8.7.3.3.2).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import BinaryIO

import orjson
from pydicom.dataset import Dataset

from pacsflow.dicom.scan import PixelLayout
from pacsflow.dicom.uids import JPEG2000_FAMILY, JPEG_FAMILY, MPEG_FAMILY

__all__ = [
    "FrameTable",
    "ImageGeometry",
    "build_frame_table",
    "frame_count",
    "native_frame_length",
    "number_of_frames",
    "unpadded",
]


@dataclass(frozen=True, slots=True)
class ImageGeometry:
    """The Image Pixel Module attributes that decide frame sizes (PS3.3 C.7.6.3)."""

    rows: int
    columns: int
    samples_per_pixel: int
    bits_allocated: int
    number_of_frames: int

    @classmethod
    def of(cls, ds: Dataset) -> ImageGeometry:
        """The geometry a data set declares; ``AttributeError``/``ValueError`` when it cannot."""
        return cls(
            rows=int(ds.Rows),
            columns=int(ds.Columns),
            samples_per_pixel=int(ds.get("SamplesPerPixel", 1) or 1),
            bits_allocated=int(ds.BitsAllocated),
            number_of_frames=number_of_frames(ds),
        )


@dataclass(frozen=True, slots=True)
class FrameTable:
    """Per-frame byte segments in the stored object, with the transfer syntax they are in."""

    transfer_syntax: str
    encapsulated: bool
    frames: tuple[tuple[tuple[int, int], ...], ...]

    def to_json(self) -> bytes:
        """Serialize (version 1) for storage next to the instance."""
        return orjson.dumps(
            {
                "version": 1,
                "transfer_syntax": self.transfer_syntax,
                "encapsulated": self.encapsulated,
                "frames": self.frames,
            }
        )

    @classmethod
    def from_json(cls, raw: bytes) -> FrameTable:
        """Read a table written by ``to_json``."""
        data = orjson.loads(raw)
        frames = tuple(tuple((int(o), int(n)) for o, n in f) for f in data["frames"])
        return cls(str(data["transfer_syntax"]), bool(data["encapsulated"]), frames)


def number_of_frames(ds: Dataset) -> int:
    """Number of Frames (0028,0008) (PS3.3 C.7.6.6): 1 when absent, empty or 0.

    Raises ``ValueError`` when it is not a non-negative integer.
    """
    return frame_count(ds.get("NumberOfFrames"))


def frame_count(value: object) -> int:
    """A Number of Frames value (PS3.3 C.7.6.6), of a data set or of its DICOM JSON: 1 when
    None, empty or 0; ``ValueError`` when it is not a non-negative integer."""
    try:
        count: int = int(value or 1)  # type: ignore[call-overload]
    except (TypeError, ValueError) as exc:
        raise ValueError(f"Number of Frames (0028,0008) is not a number: {exc}") from exc
    if count < 0:
        raise ValueError(f"Number of Frames (0028,0008) is negative: {count}")
    return max(1, count)


def native_frame_length(geometry: ImageGeometry) -> int:
    """Bytes of one native frame; 1-bit data is packed (PS3.5 8.1.1)."""
    bits = geometry.rows * geometry.columns * geometry.samples_per_pixel * geometry.bits_allocated
    return (bits + 7) // 8


def build_frame_table(
    layout: PixelLayout, geometry: ImageGeometry, transfer_syntax: str, fp: BinaryIO
) -> FrameTable:
    """Map frames to byte segments; raise ``ValueError`` when Pixel Data cannot hold them."""
    n = geometry.number_of_frames
    if not layout.encapsulated:
        return FrameTable(transfer_syntax, False, _native_frames(layout, geometry))
    fragments = layout.fragments
    if n == 1 or transfer_syntax in MPEG_FAMILY:
        groups: Sequence[Sequence[tuple[int, int]]] = [fragments]
    elif len(layout.basic_offsets) == n:
        groups = _by_offsets(layout, n)
    elif len(fragments) == n:
        groups = [[f] for f in fragments]
    # A Basic Offset Table with a wrong number of entries (seen in the wild) is ignored.
    elif transfer_syntax in JPEG_FAMILY:
        groups = _by_jpeg_markers(fragments, fp, n)
    else:
        raise ValueError(
            f"{len(fragments)} fragments without an offset table cannot be split into {n} frames"
        )
    return FrameTable(transfer_syntax, True, tuple(tuple(g) for g in groups))


def unpadded(transfer_syntax: str, frame: bytes) -> bytes:
    """A JPEG family or JPEG 2000 frame without the null byte that padded its last fragment to
    an even length after the EOI/EOC marker (PS3.5 A.4): the codestream as it was encoded."""
    if frame.endswith(b"\xff\xd9\x00") and (
        transfer_syntax in JPEG_FAMILY or transfer_syntax in JPEG2000_FAMILY
    ):
        return frame[:-1]
    return frame


def _native_frames(
    layout: PixelLayout, geometry: ImageGeometry
) -> tuple[tuple[tuple[int, int], ...], ...]:
    n = geometry.number_of_frames
    frame_bits = geometry.rows * geometry.columns * geometry.samples_per_pixel
    if geometry.bits_allocated == 1 and frame_bits % 8:
        # Packed 1-bit frames that do not end on a byte boundary (PS3.5 8.1.1): every frame
        # needs the whole value and a bit offset, which the reader derives from the geometry.
        if layout.length * 8 < frame_bits * n:
            raise ValueError("Pixel Data is shorter than Rows x Columns x Number of Frames")
        return tuple(((layout.offset, layout.length),) for _ in range(n))
    size = native_frame_length(geometry)
    if layout.length < size * n:
        raise ValueError(
            f"Pixel Data holds {layout.length} bytes, {size * n} are needed for {n} frame(s)"
        )
    return tuple(((layout.offset + i * size, size),) for i in range(n))


def _by_offsets(layout: PixelLayout, n: int) -> list[list[tuple[int, int]]]:
    offsets = layout.basic_offsets
    first_item = layout.fragments[0][0] - 8
    starts = {offset: i for i, offset in enumerate(offsets)}
    groups: list[list[tuple[int, int]]] = []
    for offset, length in layout.fragments:
        relative = offset - 8 - first_item
        if relative in starts:
            groups.append([])
        if not groups:
            raise ValueError("the Basic Offset Table does not point at the first fragment")
        groups[-1].append((offset, length))
    if len(groups) != n:
        raise ValueError("the Basic Offset Table does not match the fragment items")
    return groups


def _by_jpeg_markers(
    fragments: Sequence[tuple[int, int]], fp: BinaryIO, n: int
) -> list[list[tuple[int, int]]]:
    """Group fragments into frames by the JPEG Start Of Image marker each frame begins with."""
    groups: list[list[tuple[int, int]]] = []
    for offset, length in fragments:
        fp.seek(offset)
        if fp.read(2) == b"\xff\xd8" or not groups:
            groups.append([])
        groups[-1].append((offset, length))
    if len(groups) != n:
        raise ValueError(f"found {len(groups)} JPEG frames, Number of Frames says {n}")
    return groups
