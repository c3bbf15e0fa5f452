"""A STOW-RS part while it streams in (PS3.18 10.5, 8.6.1.2): hashed, header read, kept.

Each part's bytes are hashed as they arrive and its first bytes give the identifying
attributes (``read_part_header``). A part up to ``inline_max_bytes`` travels inline on the bus;
a larger one is staged in the object store (claim check): written in one piece when it ends if
it fits ``spool_bytes`` of memory, else streamed there as it arrives, so a body is never held
whole.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
from contextlib import AsyncExitStack
from dataclasses import dataclass, field
from pathlib import Path

from pacsflow.dicom.header import (
    HeaderIncomplete,
    PartHeader,
    PartRejected,
    read_file_header,
    read_part_header,
)
from pacsflow.dicom.status import FailureReason
from pacsflow.ports import ObjectStore, ObjectWriter

__all__ = ["PartDiscarded", "PartLimits", "StreamingPart"]


@dataclass(frozen=True, slots=True)
class PartLimits:
    """How much of a part is read for its header, and how much stays in memory."""

    header_prefix_max_bytes: int
    inline_max_bytes: int
    spool_bytes: int = 4 * 1024 * 1024  # kept in memory up to this size, then streamed out


@dataclass(slots=True)
class StreamingPart:
    """One part of a STOW request while it streams in."""

    number: int
    content_type: str
    prefix: bytearray = field(default_factory=bytearray)
    header: PartHeader | None = None
    size: int = 0
    sha256: hashlib._Hash = field(default_factory=hashlib.sha256)
    inline: bytearray | None = field(default_factory=bytearray)
    staged_key: str | None = None
    writer: ObjectWriter | None = None
    stack: AsyncExitStack | None = None
    failure: tuple[FailureReason, str] | None = None

    async def feed(
        self, data: bytes, limits: PartLimits, objects: ObjectStore, staged_key: str
    ) -> None:
        """Take the next chunk: hash it, read the header from it, keep or stage it."""
        if self.failure is not None:
            return
        self.size += len(data)
        self.sha256.update(data)
        if self.header is None and len(self.prefix) < limits.header_prefix_max_bytes:
            self.prefix.extend(data)
            self.try_header(complete=False)
        if self.inline is not None:
            self.inline.extend(data)
            if len(self.inline) > max(limits.inline_max_bytes, limits.spool_bytes):
                await self._spill(objects, staged_key)
        elif self.writer is not None:
            await self.writer.write(data)

    def try_header(self, *, complete: bool) -> None:
        """Read the identifying attributes from the prefix, once it holds enough of them."""
        try:
            self.header = read_part_header(bytes(self.prefix), complete=complete)
        except HeaderIncomplete:
            return
        except PartRejected as exc:
            self.failure = (exc.reason, exc.message)
        self.prefix = bytearray()

    async def _spill(self, objects: ObjectStore, staged_key: str) -> None:
        """Move a part that outgrew the inline limit to a staged object (claim check)."""
        self.staged_key = staged_key
        self.stack = AsyncExitStack()
        # Made durable with the other parts of its batch (``ObjectStore.sync``) before the
        # record is published: one round of fsyncs per batch instead of one per part.
        self.writer = await self.stack.enter_async_context(
            objects.writer(staged_key, durable=False)
        )
        assert self.inline is not None
        await self.writer.write(bytes(self.inline))
        self.inline = None

    async def settle(self, limits: PartLimits, objects: ObjectStore, staged_key: str) -> None:
        """A complete part held in memory but too large for the bus: stage it in one write
        (made durable with its batch, ``ObjectStore.sync``)."""
        if self.inline is not None and len(self.inline) > limits.inline_max_bytes:
            # the buffer itself, not a copy of it: nothing changes it once the part is complete
            await objects.put(staged_key, self.inline, durable=False)
            self.staged_key, self.inline = staged_key, None

    async def publish_staged(self) -> None:
        """Close the staged writer: the staged object becomes visible."""
        if self.stack is not None:
            stack, self.stack = self.stack, None
            await stack.aclose()

    async def header_from_whole_part(self, objects: ObjectStore) -> None:
        """Read the header from the complete part (its header was longer than the prefix)."""
        if self.inline is not None:
            self.prefix = self.inline
            self.try_header(complete=True)
            return
        await self.publish_staged()
        assert self.staged_key is not None
        async with objects.local_file(self.staged_key) as path:
            try:
                self.header = await asyncio.to_thread(_read_file_header, path, self.size)
            except PartRejected as exc:
                self.failure = (exc.reason, exc.message)

    async def discard(self, objects: ObjectStore) -> None:
        """Drop what a failed part left: an open writer is aborted, a staged object deleted."""
        if self.stack is not None:
            stack, self.stack = self.stack, None
            with contextlib.suppress(PartDiscarded):
                await stack.__aexit__(PartDiscarded, PartDiscarded(), None)
        if self.staged_key is not None:
            await objects.delete(self.staged_key)


def _read_file_header(path: Path, size: int) -> PartHeader:
    with path.open("rb") as fp:
        return read_file_header(fp, size)


class PartDiscarded(Exception):
    """Raised into a staged writer to abort it."""
