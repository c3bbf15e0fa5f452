"""Pieces both object store adapters use: key rules, a buffered file writer, shielded calls."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import TypeVar

__all__ = ["BufferedWriter", "check_key", "shielded"]

_T = TypeVar("_T")
BUFFER_BYTES = 1 << 20


def check_key(key: str) -> str:
    """Reject keys that are not plain '/'-separated relative paths (the port's key rules).

    A first segment starting with '.' is reserved for the adapters (the filesystem store's
    ``.tmp``), so that one key is valid in every adapter or in none.
    """
    if not key or key.startswith("/") or "\\" in key or "\x00" in key:
        raise ValueError(f"invalid object key: {key!r}")
    segments = key.split("/")
    if any(segment in ("", ".", "..") for segment in segments) or segments[0].startswith("."):
        raise ValueError(f"invalid object key: {key!r}")
    return key


async def shielded(function: Callable[[], _T]) -> _T:
    """Run ``function`` in a thread that completes even if the caller is cancelled."""
    return await asyncio.shield(asyncio.to_thread(function))


class BufferedWriter:
    """An ``ObjectWriter`` that buffers chunks and hands ~1 MiB at a time to ``sink``."""

    def __init__(self, sink: Callable[[bytes | bytearray], Awaitable[None]]) -> None:
        self._sink = sink
        self._buffer = bytearray()
        self._size = 0

    @property
    def size(self) -> int:
        """Bytes written so far."""
        return self._size

    async def write(self, chunk: bytes) -> None:
        """Append ``chunk``."""
        self._size += len(chunk)
        if not self._buffer and len(chunk) >= BUFFER_BYTES:
            await self._sink(chunk)
            return
        self._buffer += chunk
        if len(self._buffer) >= BUFFER_BYTES:
            await self.flush()

    async def flush(self) -> None:
        """Hand the buffered bytes to the sink."""
        if self._buffer:
            data, self._buffer = self._buffer, bytearray()
            await self._sink(data)
