"""WADO-RS Retrieve Study, Series and Instance (PS3.18 10.4.1.1.1).

``multipart/related; type="application/dicom"`` streamed instance by instance from the object
store (constant memory whatever the study's size), or ``application/zip``; one instance also
as a single ``application/dicom`` body (PS3.18 8.7.3.1; for a study or series that Accept gets
the multipart form). An object received without the PS3.10 head goes out with one
(``pacsflow.dicom.part10``). Transfer syntax
negotiation follows PS3.18 8.7.3: the ``transfer-syntax`` parameter (``*`` for as stored),
several Accept values with q-factors, Explicit VR Little Endian by default for
``application/dicom`` (a request without Accept, or ``*/*``, gets the stored form); an instance is
transcoded only when the client does not accept its stored syntax, and 406 answers a request
no instance can satisfy before any byte is sent. A single ``application/dicom`` body has a
``Content-Length`` (the indexed size, plus the PS3.10 head read first where one is added); a
multipart body under 1 MiB is sent whole (``buffered``), without a streamed response's machinery;
a larger one is streamed (its size is known only once each instance's head was read).
A weak entity tag from the instances' digests answers ``If-None-Match`` (304) before any read.
"""

from __future__ import annotations

import asyncio
import io
import zipfile
from collections.abc import AsyncIterator
from typing import Final, Literal

from pydicom.uid import ExplicitVRLittleEndian

from pacsflow.dicom.part10 import part10_stream
from pacsflow.dicom.transcode import can_transcode, transcode_instance
from pacsflow.errors import NotAcceptable, ObjectStoreUnavailable
from pacsflow.media.accept import parse_accept
from pacsflow.media.multipart_out import Multipart, buffered, coalesced, primed
from pacsflow.ports import Index, InstanceRef, ObjectStore
from pacsflow.wado.locate import keys_of, locate
from pacsflow.wado.retrieval import Payload, ResourceKey, Retrieval
from pacsflow.wado.validators import entity_tag, is_current

__all__ = ["negotiate_instances", "retrieve_instances"]

ANY: Final = "*"
CRLF: Final = b"\r\n"
# Reads of a stored instance: few worker-thread hops per instance, bounded memory per request.
READ_BYTES: Final = 4 << 20
_VERSION: Final = b"instances-v1"
_VARY: Final = {"Vary": "Accept"}
# multipart/related; type="application/dicom", one application/dicom body, or a zip
Packaging = Literal["dicom", "single", "zip"]


def negotiate_instances(accept: str) -> tuple[Packaging, list[str]]:
    """(``dicom`` or ``zip``, acceptable transfer syntaxes best first; ``*`` means as stored)."""
    options: list[tuple[Packaging, str]] = []
    for media in parse_accept(accept):
        if media.quality <= 0:
            continue
        syntax = media.parameter("transfer-syntax")
        if media.media_type in ("*/*", "multipart/*"):  # no preference at all: as stored
            options.append(("dicom", syntax or ANY))
        elif media.media_type == "application/dicom":  # single part (PS3.18 8.7.3.1)
            options.append(("single", syntax or ExplicitVRLittleEndian))
        elif media.media_type == "multipart/related":
            if (media.parameter("type") or "application/dicom").lower() == "application/dicom":
                options.append(("dicom", syntax or ExplicitVRLittleEndian))
        elif media.media_type == "application/zip":
            options.append(("zip", syntax or ANY))
    if not options:
        raise NotAcceptable(
            'instances are available as multipart/related; type="application/dicom"'
            " or application/zip"
        )
    kind = options[0][0]
    return kind, [syntax for k, syntax in options if k == kind]


def _choose(ref: InstanceRef, syntaxes: list[str]) -> str:
    """The transfer syntax to send an instance in: as stored if acceptable, else transcoded."""
    for syntax in syntaxes:
        if syntax in (ANY, ref.transfer_syntax):
            return ref.transfer_syntax
    for syntax in syntaxes:
        if can_transcode(ref.transfer_syntax, syntax):
            return syntax
    raise NotAcceptable(
        f"instance {ref.sop_uid} is stored in {ref.transfer_syntax} and cannot be sent in any"
        f" of {', '.join(syntaxes)}"
    )


