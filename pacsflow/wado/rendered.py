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
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

import pydicom
from pydicom.uid import EncapsulatedPDFStorage

from pacsflow.errors import NotAcceptable, NotFound
from pacsflow.media.accept import parse_accept
from pacsflow.media.multipart_out import Multipart
from pacsflow.ports import Index, InstanceRef, ObjectStore
from pacsflow.render import frame_count, render_frames
from pacsflow.render.document import render_document
from pacsflow.render.params import RenderParams, parse_rendered_params
from pacsflow.wado.frames import parse_frame_list
from pacsflow.wado.locate import keys_of, locate

__all__ = [
    "RenderedResult",
    "instance_kind",
    "negotiate_rendered",
    "render_file",
    "retrieve_rendered",
    "retrieve_thumbnail",
]

IMAGE_TYPES: Final = ("image/jpeg", "image/png", "image/gif", "image/jp2")
DOCUMENT_TYPES: Final = {"sr": ("text/html", "text/plain"), "pdf": ("application/pdf",)}
THUMBNAIL_SIZE: Final = 128
PDF_CLASS: Final = EncapsulatedPDFStorage
_QUERY_ACCEPT: Final = frozenset({"accept"})
_THUMBNAIL: Final[dict[str, Any]] = {"middle_frame": True, "default_max": THUMBNAIL_SIZE}


@dataclass(frozen=True, slots=True)
class RenderedResult:
    """A rendered response: one body, its media type."""

    content_type: str
    body: bytes


def instance_kind(ds: pydicom.Dataset) -> str:
    """``image``, ``sr`` or ``pdf``: what an instance renders as."""
    pixels = ("PixelData", "FloatPixelData", "DoubleFloatPixelData")
    if any(k in ds for k in pixels) or ("Rows" in ds and "BitsAllocated" in ds):
        return "image"  # a header read stops before Pixel Data: Rows and BitsAllocated tell
    if str(ds.get("SOPClassUID", "")) == PDF_CLASS or "EncapsulatedDocument" in ds:
        return "pdf"
    if "ContentSequence" in ds:
        return "sr"
    return "other"


def _accept(accept: str, parameters: Sequence[tuple[str, str]]) -> str:
    """The ``accept`` query parameter, when given, overrides the header (PS3.18 8.3.3.1)."""
    values = [value for name, value in parameters if name == "accept"]
    return ",".join(values) if values else accept


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


async def _render_one(
    objects: ObjectStore,
    site: str,
    ref: InstanceRef,
    accept: str,
    params: RenderParams,
    frames: Sequence[int] | None,
    *,
    middle_frame: bool = False,
    default_max: int | None = None,
) -> RenderedResult:
    """Render one stored instance in a worker thread (thumbnails: images only)."""
    async with objects.local_file(keys_of(site, ref)["dicom"]) as path:
        return await asyncio.to_thread(
            render_file, path, accept, params, frames, middle_frame, default_max
        )


def render_file(
    path: Path,
    accept: str,
    params: RenderParams,
    frames: Sequence[int] | None,
    middle_frame: bool = False,
    default_max: int | None = None,
) -> RenderedResult:
    """Render a stored Part 10 file as the best media type ``accept`` allows for its kind."""
    ds = pydicom.dcmread(path, stop_before_pixels=True, force=True)
    kind = instance_kind(ds)
    if middle_frame and kind != "image":  # a thumbnail is a picture
        raise NotAcceptable("only images have thumbnails")
    media_type = negotiate_rendered(accept, kind)
    if kind != "image":
        if frames is not None:
            raise NotFound("this instance has no frames")
        full = pydicom.dcmread(path)
        body, content_type = render_document(full, media_type, params.charset)
        return RenderedResult(content_type, body)
    count = frame_count(ds)
    if frames is None:
        if middle_frame:
            frames = [(count + 1) // 2]
        else:
            frames = list(range(1, count + 1)) if media_type == "image/gif" else [1]
    if missing := [n for n in frames if n > count]:
        raise NotFound(f"the instance has {count} frame(s); no frame {missing[0]}")
    body = render_frames(path, frames, params, media_type, default_max=default_max)
    return RenderedResult(media_type, body)


async def retrieve_rendered(
    index: Index,
    objects: ObjectStore,
    site: str,
    accept: str,
    parameters: Sequence[tuple[str, str]],
    study: str,
    series: str | None = None,
    sop: str | None = None,
    frame_list: str | None = None,
) -> RenderedResult:
    """A rendered instance or frames (one body), or a study/series (one part per instance)."""
    params = parse_rendered_params(parameters, ignore=_QUERY_ACCEPT)
    accept = _accept(accept, parameters)
    frames = parse_frame_list(frame_list) if frame_list is not None else None
    refs = await locate(index, site, study, series, sop)
    if sop is not None:
        return await _render_one(objects, site, refs[0], accept, params, frames)
    parts = [await _render_one(objects, site, ref, accept, params, None) for ref in refs]
    body = Multipart(parts[0].content_type.split(";")[0])
    payload = b"".join(body.part(p.content_type, p.body) for p in parts) + body.end()
    return RenderedResult(body.content_type, payload)


async def retrieve_thumbnail(
    index: Index,
    objects: ObjectStore,
    site: str,
    accept: str,
    parameters: Sequence[tuple[str, str]],
    study: str,
    series: str | None = None,
    sop: str | None = None,
    frame_list: str | None = None,
) -> RenderedResult:
    """A small rendering of a representative image (PS3.18 8.3.6)."""
    params = parse_rendered_params(parameters, ignore=_QUERY_ACCEPT)
    accept = _accept(accept, parameters)
    image_accept = accept if accept.strip() else "image/jpeg"
    frames = parse_frame_list(frame_list)[:1] if frame_list is not None else None
    refs = await locate(index, site, study, series, sop)
    if sop is not None:
        return await _render_one(objects, site, refs[0], image_accept, params, frames, **_THUMBNAIL)
    for ref in _representatives(refs):
        try:
            return await _render_one(objects, site, ref, image_accept, params, None, **_THUMBNAIL)
        except NotAcceptable:
            continue  # not an image: try the next series
    raise NotFound("no image to make a thumbnail of")


def _representatives(refs: list[InstanceRef]) -> list[InstanceRef]:
    """The middle instance of each series, series in their order (the first image series wins)."""
    by_series: dict[str, list[InstanceRef]] = {}
    for ref in refs:
        by_series.setdefault(ref.series_uid, []).append(ref)
    return [members[len(members) // 2] for members in by_series.values()]
