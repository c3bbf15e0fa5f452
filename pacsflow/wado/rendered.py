"""WADO-RS Rendered and Thumbnail resources (PS3.18 10.4.1.1.4, 8.3.5, 8.3.6).

Instances, frames, series and studies rendered as consumer media types: image/jpeg (default),
image/png, image/gif (animated for several frames), image/jp2 for images; text/html and
text/plain for structured reports; application/pdf for encapsulated PDF. Rendering reads the
stored Part 10 object (only the frames it needs) and uses ``pacsflow.render``. A thumbnail is
the rendering of a representative image (the middle instance of the first series with images;
the middle frame of a multi-frame instance) fitted to a small viewport.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Final

import pydicom
from pydicom.uid import EncapsulatedPDFStorage

from pacsflow.errors import NotAcceptable, NotFound
from pacsflow.media.accept import parse_accept
from pacsflow.media.multipart_out import Multipart
from pacsflow.ports import Index, InstanceRef, ObjectStore
from pacsflow.render import frame_count, render_frames
from pacsflow.render.document import render_document
from pacsflow.render.params import RenderParams, parse_rendered_params
from pacsflow.render.viewport import DEFAULT_THUMBNAIL_SIDE
from pacsflow.wado.frames import parse_frame_list
from pacsflow.wado.locate import keys_of, locate
from pacsflow.wado.retrieval import Payload, ResourceKey, Retrieval

__all__ = [
    "PLAIN",
    "THUMBNAIL",
    "Rendered",
    "Rendering",
    "instance_kind",
    "negotiate_rendered",
    "render_file",
    "retrieve_rendered",
]

IMAGE_TYPES: Final = ("image/jpeg", "image/png", "image/gif", "image/jp2")
DOCUMENT_TYPES: Final = {"sr": ("text/html", "text/plain"), "pdf": ("application/pdf",)}
_QUERY_ACCEPT: Final = frozenset({"accept"})


@dataclass(frozen=True, slots=True)
class Rendering:
    """How a rendered resource is made: the whole object, or a thumbnail (PS3.18 8.3.6).

    A thumbnail is a picture of one frame (the middle one unless the path names frames),
    fitted to ``default_max`` pixels a side unless the request gives a viewport; for a study or
    series it shows the middle instance of the first series that has an image.
    """

    thumbnail: bool = False
    default_max: int | None = None


@dataclass(frozen=True, slots=True)
class Rendered:
    """One rendered object: its media type and bytes."""

    content_type: str
    body: bytes


PLAIN: Final = Rendering()
THUMBNAIL: Final = Rendering(thumbnail=True, default_max=DEFAULT_THUMBNAIL_SIDE)


def instance_kind(ds: pydicom.Dataset) -> str:
    """``image``, ``sr`` or ``pdf``: what an instance renders as."""
    pixels = ("PixelData", "FloatPixelData", "DoubleFloatPixelData")
    if any(k in ds for k in pixels) or ("Rows" in ds and "BitsAllocated" in ds):
        return "image"  # a header read stops before Pixel Data: Rows and BitsAllocated tell
    if str(ds.get("SOPClassUID", "")) == EncapsulatedPDFStorage or "EncapsulatedDocument" in ds:
        return "pdf"
    if "ContentSequence" in ds:
        return "sr"
    return "other"


def _accept(accept: str, parameters: Sequence[tuple[str, str]]) -> str:
    """The ``accept`` query parameter, when given, overrides the header (PS3.18 8.3.3.1)."""
    values = [value for name, value in parameters if name == "accept"]
    return ",".join(values) if values else accept


class NotAnImage(NotAcceptable):
    """A thumbnail asked of an instance that is not an image (PS3.18 8.3.6)."""


def negotiate_rendered(accept: str, kind: str) -> str:
    """The media type to render an instance of ``kind`` as (PS3.18 8.7.4: image/jpeg default)."""
    offered = IMAGE_TYPES if kind == "image" else DOCUMENT_TYPES.get(kind, ())
    if not offered:
        raise NotAcceptable("this instance has no rendered representation")
    for media in parse_accept(accept):
        if media.quality <= 0:
            continue
        if media.media_type in ("*/*", f"{offered[0].split('/')[0]}/*"):
            return offered[0]
        if media.media_type in offered:
            return media.media_type
    raise NotAcceptable(f"this instance renders as {', '.join(offered)}")


def render_file(
    path: Path,
    accept: str,
    params: RenderParams,
    frames: Sequence[int] | None,
    rendering: Rendering = PLAIN,
) -> Rendered:
    """Render a stored Part 10 file as the best media type ``accept`` allows for its kind."""
    ds = pydicom.dcmread(path, stop_before_pixels=True, force=True)
    kind = instance_kind(ds)
    if rendering.thumbnail and kind != "image":  # a thumbnail is a picture
        raise NotAnImage("only images have thumbnails")
    media_type = negotiate_rendered(accept, kind)
    if kind != "image":
        if frames is not None:
            raise NotFound("this instance has no frames")
        full = pydicom.dcmread(path)
        body, content_type = render_document(full, media_type, params.charset)
        return Rendered(content_type, body)
    count = frame_count(ds)
    if frames is None:
        if rendering.thumbnail:
            frames = [(count + 1) // 2]
        else:
            frames = list(range(1, count + 1)) if media_type == "image/gif" else [1]
    if missing := [n for n in frames if n > count]:
        raise NotFound(f"the instance has {count} frame(s); no frame {missing[0]}")
    body = render_frames(path, frames, params, media_type, default_max=rendering.default_max)
    return Rendered(media_type, body)


async def retrieve_rendered(
    index: Index,
    objects: ObjectStore,
    key: ResourceKey,
    frame_list: str | None,
    retrieval: Retrieval,
    rendering: Rendering = PLAIN,
) -> Payload:
    """A rendered instance or frames (one body), a study or series (one part per instance),
    or a thumbnail of any of them (PS3.18 10.4.1.1.4, 8.3.5, 8.3.6)."""
    params = parse_rendered_params(retrieval.parameters, ignore=_QUERY_ACCEPT)
    accept = _accept(retrieval.accept, retrieval.parameters)
    frames = parse_frame_list(frame_list) if frame_list is not None else None
    if frames is not None and rendering.thumbnail:
        frames = frames[:1]
    refs = await locate(index, retrieval.site, key)

    async def render(ref: InstanceRef, listed: Sequence[int] | None) -> Rendered:
        async with objects.local_file(keys_of(retrieval.site, ref)["dicom"]) as path:
            return await asyncio.to_thread(render_file, path, accept, params, listed, rendering)

    if key.instance is not None:
        one = await render(refs[0], frames)
        return Payload(one.content_type, one.body)
    if rendering.thumbnail:
        for ref in _representatives(refs):
            try:
                one = await render(ref, None)
            except NotAnImage:
                continue  # not an image: try the next series (an Accept no image meets: 406)
            return Payload(one.content_type, one.body)
        raise NotFound("no image to make a thumbnail of")
    first = await render(refs[0], None)  # an error of the first answers the request
    body = Multipart(first.content_type.split(";")[0])

    async def stream() -> AsyncIterator[bytes]:
        """One part per instance, each rendered when the one before was sent: a study holds
        one rendered instance in memory (an error later cuts the response short)."""
        yield body.part(first.content_type, first.body)
        for ref in refs[1:]:
            one = await render(ref, None)
            yield body.part(one.content_type, one.body)
        yield body.end()

    return Payload(body.content_type, stream())


def _representatives(refs: list[InstanceRef]) -> list[InstanceRef]:
    """The middle instance of each series, series in their order (the first image series wins)."""
    by_series: dict[str, list[InstanceRef]] = {}
    for ref in refs:
        by_series.setdefault(ref.series_uid, []).append(ref)
    return [members[len(members) // 2] for members in by_series.values()]
