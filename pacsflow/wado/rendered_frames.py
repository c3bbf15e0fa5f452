"""A rendered instance made from the bytes it shows, read through the frame table (PS3.18 8.3.5).

The header (every byte before the first frame) and the frames to show are read by range from
the object store, a few at a time, and rendered in a worker thread (``pacsflow.render.stored``);
the object itself is never read whole nor downloaded (S3).
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from typing import Final

from pacsflow.dicom.frames import FrameTable
from pacsflow.errors import NotFound
from pacsflow.ports import ObjectStore
from pacsflow.render.params import RenderParams
from pacsflow.render.stored import header_end, render_stored
from pacsflow.wado.frames import read_frame

__all__ = ["frame_table", "render_from_table"]

_READS_AT_ONCE: Final = 8


async def frame_table(objects: ObjectStore, key: str) -> FrameTable | None:
    """The frame table stored under ``key``, or ``None`` (no Pixel Data, or not addressable)."""
    try:
        return FrameTable.from_json(await objects.get(key))
    except NotFound:
        return None


async def render_from_table(
    objects: ObjectStore,
    key: str,
    table: FrameTable,
    numbers: Sequence[int],
    params: RenderParams,
    media_type: str,
    default_max: int | None,
) -> bytes | None:
    """The rendering of frames ``numbers`` of the object ``key``; ``None`` when its frames do
    not decode alone (1-bit data: render the file)."""
    wanted = list(dict.fromkeys(numbers))
    prefix = await objects.read_range(key, 0, header_end(table))
    frames: dict[int, bytes] = {}
    for start in range(0, len(wanted), _READS_AT_ONCE):
        batch = wanted[start : start + _READS_AT_ONCE]
        reads = [read_frame(objects, key, table.frames[n - 1]) for n in batch]
        frames.update(zip(batch, await asyncio.gather(*reads), strict=True))
    return await asyncio.to_thread(
        render_stored, prefix, table, frames, numbers, params, media_type, default_max=default_max
    )


def frames_to_render(
    listed: Sequence[int] | None, count: int, media_type: str, thumbnail: bool
) -> list[int]:
    """The frames a rendering shows: those listed, else the middle one for a thumbnail, every
    frame for image/gif, the first otherwise (PS3.18 8.3.5, 8.3.6); ``NotFound`` past the end."""
    if listed is None:
        if thumbnail:
            listed = [(count + 1) // 2]
        else:
            listed = list(range(1, count + 1)) if media_type == "image/gif" else [1]
    if missing := [n for n in listed if n > count]:
        raise NotFound(f"the instance has {count} frame(s); no frame {missing[0]}")
    return list(listed)
