"""WADO-RS Retrieve Bulkdata (PS3.18 10.4.1.1.5): the values BulkDataURIs name, by byte range.

``{instance}/bulkdata/{path}``: the path of tags and item numbers ingest wrote into the
metadata (``pacsflow.dicom.metadata.bulkdata_path``). Pixel Data resolves through the frame
table (native: one value; encapsulated: one part per frame), other values through the bulk
ranges recorded at ingest. A ``Range`` header selects bytes of a single value (RFC 9110).
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Final

import orjson

from pacsflow.errors import NotAcceptable, NotFound
from pacsflow.media.accept import parse_accept
from pacsflow.media.multipart_out import Multipart, primed
from pacsflow.media.ranges import parse_range
from pacsflow.pipeline.keys import instance_keys
from pacsflow.pipeline.sidecar import read_part
from pacsflow.ports import Index, ObjectStore
from pacsflow.wado.frames import OCTET_STREAM, load_frame_table, read_frame
from pacsflow.wado.locate import bulkdata_url, find_ref
from pacsflow.wado.retrieval import Payload, ResourceKey, Retrieval

__all__ = ["retrieve_bulkdata"]

PIXEL_DATA_PATHS: Final = frozenset({"7FE00010", "7FE00008", "7FE00009"})


def _single_part(accept: str) -> bool:
    """True for a bare ``application/octet-stream``; False for multipart (the default)."""
    for media in parse_accept(accept):
        if media.quality <= 0:
            continue
        if media.media_type == OCTET_STREAM:
            return True
        if media.media_type in ("*/*", "multipart/*") or (
            media.media_type == "multipart/related"
            and (media.parameter("type") or OCTET_STREAM).lower() in (OCTET_STREAM, "*/*")
            and media.parameter("transfer-syntax") in (None, "*")
        ):
            return False
    raise NotAcceptable(
        f'bulk data is available as {OCTET_STREAM} or multipart/related; type="{OCTET_STREAM}"'
    )


async def _value_range(
    index: Index, objects: ObjectStore, site: str, key: ResourceKey, path: str
) -> tuple[str, list[list[tuple[int, int]]], str]:
    """(object key, segments of each part, transfer syntax of the parts)."""
    doc = await find_ref(index, site, key)
    keys = instance_keys(site, doc.study_uid, doc.series_uid, doc.sop_uid)
    if path.upper() in PIXEL_DATA_PATHS:
        table = await load_frame_table(objects, site, doc)
        if table.encapsulated:
            return keys["dicom"], [list(f) for f in table.frames], table.transfer_syntax
        first, last = table.frames[0][0], table.frames[-1][-1]
        span = (first[0], max(last[0] + last[1], first[0] + first[1]) - first[0])
        return keys["dicom"], [[span]], table.transfer_syntax
    stored = await read_part(objects, keys, "bulk")
    ranges: dict[str, list[int]] = orjson.loads(stored) if stored else {}
    if path not in ranges:
        raise NotFound(f"instance {doc.sop_uid} has no bulk data at {path}")
    offset, length = ranges[path]
    return keys["dicom"], [[(offset, length)]], doc.transfer_syntax


async def retrieve_bulkdata(
    index: Index, objects: ObjectStore, key: ResourceKey, path: str, retrieval: Retrieval
) -> Payload:
    """One bulk value (or the frames of encapsulated Pixel Data), whole or a byte range."""
    single = _single_part(retrieval.accept)
    stored, parts, syntax = await _value_range(index, objects, retrieval.site, key, path)
    headers: dict[str, str] = {"Accept-Ranges": "bytes"}
    uri = bulkdata_url(retrieval.root_url, key.study, key.series or "", key.instance or "", path)
    where = {"Content_Location": uri}  # PS3.18 10.4.3.3.5
    if len(parts) == 1 and len(parts[0]) == 1:
        offset, size = parts[0][0]
        selected = parse_range(retrieval.range, size)
        start, length = selected or (0, size)
        status = 206 if selected and single else 200
        if selected:
            headers["Content-Range"] = f"bytes {start}-{start + length - 1}/{size}"
        if single:
            chunks = objects.stream(stored, offset + start, offset + start + length)
            return Payload(OCTET_STREAM, await primed(chunks), status, headers)
        body = Multipart(OCTET_STREAM)
        part_headers = {"Content_Range": headers["Content-Range"]} if selected else {}
        part_headers |= where

        async def one() -> AsyncIterator[bytes]:
            head = body.head(f"{OCTET_STREAM}; transfer-syntax={syntax}", length, **part_headers)
            async for chunk in objects.stream(stored, offset + start, offset + start + length):
                yield head + chunk
                head = b""
            yield head + b"\r\n" + body.end()

        return Payload(body.content_type, await primed(one()))
    body = Multipart(OCTET_STREAM)

    async def frames() -> AsyncIterator[bytes]:
        for segments in parts:
            data = await read_frame(objects, stored, segments)
            yield body.part(f"{OCTET_STREAM}; transfer-syntax={syntax}", data, **where)
        yield body.end()

    return Payload(body.content_type, await primed(frames()))
