"""WADO-RS Rendered and Thumbnail resources (PS3.18 10.4.1.1.4, 8.3.5, 8.3.6).

Instances, frames, series and studies rendered as consumer media types: image/jpeg (default),
image/png, image/gif (animated for several frames), image/jp2 for images; text/html and
text/plain for structured reports; application/pdf for encapsulated PDF. An image is rendered
from its header and the frames it shows, read by range through the frame table written at
ingest (``rendered_frames``), else from the stored Part 10 file; both use ``pacsflow.render``.
A thumbnail is the rendering of a representative image (the middle instance of the first series
with images; the middle frame of a multi-frame instance) fitted to a small viewport. Every
answer carries a weak entity tag; a request that names a current one is answered 304 without
rendering, and renderings are kept in a per-process ``RenderCache``. A series or study thumbnail
without parameters is read from the one the pipeline made ahead when it is current
(``thumbnail_store``).
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Final

import pydicom
from pydicom.uid import EncapsulatedPDFStorage

from pacsflow.errors import NotAcceptable, NotFound
from pacsflow.media.accept import parse_accept
from pacsflow.media.multipart_out import Multipart
from pacsflow.ports import Index, InstanceRef, ObjectStore
from pacsflow.render import frame_count, read_header, render_frames
from pacsflow.render.document import render_document
from pacsflow.render.params import RenderParams, parse_rendered_params
from pacsflow.render.stored import renders_from_table
from pacsflow.render.viewport import DEFAULT_THUMBNAIL_SIDE
from pacsflow.wado.frames import parse_frame_list
from pacsflow.wado.locate import keys_of, locate
from pacsflow.wado.render_cache import CachedRendering, RenderCache
from pacsflow.wado.rendered_frames import frames_to_render, render_from_table, stored_image
from pacsflow.wado.retrieval import Payload, ResourceKey, Retrieval
from pacsflow.wado.thumbnail_store import stored_thumbnail
from pacsflow.wado.validators import entity_tag, is_current

__all__ = [
    "PLAIN",
    "THUMBNAIL",
    "Rendered",
    "Rendering",
    "instance_kind",
    "negotiate_rendered",
    "render_file",
    "render_instance",
    "retrieve_rendered",
]

JPEG: Final = "image/jpeg"
IMAGE_TYPES: Final = (JPEG, "image/png", "image/gif", "image/jp2")
DOCUMENT_TYPES: Final = {"sr": ("text/html", "text/plain"), "pdf": ("application/pdf",)}
_QUERY_ACCEPT: Final = frozenset({"accept"})
_VERSION: Final = b"rendered-v1"  # bump when the same request renders another picture
_VARY: Final = {"Vary": "Accept"}


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
    ds = read_header(path)
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
    numbers = frames_to_render(frames, frame_count(ds), media_type, rendering.thumbnail)
    body = render_frames(
        path, numbers, params, media_type, default_max=rendering.default_max, header=ds
    )
    return Rendered(media_type, body)


async def render_instance(
    objects: ObjectStore,
    keys: Mapping[str, str],
    size: int,
    accept: str,
    params: RenderParams,
    frames: Sequence[int] | None,
    rendering: Rendering = PLAIN,
) -> Rendered:
    """Render a stored instance (``keys``: its objects, ``size``: its bytes): from its header
    and the frames shown, read through its frame table, or else from its file."""
    stored = await stored_image(objects, keys, size)
    if stored is not None and renders_from_table(stored[0]):
        table, head = stored
        media_type = negotiate_rendered(accept, "image")  # a frame table: Pixel Data
        numbers = frames_to_render(frames, len(table.frames), media_type, rendering.thumbnail)
        body = await render_from_table(
            objects, keys["dicom"], table, head, numbers, params, media_type, rendering.default_max
        )
        if body is not None:
            return Rendered(media_type, body)
    async with objects.local_file(keys["dicom"]) as path:
        return await asyncio.to_thread(render_file, path, accept, params, frames, rendering)


async def retrieve_rendered(
    index: Index,
    objects: ObjectStore,
    key: ResourceKey,
    frame_list: str | None,
    retrieval: Retrieval,
    rendering: Rendering = PLAIN,
    cache: RenderCache | None = None,
) -> Payload:
    """A rendered instance or frames (one body), a study or series (one part per instance),
    or a thumbnail of any of them (PS3.18 10.4.1.1.4, 8.3.5, 8.3.6).

    The entity tag derives from the instances' digests and the request, so ``If-None-Match``
    is answered (304) and ``cache`` consulted before any object is read (not with
    ``Cache-Control: no-cache``: the request asks for a rendering made anew).
    """
    params = parse_rendered_params(retrieval.parameters, ignore=_QUERY_ACCEPT)
    accept = _accept(retrieval.accept, retrieval.parameters)
    frames = parse_frame_list(frame_list) if frame_list is not None else None
    if frames is not None and rendering.thumbnail:
        frames = frames[:1]
    refs = await _located(index, retrieval.site, key, rendering)
    etag = _etag(key, refs, frames, accept, retrieval.parameters, rendering)
    cached = cache.get(etag) if cache is not None and not retrieval.no_cache else None
    if is_current(etag, retrieval.if_none_match):
        content_type = cached.content_type if cached is not None else ""
        return Payload(content_type, status=304, headers=_VARY, etag=etag)
    if cached is None and key.instance is None and not rendering.thumbnail:
        return await _rendered_parts(objects, retrieval.site, refs, accept, params, etag)
    if cached is None:
        ahead = rendering.thumbnail and not retrieval.no_cache and _default(frames, params, accept)
        cached = await _render(
            objects, retrieval.site, key, refs, frames, accept, params, rendering, ahead
        )
        if cache is not None:
            cache.put(etag, cached)  # a fresh one (no-cache) replaces the one held
    return Payload(cached.content_type, cached.body, headers=_VARY, etag=etag)


def _etag(
    key: ResourceKey,
    refs: Sequence[InstanceRef],
    frames: Sequence[int] | None,
    accept: str,
    parameters: Sequence[tuple[str, str]],
    rendering: Rendering,
) -> str:
    """Weak: the same request renders the same picture, not necessarily the same bytes
    (another release of the encoder)."""
    level = "instance" if key.instance else "series" if key.series else "study"
    asked = [
        level,
        "thumbnail" if rendering.thumbnail else "rendered",
        ",".join(map(str, frames)) if frames is not None else "",
        accept,
        "&".join(f"{name}={value}" for name, value in sorted(parameters)),
    ]
    return entity_tag(_VERSION, refs, *asked, weak=True)


async def _render(
    objects: ObjectStore,
    site: str,
    key: ResourceKey,
    refs: list[InstanceRef],
    frames: Sequence[int] | None,
    accept: str,
    params: RenderParams,
    rendering: Rendering,
    made_ahead: bool = False,
) -> CachedRendering:
    """Render the instance or thumbnail ``key`` names from the stored objects; a series or
    study thumbnail from the one made ahead when ``made_ahead`` and it is current
    (``thumbnail_store``)."""

    async def render(ref: InstanceRef, listed: Sequence[int] | None) -> Rendered:
        keys = keys_of(site, ref)
        return await render_instance(objects, keys, ref.size, accept, params, listed, rendering)

    if key.instance is not None:
        one = await render(refs[0], frames)
        return CachedRendering(one.content_type, one.body)
    if rendering.thumbnail:
        for ref in refs:  # the middle instance of each series
            if made_ahead and (jpeg := await stored_thumbnail(objects, site, ref)) is not None:
                return CachedRendering(JPEG, jpeg)
            try:
                one = await render(ref, None)
            except NotAnImage:
                continue  # not an image: try the next series (an Accept no image meets: 406)
            return CachedRendering(one.content_type, one.body)
        raise NotFound("no image to make a thumbnail of")
    raise ValueError("a study or series is rendered by _rendered_parts")


async def _rendered_parts(
    objects: ObjectStore,
    site: str,
    refs: list[InstanceRef],
    accept: str,
    params: RenderParams,
    etag: str,
) -> Payload:
    """A rendered study or series: one part per instance, each rendered when the one before
    was sent, so a study holds one rendered instance in memory (an error of the first answers
    the request, a later one cuts the response short); not kept in the render cache."""

    async def render(ref: InstanceRef) -> Rendered:
        keys = keys_of(site, ref)
        return await render_instance(objects, keys, ref.size, accept, params, None)

    first = await render(refs[0])
    body = Multipart(first.content_type.split(";")[0])

    async def stream() -> AsyncIterator[bytes]:
        yield body.part(first.content_type, first.body)
        for ref in refs[1:]:
            one = await render(ref)
            yield body.part(one.content_type, one.body)
        yield body.end()

    return Payload(body.content_type, stream(), headers=_VARY, etag=etag)


async def _located(
    index: Index, site: str, key: ResourceKey, rendering: Rendering
) -> list[InstanceRef]:
    """The instances a rendering shows: a series or study thumbnail shows the middle instance
    of a series (the first with an image), so only those are looked up and name its tag."""
    if not rendering.thumbnail or key.instance is not None:
        return await locate(index, site, key)
    middles = await index.list_middle_instances(site, key.study, key.series)
    if not middles:
        raise NotFound(f"no {key}")
    return middles


def _default(frames: Sequence[int] | None, params: RenderParams, accept: str) -> bool:
    """A request a thumbnail made ahead answers: no frames, no parameters, JPEG acceptable."""
    if frames is not None or params != RenderParams():
        return False
    try:
        return negotiate_rendered(accept, "image") == JPEG
    except NotAcceptable:
        return False
