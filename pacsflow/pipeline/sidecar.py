"""The sidecar object: an instance's metadata, frame table and bulk ranges in one object.

Layout (all integers big-endian)::

    b"PFS1"                  magic and format version
    u64 metadata length      DICOM JSON without bulk data (``{sop}.json`` before)
    u64 frames length        frame offset table JSON, 0: none (``{sop}.frames`` before)
    u64 bulk length          byte ranges of other bulk values JSON, 0: none (``{sop}.bulk``)
    metadata bytes | frames bytes | bulk bytes

A reader slices one part out by the lengths, without parsing the others. One object instead
of three saves two file creations (inodes, directory entries) per instance at ingest. An
instance stored before the sidecar (``.json``, ``.frames``, ``.bulk``) is read from those
objects while it has no sidecar (``read_parts``).
"""

from __future__ import annotations

import struct
from collections.abc import Mapping, Sequence
from typing import Final, Literal

from pacsflow.ports import ObjectStore

__all__ = ["MAGIC", "Part", "encode_sidecar", "read_part", "read_parts", "sidecar_part"]

Part = Literal["metadata", "frames", "bulk"]

MAGIC: Final = b"PFS1"
_HEADER: Final = struct.Struct(">4sQQQ")
_ORDER: Final[tuple[Part, ...]] = ("metadata", "frames", "bulk")


def encode_sidecar(metadata: bytes, frames: bytes | None, bulk: bytes | None) -> bytes:
    """The sidecar of an instance; ``frames`` or ``bulk`` ``None`` (or empty) when it has none."""
    frames, bulk = frames or b"", bulk or b""
    return b"".join(
        (_HEADER.pack(MAGIC, len(metadata), len(frames), len(bulk)), metadata, frames, bulk)
    )


def sidecar_part(data: bytes, part: Part) -> bytes | None:
    """One part of a sidecar's bytes; ``None`` for an absent frame table or bulk ranges."""
    if len(data) < _HEADER.size:
        raise ValueError(f"a sidecar of {len(data)} bytes has no header")
    magic, *lengths = _HEADER.unpack_from(data)
    if magic != MAGIC or _HEADER.size + sum(lengths) != len(data):
        raise ValueError(f"not a sidecar: magic {magic!r}, {len(data)} bytes for {lengths}")
    number = _ORDER.index(part)
    start = _HEADER.size + sum(lengths[:number])
    length = lengths[number]
    if part != "metadata" and length == 0:
        return None
    return data[start : start + length]


async def read_parts(
    objects: ObjectStore, keys: Sequence[Mapping[str, str]], part: Part
) -> list[bytes | None]:
    """``part`` of each instance whose object keys (``instance_keys``) are ``keys``: from its
    sidecar, or, for an instance stored before the sidecar, its own object; ``None`` where
    the instance has none (or is gone)."""
    sidecars = await objects.get_many([k["sidecar"] for k in keys])
    found = [None if raw is None else sidecar_part(raw, part) for raw in sidecars]
    older = [i for i, raw in enumerate(sidecars) if raw is None]
    if older:
        legacy = await objects.get_many([keys[i][part] for i in older])
        for i, raw in zip(older, legacy, strict=True):
            found[i] = raw
    return found


async def read_part(objects: ObjectStore, keys: Mapping[str, str], part: Part) -> bytes | None:
    """``part`` of one instance (``read_parts``)."""
    (found,) = await read_parts(objects, [keys], part)
    return found
