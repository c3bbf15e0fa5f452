"""multipart/related response bodies (RFC 2387, PS3.18 8.7.1.1), produced part by part."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Iterable
from dataclasses import dataclass, field

__all__ = ["Multipart", "buffered", "coalesced", "primed"]

COALESCE_BYTES = 1 << 20
BUFFER_BYTES = 1 << 20


async def primed(body: AsyncIterator[bytes]) -> AsyncIterator[bytes]:
    """``body`` with its first chunk already produced, so that a backend failure on the way to
    it (an object store outage, a missing object) is an HTTP error status instead of a response
    cut short after a 200. The body yields the first part's header with its first bytes."""
    first = await anext(body, b"")

    async def whole() -> AsyncIterator[bytes]:
        yield first
        async for chunk in body:
            yield chunk

    return whole()


async def buffered(
    body: AsyncIterator[bytes], limit: int = BUFFER_BYTES
) -> bytes | AsyncIterator[bytes]:
    """``body`` whole when it ends within ``limit`` bytes (sent as one response with a
    Content-Length, without the machinery of a streamed one), else streamed, primed as
    ``primed`` does: a backend failure before the first bytes is an error status."""
    held: list[bytes] = []
    size = 0
    async for chunk in body:
        held.append(chunk)
        size += len(chunk)
        if size > limit:

            async def rest() -> AsyncIterator[bytes]:
                for piece in held:
                    yield piece
                async for more in body:
                    yield more

            return rest()
    return b"".join(held)


async def coalesced(body: AsyncIterator[bytes], size: int = COALESCE_BYTES) -> AsyncIterator[bytes]:
    """``body`` in pieces of about ``size`` bytes: small objects and part headers travel
    together (fewer, larger writes to the socket), a chunk of ``size`` or more goes on as it
    is (never copied into a larger one); memory stays bounded by twice ``size``."""
    pending: list[bytes] = []
    held = 0
    async for chunk in body:
        if len(chunk) >= size:
            if pending:
                yield b"".join(pending)
                pending, held = [], 0
            yield chunk
            continue
        pending.append(chunk)
        held += len(chunk)
        if held >= size:
            yield b"".join(pending)
            pending, held = [], 0
    if pending:
        yield b"".join(pending)


@dataclass(frozen=True, slots=True)
class Multipart:
    """A boundary and the ``type`` of a multipart/related body."""

    part_type: str
    boundary: str = field(default_factory=lambda: uuid.uuid4().hex)

    @property
    def content_type(self) -> str:
        """The Content-Type header of the whole body."""
        return f'multipart/related; type="{self.part_type}"; boundary={self.boundary}'

    def head(self, content_type: str, length: int | None = None, **headers: str) -> bytes:
        """The delimiter and headers that open one part."""
        lines = [f"--{self.boundary}", f"Content-Type: {content_type}"]
        if length is not None:
            lines.append(f"Content-Length: {length}")
        lines += [f"{name.replace('_', '-')}: {value}" for name, value in headers.items()]
        return ("\r\n".join(lines) + "\r\n\r\n").encode()

    def part(self, content_type: str, payload: bytes, **headers: str) -> bytes:
        """One whole part, with its trailing CRLF."""
        return self.head(content_type, len(payload), **headers) + payload + b"\r\n"

    def end(self) -> bytes:
        """The closing delimiter."""
        return f"--{self.boundary}--\r\n".encode()

    def body(self, payloads: Iterable[bytes]) -> bytes:
        """A whole body: one part of ``part_type`` per payload, then the closing delimiter."""
        return b"".join(self.part(self.part_type, p) for p in payloads) + self.end()
