"""Rendered representations kept in memory by entity tag (PS3.18 8.3.5, 8.3.6).

A rendering is a pure function of the stored instances (named by their digests) and of the
request, so its entity tag (``pacsflow.wado.validators``) is its cache key: a replaced instance
has another digest and is never answered from an old entry. The cache is per process and
bounded in bytes; the least recently used renderings go first. Written by hand because the
standard library's ``functools.lru_cache`` bounds entries, not bytes.
"""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass
from typing import Final

__all__ = ["CachedRendering", "RenderCache"]

# One rendering may take at most this share of the cache (a huge GIF is not kept).
_LARGEST_SHARE: Final = 8


@dataclass(frozen=True, slots=True)
class CachedRendering:
    """One rendered representation: its media type and bytes."""

    content_type: str
    body: bytes


class RenderCache:
    """Renderings by entity tag, at most ``max_bytes`` of bodies (0: nothing is kept)."""

    def __init__(self, max_bytes: int) -> None:
        self._max_bytes = max_bytes
        self._held = 0
        self._entries: OrderedDict[str, CachedRendering] = OrderedDict()

    @property
    def held_bytes(self) -> int:
        """Bytes of the bodies held now."""
        return self._held

    def get(self, etag: str) -> CachedRendering | None:
        """The rendering of ``etag``, marked as just used, or ``None``."""
        found = self._entries.get(etag)
        if found is not None:
            self._entries.move_to_end(etag)
        return found

    def put(self, etag: str, rendering: CachedRendering) -> None:
        """Keep ``rendering`` under ``etag``, dropping the least recently used to fit."""
        size = len(rendering.body)
        if size * _LARGEST_SHARE > self._max_bytes:
            return
        if (held := self._entries.pop(etag, None)) is not None:
            self._held -= len(held.body)
        self._entries[etag] = rendering
        self._held += size
        while self._held > self._max_bytes:
            _, dropped = self._entries.popitem(last=False)
            self._held -= len(dropped.body)
