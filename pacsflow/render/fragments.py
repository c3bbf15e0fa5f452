"""Encapsulated Pixel Data as the ingest scan reads it, for pydicom to decode (PS3.5 A.4).

pydicom finds the frames of encapsulated Pixel Data by walking its items. An odd fragment
that a writer padded *after* its item (pydicom's own writer does; PS3.5 A.4 pads inside the
item) moves the items that follow by a byte, and pydicom then fails on them. The ingest scan
tolerates that padding (``pacsflow.dicom.scan``) and knows each frame's bytes: this module
gives pydicom a data set whose Pixel Data is those frames, encapsulated again.
"""

from __future__ import annotations

from pathlib import Path

from pydicom import dcmread
from pydicom.dataset import Dataset
from pydicom.encaps import encapsulate

from pacsflow.dicom.frames import ImageGeometry, build_frame_table
from pacsflow.dicom.scan import StructureError, scan

__all__ = ["with_scanned_frames"]


def with_scanned_frames(path: Path) -> Dataset | None:
    """The data set of ``path`` with its encapsulated frames as the scan reads them, or None."""
    with path.open("rb") as fp:
        size = fp.seek(0, 2)
        fp.seek(0)
        try:
            result = scan(fp, size)
        except StructureError:
            return None
        if result.pixel is None or not result.pixel.encapsulated or not result.addressable:
            return None
        ds = dcmread(path, force=True)
        table = build_frame_table(result.pixel, ImageGeometry.of(ds), result.transfer_syntax, fp)
        frames = []
        for segments in table.frames:
            parts = []
            for offset, length in segments:
                fp.seek(offset)
                parts.append(fp.read(length))
            frames.append(b"".join(parts))
    ds.PixelData = encapsulate(frames)
    return ds
