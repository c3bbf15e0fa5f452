"""A bulk data part of a metadata request, kept while the rest of the request arrives.

PS3.18 8.6.1.2 puts every metadata part before the bulk data parts it references, but an
instance can only be assembled once its parts are all in, so the parts are kept: in memory up
to a threshold, then in an anonymous temporary file that the operating system removes when it
is closed or the process ends (nothing is left behind by a failed request). A part larger than
the bulk data limit stops being kept; the instances that reference it are refused.
"""

from __future__ import annotations

import asyncio
import io
import tempfile
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import BinaryIO

__all__ = ["BulkPart"]

_READ_CHUNK = 1 << 20


@dataclass(slots=True)
class BulkPart:
    """One bulk data part: its Content-Location, media type and bytes."""

    number: int
    location: str
    media_type: str
    memory_max_bytes: int
    size_max_bytes: int
    size: int = 0
    truncated: bool = False
    oversize: bool = False
    _memory: bytearray | None = field(default_factory=bytearray)
    _file: BinaryIO | None = None

    async def write(self, data: bytes) -> None:
        """Keep the next chunk (or count it only, once the part is over the limit)."""
        self.size += len(data)
        if self.oversize:
            return
        if self.size > self.size_max_bytes:
            self.oversize = True
            self.close()
            return
        if self._memory is not None:
            self._memory.extend(data)
            if len(self._memory) > self.memory_max_bytes:
                self._file = await asyncio.to_thread(_spill, bytes(self._memory))
                self._memory = None
        elif self._file is not None:
            await asyncio.to_thread(self._file.write, data)

    def reader(self) -> BinaryIO:
        """A file object over the whole part, at its start (for probing; not thread-safe)."""
        if self._memory is not None:
            return io.BytesIO(self._memory)
        assert self._file is not None, "the part was dropped"
        self._file.seek(0)
        return self._file

    def read_all(self) -> bytes:
        """The whole part in memory (for small nested values)."""
        return self.reader().read()

    async def chunks(self, offset: int, length: int) -> AsyncIterator[bytes]:
        """``length`` bytes from ``offset``, chunk by chunk."""
        if self._memory is not None:
            view = memoryview(self._memory)
            for start in range(offset, offset + length, _READ_CHUNK):
                yield bytes(view[start : min(start + _READ_CHUNK, offset + length)])
            return
        end = offset + length
        while offset < end:
            chunk = await asyncio.to_thread(self._read_at, offset, min(_READ_CHUNK, end - offset))
            if not chunk:
                raise EOFError("the spooled part is shorter than recorded")
            offset += len(chunk)
            yield chunk

    def _read_at(self, offset: int, n: int) -> bytes:
        assert self._file is not None
        self._file.seek(offset)
        return self._file.read(n)

    def close(self) -> None:
        """Drop the kept bytes."""
        self._memory = None
        if self._file is not None:
            self._file.close()
            self._file = None


def _spill(data: bytes) -> BinaryIO:
    spool: BinaryIO = tempfile.TemporaryFile(prefix="pacsflow-stow-")  # noqa: SIM115
    spool.write(data)
    return spool
