"""WADO-RS Retrieve Frames (PS3.18 10.4.1.1.3) and the Pixel Data resource, by byte range.

Each frame is read through the frame offset table written at ingest (``pacsflow.dicom.frames``)
with ranged reads of the stored object, so a frame of a 2,000-frame object costs what a frame
of a 2-frame one does. Frames go out in their stored compression (``image/jpeg``,
``image/jls``, ``image/jp2``, ``image/jphc``, ...), or decoded to native
``application/octet-stream`` (the default), or re-encoded when asked (PS3.18 8.7.3.3).
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final, Literal

import pydicom
from pydicom.uid import DeflatedExplicitVRLittleEndian, ExplicitVRBigEndian, ExplicitVRLittleEndian

from pacsflow.dicom.frames import FrameTable, number_of_frames, unpadded
from pacsflow.dicom.transcode import (
    MEDIA_TYPES,
    can_encode_frame,
    decode_frame,
    encode_frame,
    frame_geometry,
)
from pacsflow.dicom.uids import (
    NATIVE_TRANSFER_SYNTAXES,
)
from pacsflow.errors import BadRequest, NotAcceptable, NotFound
from pacsflow.media.accept import parse_accept
from pacsflow.media.multipart_out import Multipart, buffered
from pacsflow.pipeline.keys import instance_keys
from pacsflow.pipeline.sidecar import read_part
from pacsflow.ports import Index, InstanceDocument, InstanceRef, ObjectStore
from pacsflow.wado.locate import bulkdata_url, find_instance, find_ref
from pacsflow.wado.retrieval import Payload, ResourceKey, Retrieval

__all__ = [
    "PIXEL_DATA_PATH",
    "NegotiatedFrames",
    "negotiate_frames",
    "negotiated_frames",
    "parse_frame_list",
    "pixel_data_url",
    "retrieve_frames",
]

OCTET_STREAM: Final = "application/octet-stream"
PIXEL_DATA_PATH: Final = "7FE00010"
_MAX_FRAMES_LISTED: Final = 100_000


@dataclass(frozen=True, slots=True)
class _Plan:
    """How frames go out: part media type, transfer syntax, and what to do to stored bytes."""

    media_type: str
    transfer_syntax: str
    action: Literal["stored", "decode", "encode"]  # what is done to the stored bytes


def parse_frame_list(text: str) -> list[int]:
    """The frame numbers of ``/frames/{list}`` (1-based, any order, repeats allowed)."""
    numbers = []
    for part in text.split(","):
        part = part.strip()
        if not part.isdigit() or int(part) < 1:
            raise BadRequest(f"frame list {text!r}: {part!r} is not a frame number (1, 2, ...)")
        numbers.append(int(part))
    if len(numbers) > _MAX_FRAMES_LISTED:
        raise BadRequest(f"frame list: more than {_MAX_FRAMES_LISTED} frames")
    return numbers


def negotiate_frames(accept: str, stored: str) -> _Plan:
    """Choose the frames' form for ``accept`` given the stored transfer syntax (PS3.18 8.7.3)."""
    stored_media = MEDIA_TYPES.get(stored, OCTET_STREAM)
    native = _Plan(
        OCTET_STREAM,
        ExplicitVRLittleEndian,
        "stored"
        if stored in NATIVE_TRANSFER_SYNTAXES and stored != ExplicitVRBigEndian
        else "decode",
    )
    as_stored = _Plan(stored_media, stored, "stored")
    for media in parse_accept(accept):
        if media.quality <= 0:
            continue
        syntax = media.parameter("transfer-syntax")
        if media.media_type in ("*/*", "multipart/*"):
            return as_stored if syntax == "*" else native
        if media.media_type == "multipart/related":
            part_type = (media.parameter("type") or OCTET_STREAM).lower()
        elif media.media_type.startswith(("image/", "video/")) or media.media_type == OCTET_STREAM:
            part_type = media.media_type
        else:
            continue
        if (
            syntax == "*"
            or part_type == "*/*"
            or (part_type == stored_media and syntax in (None, stored))
        ):
            return as_stored
        if part_type == OCTET_STREAM and syntax in (None, ExplicitVRLittleEndian):
            return native
        encodable = syntax is not None and can_encode_frame(stored, syntax)
        if syntax is not None and encodable and MEDIA_TYPES.get(syntax) == part_type:
            return _Plan(part_type, syntax, "encode")
    raise NotAcceptable(
        f"frames are stored as {stored_media} ({stored}); they can be sent as stored"
        f" (transfer-syntax=*), as {OCTET_STREAM} or re-encoded where a codec allows"
    )


async def load_frame_table(
    objects: ObjectStore, site: str, doc: InstanceDocument | InstanceRef
) -> FrameTable:
    """The instance's frame offset table; ``NotFound`` if it has no frames."""
    keys = instance_keys(site, doc.study_uid, doc.series_uid, doc.sop_uid)
    stored = await read_part(objects, keys, "frames")
    if stored is None:
        raise NotFound(f"instance {doc.sop_uid} has no frames that can be served")
    return FrameTable.from_json(stored)


async def read_frame(objects: ObjectStore, key: str, segments: Sequence[tuple[int, int]]) -> bytes:
    """One frame's bytes: its segments (fragments) read by range and joined."""
    parts = [await objects.read_range(key, offset, length) for offset, length in segments]
    return parts[0] if len(parts) == 1 else b"".join(parts)


