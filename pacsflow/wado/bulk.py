"""Study, Series and Instance Bulkdata and Pixel Data resources (PS3.18 10.4.1.1.5-6).

``{study}/bulkdata``, ``{series}/bulkdata``, ``{instance}/bulkdata``, and a Retrieve Study,
Series or Instance that accepts ``multipart/related; type="application/octet-stream"``: every
bulk value of every instance (PS3.18 10.4.3.3.5), one part each, with the BulkDataURI of the
metadata as its ``Content-Location``. ``{study}/pixeldata`` and ``{series}/pixeldata``: the
Pixel Data of every instance that has one (10.4.3.3.6), each frame a part whose
``Content-Location`` is the instance's Pixel Data URI. Pixel Data goes out as the Accept header
chooses (``pacsflow.wado.frames``: native by default, as stored with ``transfer-syntax=*``);
the other bulk values are bytes as stored. Parts stream instance by instance; 406 comes before
any byte when an instance's frames cannot be sent in an accepted form.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Final

import orjson

from pacsflow.errors import NotAcceptable, NotFound
from pacsflow.media.accept import parse_accept
from pacsflow.media.multipart_out import Multipart, coalesced, primed
from pacsflow.pipeline.sidecar import read_parts
from pacsflow.ports import Index, InstanceRef, ObjectStore
from pacsflow.wado.frames import (
    OCTET_STREAM,
    NegotiatedFrames,
    negotiated_frames,
    pixel_data_url,
)
from pacsflow.wado.locate import bulkdata_url, keys_of, locate
from pacsflow.wado.retrieval import Payload, ResourceKey, Retrieval

__all__ = ["accepts_bulkdata", "retrieve_pixel_data", "retrieve_resource_bulkdata"]

_ANY: Final = frozenset({"*/*", "multipart/*"})


def accepts_bulkdata(accept: str) -> bool:
    """Whether ``accept`` names ``multipart/related; type="application/octet-stream"`` first."""
    for media in parse_accept(accept):
        if media.quality <= 0:
            continue
        return media.media_type == "multipart/related" and (
            (media.parameter("type") or "").lower() == OCTET_STREAM
        )
    return False


def _check_accept(accept: str) -> None:
    for media in parse_accept(accept):
        if media.quality <= 0:
            continue
        part = (media.parameter("type") or OCTET_STREAM).lower()
        if media.media_type in _ANY or (
            media.media_type == "multipart/related" and part in (OCTET_STREAM, "*/*")
        ):
            return
    raise NotAcceptable(f'bulk data is sent as multipart/related; type="{OCTET_STREAM}"')


async def _frames_of(
    index: Index, objects: ObjectStore, site: str, refs: list[InstanceRef], accept: str
) -> dict[str, NegotiatedFrames]:
    """The negotiated frames of each instance that has Pixel Data (406 before any byte)."""
    found: dict[str, NegotiatedFrames] = {}
    for ref in refs:
        try:
            found[ref.sop_uid] = await negotiated_frames(index, objects, site, ref, accept)
        except NotAcceptable:
            raise
        except NotFound:
            continue  # no Pixel Data: nothing of this instance in a pixel data payload
    return found


async def _pixel_parts(
    body: Multipart, frames: NegotiatedFrames, location: str
) -> AsyncIterator[bytes]:
    async for data in frames.read(range(1, frames.count + 1)):
        yield body.part(frames.part_type, data, Content_Location=location)


async def retrieve_pixel_data(
    index: Index, objects: ObjectStore, key: ResourceKey, retrieval: Retrieval
) -> Payload:
    """Study or Series Pixel Data (PS3.18 10.4.1.1.6): the frames of every instance."""
    refs = await locate(index, retrieval.site, key)
    frames = await _frames_of(index, objects, retrieval.site, refs, retrieval.accept)
    if not frames:
        raise NotFound(f"no instance of {key} has Pixel Data")
    first = next(frames[r.sop_uid] for r in refs if r.sop_uid in frames)
    body = Multipart(first.media_type)  # the root part's type (RFC 2387); each part has its own

    async def stream() -> AsyncIterator[bytes]:
        for ref in refs:
            if ref.sop_uid in frames:
                location = pixel_data_url(retrieval, ref)
                async for part in _pixel_parts(body, frames[ref.sop_uid], location):
                    yield part
        yield body.end()

    return Payload(body.content_type, await primed(coalesced(stream())))


async def retrieve_resource_bulkdata(
    index: Index, objects: ObjectStore, key: ResourceKey, retrieval: Retrieval
) -> Payload:
    """Study, Series or Instance Bulkdata (PS3.18 10.4.3.3.5): every bulk value, each a part."""
    _check_accept(retrieval.accept)
    site = retrieval.site
    refs = await locate(index, site, key)
    frames = await _frames_of(index, objects, site, refs, retrieval.accept)
    stored = await read_parts(objects, [keys_of(site, ref) for ref in refs], "bulk")
    ranges: list[dict[str, list[int]]] = [orjson.loads(raw) if raw else {} for raw in stored]
    if not frames and not any(ranges):
        raise NotFound(f"{key} has no bulk data")
    body = Multipart(OCTET_STREAM)

    async def stream() -> AsyncIterator[bytes]:
        for ref, values in zip(refs, ranges, strict=True):
            dicom = keys_of(site, ref)["dicom"]
            study, series, sop = ref.study_uid, ref.series_uid, ref.sop_uid
            for path, (offset, length) in values.items():
                uri = bulkdata_url(retrieval.root_url, study, series, sop, path)
                yield body.head(OCTET_STREAM, length, Content_Location=uri)
                async for chunk in objects.stream(dicom, offset, offset + length):
                    yield chunk
                yield b"\r\n"
            if sop in frames:
                async for part in _pixel_parts(body, frames[sop], pixel_data_url(retrieval, ref)):
                    yield part
        yield body.end()

    return Payload(body.content_type, await primed(coalesced(stream())))
