"""A rendered instance made from the bytes it shows, read through the frame table (PS3.18 8.3.5).

The frame table and the object's first MiB are read at once (the header and, for most single
images, the frame too), other frames by range, a few at a time; they are rendered in a worker
thread (``pacsflow.render.stored``). A large object is never read whole nor downloaded (S3).
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping, Sequence
from typing import Final

from pacsflow.dicom.frames import FrameTable
from pacsflow.errors import NotFound
from pacsflow.pipeline.sidecar import read_part
from pacsflow.ports import ObjectStore
from pacsflow.render.params import RenderParams
from pacsflow.render.stored import header_end, render_stored
from pacsflow.wado.frames import read_frame

__all__ = ["HEAD_BYTES", "frames_to_render", "render_from_table", "stored_image"]

_READS_AT_ONCE: Final = 8
HEAD_BYTES: Final = 1 << 20


async def stored_image(
    objects: ObjectStore, keys: Mapping[str, str], size: int
) -> tuple[FrameTable, bytes] | None:
    """The frame table and the first bytes of the object (up to 1 MiB: the header, and all of
    a small image), read at once; ``None`` when there is no table (no addressable Pixel Data)."""
    raw, head = await asyncio.gather(
        read_part(objects, keys, "frames"),
        objects.read_range(keys["dicom"], 0, min(size, HEAD_BYTES)),
    )
    return None if raw is None else (FrameTable.from_json(raw), head)


async def render_from_table(
    objects: ObjectStore,
    key: str,
    table: FrameTable,
    head: bytes,
    numbers: Sequence[int],
    params: RenderParams,
    media_type: str,
    default_max: int | None,
) -> bytes | None:
    """The rendering of frames ``numbers`` of the object ``key`` whose first bytes are
    ``head``; ``None`` when its frames do not decode alone (1-bit data: render the file)."""
    end = header_end(table)
    prefix = head[:end] if end <= len(head) else await objects.read_range(key, 0, end)
    frames: dict[int, bytes] = {}
    missing = []
    for number in dict.fromkeys(numbers):
        segments = table.frames[number - 1]
        if all(offset + length <= len(head) for offset, length in segments):
            frames[number] = b"".join(head[o : o + n] for o, n in segments)
        else:
            missing.append(number)
    for start in range(0, len(missing), _READS_AT_ONCE):
        batch = missing[start : start + _READS_AT_ONCE]
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