async def retrieve_frames(
    index: Index,
    objects: ObjectStore,
    key: ResourceKey,
    frame_list: str | None,
    retrieval: Retrieval,
) -> Payload:
    """The frames listed (all of them for the Pixel Data resource, ``frame_list`` None)."""
    numbers = parse_frame_list(frame_list) if frame_list is not None else None
    ref = await find_ref(index, retrieval.site, key)
    frames = await negotiated_frames(index, objects, retrieval.site, ref, retrieval.accept)
    numbers = numbers if numbers is not None else list(range(1, frames.count + 1))
    if missing := [n for n in numbers if n > frames.count]:
        raise NotFound(f"instance {ref.sop_uid} has {frames.count} frame(s); no frame {missing[0]}")
    body = Multipart(frames.media_type)
    where = {"Content_Location": location} if (location := pixel_data_url(retrieval, ref)) else {}

    async def stream() -> AsyncIterator[bytes]:
        async for data in frames.read(numbers):
            yield body.part(frames.part_type, data, **(where if frame_list is None else {}))
        yield body.end()

    return Payload(body.content_type, await buffered(stream()))


def pixel_data_url(retrieval: Retrieval, doc: InstanceDocument | InstanceRef) -> str:
    """The BulkDataURI of an instance's Pixel Data: a Pixel Data part's Content-Location."""
    if not retrieval.root_url:
        return ""
    study, series, sop = doc.study_uid, doc.series_uid, doc.sop_uid
    return bulkdata_url(retrieval.root_url, study, series, sop, PIXEL_DATA_PATH)


@dataclass(frozen=True, slots=True)
class NegotiatedFrames:
    """The frames of one instance in the form an Accept header chose (PS3.18 8.7.3)."""

    source: _FrameSource
    plan: _Plan
    geometry: Any

    @property
    def count(self) -> int:
        """How many frames the instance has."""
        return self.source.count

    @property
    def media_type(self) -> str:
        """The media type of each frame's part."""
        return self.plan.media_type

    @property
    def part_type(self) -> str:
        """The Content-Type of each frame's part, with its transfer syntax."""
        return f"{self.plan.media_type}; transfer-syntax={self.plan.transfer_syntax}"

    async def read(self, numbers: Sequence[int]) -> AsyncIterator[bytes]:
        """The frames numbered (1-based), converted as the plan says."""
        for number in numbers:
            data = await self.source.frame(number)
            if self.plan.action != "stored":
                stored = self.source.transfer_syntax
                data = await asyncio.to_thread(_convert, data, stored, self.plan, self.geometry)
            yield data


async def negotiated_frames(
    index: Index, objects: ObjectStore, site: str, ref: InstanceRef, accept: str
) -> NegotiatedFrames:
    """The frames of ``ref`` in the form ``accept`` asks; ``NotFound``, ``NotAcceptable``.
    The indexed attributes are read only to decode or re-encode (the Image Pixel Module)."""
    stored = instance_keys(site, ref.study_uid, ref.series_uid, ref.sop_uid)["dicom"]
    name = ResourceKey(ref.study_uid, ref.series_uid, ref.sop_uid)
    source = await _frame_source(index, objects, site, ref, name, stored)
    plan = negotiate_frames(accept, source.transfer_syntax)
    geometry = None
    if plan.action != "stored":
        geometry = frame_geometry((await find_instance(index, site, name)).attributes)
    return NegotiatedFrames(source, plan, geometry)


@dataclass(frozen=True, slots=True)
class _FrameSource:
    """Frames of one instance: by byte range through the table, or parsed (deflated data)."""

    transfer_syntax: str
    count: int
    objects: ObjectStore
    key: str
    table: FrameTable | None = None
    parsed: tuple[bytes, ...] = ()

    async def frame(self, number: int) -> bytes:
        if self.table is None:
            return self.parsed[number - 1]
        data = await read_frame(self.objects, self.key, self.table.frames[number - 1])
        return unpadded(self.transfer_syntax, data)


async def _frame_source(
    index: Index, objects: ObjectStore, site: str, ref: InstanceRef, name: ResourceKey, key: str
) -> _FrameSource:
    """The frame table; for an object whose bytes are not addressable (Deflated), the frames
    parsed from the object once (the only case where a stored file is opened to answer)."""
    try:
        table = await load_frame_table(objects, site, ref)
    except NotFound as missing:
        if ref.transfer_syntax != DeflatedExplicitVRLittleEndian:
            raise
        no_table = missing
    else:
        return _FrameSource(table.transfer_syntax, len(table.frames), objects, key, table)
    if "00280010" not in (await find_instance(index, site, name)).attributes:  # no Rows
        raise no_table
    async with objects.local_file(key) as path:
        frames = await asyncio.to_thread(_parse_frames, path)
    return _FrameSource(ExplicitVRLittleEndian, len(frames), objects, key, parsed=frames)


def _parse_frames(path: Path) -> tuple[bytes, ...]:
    """Native frames of a Deflated Explicit VR Little Endian object (inflated by pydicom)."""
    ds = pydicom.dcmread(path)
    count = number_of_frames(ds)
    data = bytes(ds.PixelData)
    size = len(data) // count
    return tuple(data[i * size : (i + 1) * size] for i in range(count))


def _convert(data: bytes, stored: str, plan: _Plan, geometry: Any) -> bytes:
    native = decode_frame(data, stored, geometry)
    return (
        native if plan.action == "decode" else encode_frame(native, plan.transfer_syntax, geometry)
    )
