"""The object store port: immutable blobs under string keys (S3 semantics).

Adapters: a directory tree (``pacsflow.adapters.fs_store``) and, in pipeline mode, S3/MinIO.
The contract (``tests/contract/test_object_store.py``) holds for both:

* An object becomes visible whole or not at all: ``put`` and a ``writer`` that exits cleanly
  publish atomically; a writer that exits with an error leaves nothing behind.
* Writing an existing key replaces it atomically.
* ``write_batch`` stores, renames and deletes many objects as one group commit: each change is
  atomic, and all of them are durable when it returns (one round of fsyncs on a disk, parallel
  requests on S3). A ``writer(key, durable=False)`` publishes its object without waiting for the
  disk; ``sync(keys)`` makes such objects durable together.
* Ranged reads return exactly the requested bytes; reading a missing key raises
  ``ObjectNotFound``.
* ``check`` returns within a few seconds: quietly while the store answers, with
  ``ObjectStoreUnavailable`` otherwise.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

__all__ = ["ObjectInfo", "ObjectStore", "ObjectWriter"]


@dataclass(frozen=True, slots=True)
class ObjectInfo:
    """What the store knows of an object without reading it."""

    key: str
    size: int


class ObjectWriter(Protocol):
    """A streaming upload; obtained from ``ObjectStore.writer``."""

    @property
    def size(self) -> int:
        """Bytes written so far."""
        ...

    async def write(self, chunk: bytes) -> None:
        """Append ``chunk``."""
        ...


class ObjectStore(Protocol):
    """Blobs under keys; see the module docstring for the contract."""

    async def start(self) -> None:
        """Connect and create what is missing (idempotent)."""
        ...

    async def close(self) -> None:
        """Release resources."""
        ...

    async def check(self) -> None:
        """Ask the store whether it answers (a cheap call, bounded in time); readiness probes.

        Raises ``ObjectStoreUnavailable`` when it does not, or when its bucket or root is gone.
        """
        ...

    async def put(self, key: str, data: bytes | bytearray, *, durable: bool = True) -> None:
        """Store ``data`` under ``key`` atomically (``durable=False``: as ``writer``)."""
        ...

    def writer(
        self, key: str, *, durable: bool = True
    ) -> AbstractAsyncContextManager[ObjectWriter]:
        """Stream an object in; it is published on clean exit and discarded on error.

        ``durable=False``: published without waiting for the disk; ``sync`` makes it durable.
        """
        ...

    async def sync(self, keys: Sequence[str]) -> None:
        """Make objects written with ``durable=False`` durable, all at once."""
        ...

    async def write_batch(
        self,
        puts: Sequence[tuple[str, bytes]] = (),
        moves: Sequence[tuple[str, str]] = (),
        deletes: Sequence[str] = (),
    ) -> None:
        """Store ``puts``, rename each ``(source, destination)`` of ``moves`` (the source is
        gone afterwards; a missing source raises ``ObjectNotFound``) and remove ``deletes``;
        each change is atomic and all are durable when this returns (a group commit)."""
        ...

    async def get(self, key: str) -> bytes:
        """Read a whole (small) object."""
        ...

    async def get_many(self, keys: Sequence[str]) -> list[bytes | None]:
        """Read several whole (small) objects at once; ``None`` for a missing one."""
        ...

    async def read_range(self, key: str, start: int, length: int) -> bytes:
        """Read ``length`` bytes from ``start``."""
        ...

    def stream(
        self, key: str, start: int = 0, end: int | None = None, chunk_size: int = 1 << 20
    ) -> AsyncIterator[bytes]:
        """Yield the bytes ``[start, end)`` of an object in chunks."""
        ...

    async def stat(self, key: str) -> ObjectInfo | None:
        """Size of an object, or ``None`` when it does not exist."""
        ...

    async def delete(self, key: str) -> None:
        """Remove an object; removing a missing object is not an error."""
        ...

    async def copy(self, source: str, destination: str) -> None:
        """Copy an object within the store (atomically at the destination)."""
        ...

    def list(self, prefix: str) -> AsyncIterator[str]:
        """Yield the keys that start with ``prefix``."""
        ...

    def local_file(self, key: str) -> AbstractAsyncContextManager[Path]:
        """A local, read-only file with the object's bytes for the duration of the context."""
        ...
