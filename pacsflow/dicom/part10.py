"""Serve a stored object as a PS3.10 file, whatever form it was received in (PS3.10 7.1).

STOW-RS accepts a part that is a bare data set (no preamble, no File Meta) or a File Meta
group without the preamble, as PS3.10 readers do, and stores the bytes as received: their
SHA-256 is the one the index keeps and Storage Commitment verifies. ``application/dicom``
is the PS3.10 format (PS3.18 8.7.3.1), so what is sent is the missing head — the 128-byte
preamble, ``DICM`` and, for a bare data set, a File Meta group made from the data set's own
SOP Class and Instance UIDs and its transfer syntax — followed by the stored bytes.
"""

from __future__ import annotations

import io
import uuid
from collections.abc import AsyncIterator
from typing import Final

from pydicom.dataset import FileMetaDataset
from pydicom.filewriter import write_file_meta_info
from pydicom.uid import UID

from pacsflow import __version__
from pacsflow.dicom.header import HeaderIncomplete, PartRejected, read_part_header

__all__ = ["IMPLEMENTATION_CLASS_UID", "as_part10", "part10_head", "part10_stream"]

PREAMBLE: Final = b"\x00" * 128 + b"DICM"
# A UUID-derived UID (PS3.5 B.2, ISO/IEC 9834-8): pacsflow's own, without a registered root.
IMPLEMENTATION_CLASS_UID: Final = UID(
    f"2.25.{uuid.uuid5(uuid.NAMESPACE_URL, 'pacsflow:implementation').int}"
)
_VERSION_NAME: Final = f"PACSFLOW_{__version__}"[:16]
_HEAD_LIMIT: Final = 16 * 1024 * 1024  # as PACSFLOW_HEADER_PREFIX_MAX_BYTES


def part10_head(head: bytes, transfer_syntax: str, *, complete: bool = False) -> bytes | None:
    """What to send before a stored object that starts with ``head`` (all of it: ``complete``).

    ``b""`` for a PS3.10 file; the preamble and ``DICM`` before a File Meta group; those and a
    File Meta group for a bare data set; ``None`` when ``head`` is too short to tell.
    """
    if head[128:132] == b"DICM":
        return b""
    if head[:2] == b"\x02\x00":  # group 0002 without the preamble
        return PREAMBLE
    try:
        header = read_part_header(head, complete=complete)
    except HeaderIncomplete:
        return None
    except PartRejected:  # validated at ingest: cannot happen; sent as it is
        return b""
    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = UID(header.sop_class_uid)
    meta.MediaStorageSOPInstanceUID = UID(header.sop_uid)
    meta.TransferSyntaxUID = UID(transfer_syntax)
    meta.ImplementationClassUID = IMPLEMENTATION_CLASS_UID
    meta.ImplementationVersionName = _VERSION_NAME
    buffer = io.BytesIO()
    write_file_meta_info(buffer, meta, enforce_standard=True)  # type: ignore[arg-type]
    return PREAMBLE + buffer.getvalue()


async def part10_stream(
    chunks: AsyncIterator[bytes], transfer_syntax: str
) -> tuple[int, AsyncIterator[bytes]]:
    """(bytes added before the object, the object's bytes as a PS3.10 file), read lazily.

    The first chunks are read (and held) until the head of the object tells its form.
    """
    held = bytearray()
    head: bytes | None = None
    async for chunk in chunks:
        held.extend(chunk)
        head = part10_head(bytes(held), transfer_syntax)
        if head is not None or len(held) >= _HEAD_LIMIT:
            break
    if head is None:  # the whole object is shorter than its header needs
        head = part10_head(bytes(held), transfer_syntax, complete=True) or b""
    first = head + bytes(held)

    async def whole() -> AsyncIterator[bytes]:
        yield first
        async for chunk in chunks:
            yield chunk

    return len(head), whole()


async def as_part10(chunks: AsyncIterator[bytes], transfer_syntax: str) -> AsyncIterator[bytes]:
    """The bytes of ``part10_stream``, for a consumer that needs no size."""
    _added, whole = await part10_stream(chunks, transfer_syntax)
    async for chunk in whole:
        yield chunk
