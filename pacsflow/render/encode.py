"""Rendered frames to bytes of a Rendered Media Type (PS3.18 8.7.4, Table 8.7.4-1).

JPEG, PNG and JPEG 2000 hold one frame; GIF holds one or an animation of every frame. Pillow
encodes each format. Pillow's animated GIF writer merges a frame identical to the one before
into it (summing the durations), so an animation is assembled here from single-frame GIFs
(GIF89a blocks: each frame's global colour table becomes its local one) to keep every frame.
"""

from __future__ import annotations

import io
from collections.abc import Sequence
from typing import Final

from PIL import Image, features

from pacsflow.errors import NotAcceptable

__all__ = [
    "DEFAULT_FRAME_TIME_MS",
    "DEFAULT_JPEG_QUALITY",
    "RENDERED_MEDIA_TYPES",
    "SINGLE_FRAME_MEDIA_TYPES",
    "GifAnimation",
    "encode_images",
    "supported_media_types",
]

RENDERED_MEDIA_TYPES: Final = ("image/jpeg", "image/png", "image/gif", "image/jp2")
SINGLE_FRAME_MEDIA_TYPES: Final = frozenset({"image/jpeg", "image/png", "image/jp2"})
DEFAULT_JPEG_QUALITY: Final = 90
DEFAULT_FRAME_TIME_MS: Final = 100.0
_GIF_TRAILER: Final = b";"


def supported_media_types() -> tuple[str, ...]:
    """The Rendered Media Types this Pillow can write (image/jp2 needs OpenJPEG)."""
    return tuple(t for t in RENDERED_MEDIA_TYPES if t != "image/jp2" or _have_jpeg2000())


def encode_images(
    images: Sequence[Image.Image],
    media_type: str,
    quality: int | None,
    *,
    frame_time_ms: float | None = None,
    icc_profile: bytes | None = None,
) -> bytes:
    """Encode rendered frames (mode L or RGB) as ``media_type``.

    ``quality`` (1-100) applies to image/jpeg and to image/jp2, which is lossless without it.
    ``frame_time_ms`` is each GIF frame's duration (Frame Time (0018,1063)).
    """
    kind = media_type.split(";")[0].strip().lower()
    if kind not in RENDERED_MEDIA_TYPES:
        raise NotAcceptable(f"{media_type!r} is not a rendered media type of this server")
    if not images:
        raise ValueError("encode_images needs at least one image")
    if kind in SINGLE_FRAME_MEDIA_TYPES and len(images) > 1:
        raise NotAcceptable(f"{kind} holds a single frame; {len(images)} were asked for")
    extra = {"icc_profile": icc_profile} if icc_profile else {}
    out = io.BytesIO()
    if kind == "image/jpeg":
        q = DEFAULT_JPEG_QUALITY if quality is None else quality
        images[0].save(out, "JPEG", quality=q, **extra)
    elif kind == "image/png":
        images[0].save(out, "PNG", **extra)
    elif kind == "image/jp2":
        _save_jp2(images[0], out, quality)
    else:
        return _gif(images, DEFAULT_FRAME_TIME_MS if frame_time_ms is None else frame_time_ms)
    return out.getvalue()


def _have_jpeg2000() -> bool:
    return bool(features.check("jpg_2000"))


def _save_jp2(image: Image.Image, out: io.BytesIO, quality: int | None) -> None:
    if not _have_jpeg2000():
        raise NotAcceptable("image/jp2 needs Pillow built with OpenJPEG")
    if quality is None or quality == 100:
        image.save(out, "JPEG2000", no_jp2=False, irreversible=False)
    else:
        # Quality q asks for a 100/q : 1 compression ratio (q = 50: 2:1, q = 10: 10:1).
        image.save(
            out,
            "JPEG2000",
            no_jp2=False,
            irreversible=True,
            quality_mode="rates",
            quality_layers=[100 / quality],
        )


def _gif_frame(image: Image.Image) -> Image.Image:
    if image.mode == "L":
        return image
    return image.convert("RGB").quantize(256, method=Image.Quantize.MEDIANCUT)


def _gif(images: Sequence[Image.Image], frame_time_ms: float) -> bytes:
    animation = GifAnimation(frame_time_ms, len(images))
    for image in images:
        animation.add(image)
    return animation.finish()


class GifAnimation:
    """An image/gif written a frame at a time: only the encoded bytes are kept, so an
    animation of many frames never holds more than one rendered frame in memory."""

    def __init__(self, frame_time_ms: float | None, frames: int) -> None:
        frame_time = DEFAULT_FRAME_TIME_MS if frame_time_ms is None else frame_time_ms
        self._duration = max(0, round(frame_time))
        self._animated = frames > 1
        self._out = bytearray()
        self._count = 0

    def add(self, image: Image.Image) -> None:
        """Encode the next frame (mode L or RGB)."""
        one = io.BytesIO()
        frame = _gif_frame(image)
        if self._count == 0:
            options = {"loop": 0, "duration": self._duration} if self._animated else {}
            frame.save(one, "GIF", **options)
            self._out += one.getvalue().removesuffix(_GIF_TRAILER)
        else:
            frame.save(one, "GIF", duration=self._duration)
            self._out += _gif_frame_blocks(one.getvalue())
        self._count += 1

    def finish(self) -> bytes:
        """The whole file."""
        self._out += _GIF_TRAILER
        return bytes(self._out)


def _gif_frame_blocks(data: bytes) -> bytes:
    """A single-frame GIF's Graphic Control Extension and image, its palette made local."""
    packed = data[10]
    table = b""
    pos = 13
    if packed & 0x80:
        table_size = 3 << ((packed & 0x07) + 1)
        table = data[pos : pos + table_size]
        pos += table_size
    out = bytearray()
    while data[pos] != _GIF_TRAILER[0]:
        if data[pos] == 0x21:  # extension: label, then data sub-blocks
            end = _skip_sub_blocks(data, pos + 2)
            if data[pos + 1] == 0xF9:  # keep the Graphic Control Extension (duration)
                out += data[pos:end]
            pos = end
        elif data[pos] == 0x2C:  # image descriptor: 9 bytes, packed fields, [table], LZW data
            local = data[pos + 9]
            out += data[pos : pos + 9]
            if local & 0x80 or not table:
                out.append(local)
            else:
                out.append((local & 0x40) | 0x80 | (packed & 0x07))
                out += table
            pos += 10
            if local & 0x80:
                local_size = 3 << ((local & 0x07) + 1)
                out += data[pos : pos + local_size]
                pos += local_size
            end = _skip_sub_blocks(data, pos + 1)  # one byte: LZW minimum code size
            out += data[pos:end]
            pos = end
        else:
            raise ValueError(f"unexpected GIF block 0x{data[pos]:02x} at {pos}")
    return bytes(out)


def _skip_sub_blocks(data: bytes, pos: int) -> int:
    while (size := data[pos]) != 0:
        pos += size + 1
    return pos + 1
