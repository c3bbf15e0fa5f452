"""Rendering from the header and the frames shown (``pacsflow.render.stored``) against the file.

Golden reference: ``render_frames`` of the whole Part 10 file, which decodes with pydicom's
``pixel_array``. For every image of the corpus whose frames the ingest's frame table addresses
(``validate_instance``, the table ingest stores), the first, middle and last frames rendered
from the header bytes and that frame's bytes alone are the same pixels as from the file.
"""

from __future__ import annotations

import csv
import io
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from pacsflow.dicom.frames import FrameTable
from pacsflow.dicom.header import PartRejected
from pacsflow.dicom.validate import validate_instance
from pacsflow.errors import NotAcceptable
from pacsflow.render import render_frames
from pacsflow.render.params import RenderParams, Viewport, Window
from pacsflow.render.stored import header_end, render_stored, renders_from_table
from tests.support.corpus import CORPUS

INSTANCE_PATH = "studies/{study}/series/{series}/instances/{instance}"


def _images() -> list[str]:
    with (CORPUS / "MANIFEST.csv").open() as fp:
        rows = list(csv.DictReader(fp))
    return sorted(r["path"] for r in rows if r["Rows"] and not r["path"].startswith("malformed/"))


def _table(path: Path) -> FrameTable | None:
    try:
        validated = validate_instance(path, path.stat().st_size, INSTANCE_PATH, decode_pixels=False)
    except PartRejected:  # refused at ingest: never stored, never rendered
        return None
    return validated.frame_table


def _pixels(data: bytes) -> np.ndarray:
    return np.asarray(Image.open(io.BytesIO(data)))


def _stored(
    data: bytes, table: FrameTable, number: int, params: RenderParams, media: str
) -> bytes | None:
    frame = b"".join(data[offset : offset + length] for offset, length in table.frames[number - 1])
    prefix = data[: header_end(table)]
    return render_stored(prefix, table, {number: frame}, [number], params, media)


def test_every_addressable_image_renders_the_same_from_its_frames() -> None:
    compared = 0
    for rel in _images():
        path = CORPUS / rel
        table = _table(path)
        if table is None or not renders_from_table(table):
            continue
        data = path.read_bytes()
        count = len(table.frames)
        for number in sorted({1, (count + 1) // 2, count}):
            try:
                want = render_frames(path, [number], RenderParams(), "image/png")
            except NotAcceptable:
                continue  # the file route cannot decode it (the table route may: never worse)
            got = _stored(data, table, number, RenderParams(), "image/png")
            if got is None:  # 1-bit data: rendered from the file
                continue
            assert np.array_equal(_pixels(got), _pixels(want)), f"{rel} frame {number}"
            compared += 1
    assert compared > 80


@pytest.mark.parametrize(
    "rel", ["modality/CT_small.dcm", "multiframe/US_cine_30frame_jpeg_ybr_full_422.dcm"]
)
def test_parameters_apply_alike(rel: str) -> None:
    path = CORPUS / rel
    table = _table(path)
    assert table is not None
    params = RenderParams(window=Window(40, 400), viewport=Viewport(64, 64), quality=70)
    for media in ("image/jpeg", "image/png"):
        want = render_frames(path, [1], params, media, default_max=32)
        frame = b"".join(path.read_bytes()[o : o + n] for o, n in table.frames[0])
        got = render_stored(
            path.read_bytes()[: header_end(table)],
            table,
            {1: frame},
            [1],
            params,
            media,
            default_max=32,
        )
        assert got == want


def test_one_bit_data_is_left_to_the_file() -> None:
    path = CORPUS / "objects/SEG_liver_3frame.dcm"
    table = _table(path)
    assert table is not None
    assert _stored(path.read_bytes(), table, 1, RenderParams(), "image/png") is None


def test_not_dicom_is_not_acceptable() -> None:
    table = FrameTable("1.2.840.10008.1.2.1", False, (((4, 4),),))
    with pytest.raises(NotAcceptable):
        render_stored(b"\x00\x01\x02\x03", table, {1: b"xxxx"}, [1], RenderParams(), "image/png")
