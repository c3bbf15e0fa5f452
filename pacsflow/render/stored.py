"""Rendering from the bytes that matter: the header and the frames asked for (PS3.5 8.2, A.4).

The frame table written at ingest (``pacsflow.dicom.frames``) says where each frame lies in the
stored object, so a rendering reads the header (every byte before the first frame: the Pixel
Data element, and everything rendering uses, comes before it) and the frames it shows, never the
whole object: the same cost for a frame of a 2,000-frame instance as for a single frame, and no
download of a large object from S3. Each frame is decoded by pydicom from a data set holding
the header's Image Pixel Module and that frame alone (a native frame's bytes, or an encapsulated
frame as one fragment), which is what ``pixel_array`` of the whole file decodes for that frame.

Not from the table: Explicit VR Big Endian (``renders_from_table``) and 1-bit data
(``render_stored`` answers ``None``), whose frames pydicom does not decode alone, and objects
without a table (Deflated, no Pixel Data); those are rendered from the file
(``pacsflow.render.render_frames``).
"""

from __future__ import annotations

import io
from collections.abc import Mapping, Sequence

import numpy as np
from pydicom import dcmread
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.encaps import encapsulate
from pydicom.errors import InvalidDicomError
from pydicom.pixels.utils import pixel_array
from pydicom.uid import UID, ExplicitVRBigEndian

from pacsflow.dicom.frames import FrameTable
from pacsflow.errors import NotAcceptable
from pacsflow.render import image_header, render_image
from pacsflow.render.params import RenderParams

__all__ = ["header_end", "render_stored", "renders_from_table"]

_IMAGE_PIXEL_GROUP = 0x0028
_NUMBER_OF_FRAMES = 0x00280008
_DECODE_ERRORS = (ValueError, RuntimeError, NotImplementedError, AttributeError, KeyError)


def renders_from_table(table: FrameTable) -> bool:
    """Whether frames of this table may decode alone (not Big Endian; ``render_stored`` tells
    for 1-bit data)."""
    return table.transfer_syntax != ExplicitVRBigEndian


def header_end(table: FrameTable) -> int:
    """Bytes of the object before its first frame: the header to read."""
    return min(offset for frame in table.frames for offset, _ in frame)


def _header(prefix: bytes) -> Dataset:
    """The data set of the bytes before Pixel Data (parsing stops at its tag)."""
    try:
        ds = dcmread(io.BytesIO(prefix), force=True, stop_before_pixels=True)
    except (InvalidDicomError, ValueError, EOFError) as exc:
        raise NotAcceptable(f"the object cannot be read as DICOM: {exc}") from exc
    ds.PixelData = b""  # present: Pixel Data follows the header (its frames are in the table)
    return image_header(ds)


def _frame_array(ds: Dataset, table: FrameTable, data: bytes) -> np.ndarray:
    """One frame's pixels: pydicom decodes a data set of the Image Pixel Module and the frame."""
    one = Dataset()
    for element in ds.group_dataset(_IMAGE_PIXEL_GROUP):
        if element.tag != _NUMBER_OF_FRAMES:  # shared elements: the header's stay as they are
            one.add(element)
    one.NumberOfFrames = 1
    one.file_meta = FileMetaDataset()
    one.file_meta.TransferSyntaxUID = UID(table.transfer_syntax)
    one.set_original_encoding(*ds.original_encoding)
    one.PixelData = encapsulate([data]) if table.encapsulated else data
    one["PixelData"].VR = "OB" if table.encapsulated or ds.get("BitsAllocated") == 8 else "OW"
    try:
        array: np.ndarray = pixel_array(one, index=0)
    except _DECODE_ERRORS as exc:
        raise NotAcceptable(f"the frame cannot be decoded: {exc}") from exc
    return array


def render_stored(
    prefix: bytes,
    table: FrameTable,
    frames: Mapping[int, bytes],
    numbers: Sequence[int],
    params: RenderParams,
    media_type: str,
    *,
    default_max: int | None = None,
) -> bytes | None:
    """Render frames ``numbers`` (1-based) from the header bytes and those frames' bytes;
    ``None`` for 1-bit data (packed frames need the whole value: render the file)."""
    ds = _header(prefix)
    if ds.get("BitsAllocated") == 1:
        return None

    def decode(index: int) -> np.ndarray:
        return _frame_array(ds, table, frames[index + 1])

    return render_image(ds, numbers, params, media_type, decode, default_max=default_max)
