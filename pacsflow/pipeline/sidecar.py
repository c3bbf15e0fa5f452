"""The sidecar object: an instance's metadata, frame table and bulk ranges in one object.

Layout (all integers big-endian)::

    b"PFS1"                  magic and format version
    u64 frames length        frame offset table JSON, 0: none (``{sop}.frames`` before)
    u64 bulk length          byte ranges of other bulk values JSON, 0: none (``{sop}.bulk``)
    u64 metadata length      DICOM JSON without bulk data (``{sop}.json`` before)
    frames bytes | bulk bytes | metadata bytes

A reader slices one part out by the lengths, without parsing the others. The small parts come
first, so that a frame or bulk data request reads the object's first bytes (``read_part``), not
the metadata of an enhanced multi-frame image (megabytes of functional groups). One object
instead of three saves two file creations (inodes, directory entries) per instance at ingest.
An instance stored before the sidecar (``.json``, ``.frames``, ``.bulk``) is read from those
objects while it has no sidecar.
"""

from __future__ import annotations

import struct
from collections.abc import Callable, Mapping, Sequence
from typing import Final, Literal, TypeVar

from pacsflow.errors import ObjectNotFound
from pacsflow.ports import ObjectStore

__all__ = [
    "MAGIC",
    "Part",
    "encode_sidecar",
    "read_metadata",
    "read_part",
    "read_parts",
    "sidecar_part",
]

Part = Literal["metadata", "frames", "bulk"]

T = TypeVar("T")

MAGIC: Final = b"PFS1"
_HEADER: Final = struct.Struct(">4sQQQ")
_ORDER: Final[tuple[Part, ...]] = ("frames", "bulk", "metadata")
_PREFIX: Final = 64 * 1024  # read at once for a frame table or bulk ranges
_RELATIVE: Final = b'"BulkDataURI":"studies/'  # as ingest writes them (pacsflow.dicom.metadata)


def encode_sidecar(metadata: bytes, frames: bytes | None, bulk: bytes | None) -> bytes:
    """The sidecar of an instance; ``frames`` or ``bulk`` ``None`` (or empty) when it has none."""
    frames, bulk = frames or b"", bulk or b""
    return b"".join(
        (_HEADER.pack(MAGIC, len(frames), len(bulk), len(metadata)), frames, bulk, metadata)
    )


def _span(data: bytes, part: Part, *, complete: bool) -> tuple[int, int]:
    """(start, length) of ``part`` by the header at the start of ``data``: a whole sidecar
    (``complete``) or its first bytes."""
    if len(data) < _HEADER.size:
        raise ValueError(f"a sidecar of {len(data)} bytes has no header")
    magic, *lengths = _HEADER.unpack_from(data)
    whole = _HEADER.size + sum(lengths)
    if magic != MAGIC or whole < len(data) or (complete and whole != len(data)):
        raise ValueError(f"not a sidecar: magic {magic!r}, {len(data)} bytes for {lengths}")
    number = _ORDER.index(part)
    return _HEADER.size + sum(lengths[:number]), lengths[number]


def sidecar_part(data: bytes, part: Part) -> bytes | None:
    """One part of a sidecar's bytes; ``None`` for an absent frame table or bulk ranges."""
    start, length = _span(data, part, complete=True)
    if part != "metadata" and length == 0:
        return None
    return data[start : start + length]


async def _read_all(
    objects: ObjectStore,
    keys: Sequence[Mapping[str, str]],
    part: Part,
    from_sidecar: Callable[[bytes], T | None],
    from_object: Callable[[bytes], T],
) -> list[T | None]:
    """``from_sidecar`` of each instance's sidecar, or, for an instance stored before the
    sidecar, ``from_object`` of its own object of ``part``; ``None`` where there is none."""
    sidecars = await objects.get_many([k["sidecar"] for k in keys])
    found = [None if raw is None else from_sidecar(raw) for raw in sidecars]
    older = [i for i, raw in enumerate(sidecars) if raw is None]
    if older:
        legacy = await objects.get_many([keys[i][part] for i in older])
        for i, raw in zip(older, legacy, strict=True):
            found[i] = None if raw is None else from_object(raw)
    return found


async def read_parts(
    objects: ObjectStore, keys: Sequence[Mapping[str, str]], part: Part
) -> list[bytes | None]:
    """``part`` of each instance whose object keys (``instance_keys``) are ``keys``: from its
    sidecar, or, for an instance stored before the sidecar, its own object; ``None`` where
    the instance has none (or is gone)."""
    return await _read_all(objects, keys, part, lambda raw: sidecar_part(raw, part), bytes)


async def read_metadata(
    objects: ObjectStore, keys: Sequence[Mapping[str, str]], root_url: str
) -> list[memoryview | None]:
    """The DICOM JSON of each instance (``read_parts``) with its BulkDataURIs, stored relative
    to the DICOMweb root, made absolute below ``root_url``; copied once: the replacement is
    made on the whole sidecar, whose frame table and bulk ranges before the metadata do not
    hold it."""
    relative, absolute = _RELATIVE, f'"BulkDataURI":"{root_url}/studies/'.encode()

    def from_sidecar(raw: bytes) -> memoryview:
        start, _ = _span(raw, "metadata", complete=True)
        if raw.find(relative, 0, start) >= 0:  # not from this module's writer: slice first
            return memoryview(raw[start:].replace(relative, absolute))
        return memoryview(raw.replace(relative, absolute))[start:]

    def from_object(raw: bytes) -> memoryview:
        return memoryview(raw.replace(relative, absolute))

    return await _read_all(objects, keys, "metadata", from_sidecar, from_object)


async def read_part(objects: ObjectStore, keys: Mapping[str, str], part: Part) -> bytes | None:
    """``part`` of one instance (``read_parts``); a frame table or bulk ranges from the
    sidecar's first bytes (a second read only for a part that does not fit in them)."""
    if part == "metadata":
        (found,) = await read_parts(objects, [keys], part)
        return found
    try:
        head = await objects.read_range(keys["sidecar"], 0, _PREFIX)
    except ObjectNotFound:
        (found,) = await objects.get_many([keys[part]])
        return found
    start, length = _span(head, part, complete=len(head) < _PREFIX)
    if length == 0:
        return None
    if start + length <= len(head):
        return head[start : start + length]
    return await objects.read_range(keys["sidecar"], start, length)