async def _instance_bytes(
    objects: ObjectStore, key: str, ref: InstanceRef, target: str
) -> AsyncIterator[tuple[str, int, AsyncIterator[bytes]]]:
    """Yield once: (actual transfer syntax, size, chunks) of one instance."""
    if target == ref.transfer_syntax:  # as stored, with a PS3.10 head if it had none
        stored = objects.stream(key, chunk_size=READ_BYTES)
        added, chunks = await part10_stream(stored, target)
        yield target, ref.size + added, chunks
        return
    data, actual = await asyncio.to_thread(transcode_instance, await objects.get(key), target)

    async def whole() -> AsyncIterator[bytes]:
        yield data

    yield actual, len(data), whole()


def _part_type(syntax: str) -> str:
    return f"application/dicom; transfer-syntax={syntax}"


async def retrieve_instances(
    index: Index, objects: ObjectStore, key: ResourceKey, retrieval: Retrieval
) -> Payload:
    """Stream the instances of a study, series or one instance in the negotiated form."""
    kind, syntaxes = negotiate_instances(retrieval.accept)
    site = retrieval.site
    refs = await locate(index, site, key)
    targets = [_choose(ref, syntaxes) for ref in refs]  # 406 before the first byte
    etag = entity_tag(_VERSION, refs, kind, *targets, weak=True)  # weak: a new boundary each time
    if is_current(etag, retrieval.if_none_match):
        return Payload("", status=304, headers=_VARY, etag=etag)
    if kind == "zip":
        body_zip = await primed(_zip(objects, site, refs, targets))
        return Payload("application/zip", body_zip, headers=_VARY, etag=etag)
    if kind == "single" and key.instance is not None:
        async for syntax, size, chunks in _instance_bytes(
            objects, keys_of(site, refs[0])["dicom"], refs[0], targets[0]
        ):
            single = f"application/dicom; transfer-syntax={syntax}"
            headers = {**_VARY, "Content-Length": str(size)}
            return Payload(single, await buffered(chunks), headers=headers, etag=etag)
    body = Multipart("application/dicom")

    async def stream() -> AsyncIterator[bytes]:
        for ref, target in zip(refs, targets, strict=True):
            async for syntax, size, chunks in _instance_bytes(
                objects, keys_of(site, ref)["dicom"], ref, target
            ):
                yield body.head(_part_type(syntax), size)
                sent = 0
                async for chunk in chunks:
                    sent += len(chunk)
                    yield chunk
                if sent != size:  # the indexed size is in the part header: never send less
                    raise ObjectStoreUnavailable(
                        f"instance {ref.sop_uid}: {sent} bytes read, {size} indexed"
                    )
                yield CRLF
        yield body.end()

    return Payload(body.content_type, await buffered(coalesced(stream())), headers=_VARY, etag=etag)


class _Sink(io.RawIOBase):
    """An unseekable file that collects what ``zipfile`` writes, drained by the stream."""

    def __init__(self) -> None:
        super().__init__()
        self.chunks: list[bytes] = []

    def writable(self) -> bool:
        return True

    def write(self, data: object) -> int:
        chunk = bytes(data)  # type: ignore[call-overload]
        self.chunks.append(chunk)
        return len(chunk)

    def drain(self) -> bytes:
        data, self.chunks = b"".join(self.chunks), []
        return data


async def _zip(
    objects: ObjectStore, site: str, refs: list[InstanceRef], targets: list[str]
) -> AsyncIterator[bytes]:
    """application/zip: one ``{study}/{series}/{sop}.dcm`` entry per instance, stored."""
    sink = _Sink()
    with zipfile.ZipFile(sink, "w", zipfile.ZIP_STORED, allowZip64=True) as archive:
        for ref, target in zip(refs, targets, strict=True):
            name = f"{ref.study_uid}/{ref.series_uid}/{ref.sop_uid}.dcm"
            async for _syntax, size, chunks in _instance_bytes(
                objects, keys_of(site, ref)["dicom"], ref, target
            ):
                with archive.open(name, "w", force_zip64=size >= 1 << 31) as entry:
                    async for chunk in chunks:
                        entry.write(chunk)
                        yield sink.drain()
            yield sink.drain()
    yield sink.drain()
