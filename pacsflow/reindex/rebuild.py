"""The index is derived state: rebuild it from the stored objects (issue 23, item 3).

Every instance's Part 10 object (``{site}/studies/{study}/series/{series}/instances/{sop}.dcm``)
is read and parsed by the same validation ingest runs (``validate_instance``), so the documents
written are the ones ingest wrote: UIDs, SOP Class, transfer syntax, size, SHA-256 and the
attributes without bulk data.

Keys are visited in lexicographic order (the object store port's ``list`` order). Up to
``concurrency`` objects are read and parsed at once, in a window that hands them on in key
order; each batch is upserted while the next one is read, one upsert at a time, and after each
the batch's last key is written to a checkpoint file. Every key up to the checkpoint's is thus
indexed, and a run that stops resumes after it. Upserts are idempotent: a batch done twice
changes nothing.

Memory stays bounded: an object is read whole only up to ``WHOLE_READ`` bytes (one ranged GET,
no temporary file); a larger one is read from a local file (an S3 download), one at a time.
"""

from __future__ import annotations

import asyncio
import re
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Final

from pacsflow.dicom.header import PartRejected
from pacsflow.dicom.validate import validate_instance
from pacsflow.errors import ObjectNotFound
from pacsflow.nonpatient.resources import is_npi_site
from pacsflow.pipeline.ingest import instance_document, sha256_of
from pacsflow.pipeline.keys import instance_path
from pacsflow.ports import Index, InstanceDocument, ObjectStore

__all__ = ["BATCH", "CONCURRENCY", "WHOLE_READ", "Progress", "reindex"]

BATCH: Final = 500  # documents per upsert
CONCURRENCY: Final = 16  # objects read and parsed at once
PARSERS: Final = 2  # threads parsing at once (the parse holds the GIL most of the time)
WHOLE_READ: Final = 8 << 20  # objects up to this size are read into memory, larger from a file
_INSTANCE_KEY: Final = re.compile(r"^([^/]+)/studies/[^/]+/series/[^/]+/instances/[^/]+\.dcm$")
_TEMPLATE: Final = instance_path("{study}", "{series}", "{instance}")


@dataclass
class Progress:
    """What a run did so far: instances indexed, objects refused (with why), the last key
    done (every key up to it is indexed)."""

    indexed: int = 0
    refused: int = 0
    last_key: str = ""
    refusals: list[tuple[str, str]] = field(default_factory=list)  # (key, reason), the first 100


def _document(site: str, key: str, source: Path | bytes) -> InstanceDocument:
    """The index document of one stored object (``PartRejected`` if it is not an instance)."""
    size = source.stat().st_size if isinstance(source, Path) else len(source)
    instance = validate_instance(source, size, _TEMPLATE, non_patient=is_npi_site(site))
    return instance_document(site, instance, key, size, sha256_of(source))


class _Reader:
    """Reads and parses one object: small ones whole, large ones from a file one at a time;
    parses in at most ``PARSERS`` threads (more only contend for the interpreter's lock)."""

    def __init__(self, objects: ObjectStore) -> None:
        self._objects = objects
        self._large = asyncio.Semaphore(1)
        self._parsers = asyncio.Semaphore(PARSERS)

    async def _parse(self, site: str, key: str, source: Path | bytes) -> InstanceDocument:
        async with self._parsers:
            return await asyncio.to_thread(_document, site, key, source)

    async def __call__(self, site: str, key: str) -> InstanceDocument | str | None:
        """The object's document, why it is not an instance, or ``None`` once it is gone."""
        try:
            head = await self._objects.read_range(key, 0, WHOLE_READ)
            if len(head) < WHOLE_READ:
                return await self._parse(site, key, head)
            del head
            async with self._large, self._objects.local_file(key) as path:
                return await self._parse(site, key, path)
        except PartRejected as exc:
            return f"{exc}"
        except ObjectNotFound:  # deleted since it was listed
            return None


class _Upserts:
    """Batches upserted in order, one at a time, each while the next is read; the checkpoint
    is written after each."""

    def __init__(
        self,
        index: Index,
        checkpoint: Path | None,
        progress: Progress,
        report: Callable[[Progress], None],
    ) -> None:
        self._index, self._checkpoint = index, checkpoint
        self._progress, self._report = progress, report
        self._pending: asyncio.Task[None] | None = None

    async def submit(self, batch: list[InstanceDocument], last_key: str) -> None:
        """Upsert ``batch`` (its last key ``last_key``) once the one before is done."""
        await self.wait()
        self._pending = asyncio.create_task(self._upsert(batch, last_key))

    async def wait(self) -> None:
        """Wait for the batch being upserted (its error, if it failed)."""
        pending, self._pending = self._pending, None
        if pending is not None:
            await pending

    async def cancel(self) -> None:
        """Stop the batch being upserted (a run that failed; upserts are idempotent)."""
        pending, self._pending = self._pending, None
        if pending is not None:
            pending.cancel()
            await asyncio.gather(pending, return_exceptions=True)

    async def _upsert(self, batch: list[InstanceDocument], last_key: str) -> None:
        await self._index.upsert_instances(batch)
        self._progress.indexed += len(batch)
        self._progress.last_key = last_key
        if self._checkpoint is not None:
            await asyncio.to_thread(self._checkpoint.write_text, last_key)
        self._report(self._progress)


async def reindex(
    objects: ObjectStore,
    index: Index,
    *,
    checkpoint: Path | None = None,
    report: Callable[[Progress], None] = lambda _: None,
    concurrency: int = CONCURRENCY,
    batch_size: int = BATCH,
) -> Progress:
    """Upsert a document for every stored instance, ``batch_size`` at a time, reading up to
    ``concurrency`` objects at once; resume after ``checkpoint``'s key if it exists, write it
    after each batch and delete it once the run is complete."""
    if concurrency < 1 or batch_size < 1:
        raise ValueError(f"concurrency {concurrency} and batch size {batch_size}: not both >= 1")
    after = await asyncio.to_thread(_resume_after, checkpoint)
    progress = Progress(last_key=after)
    read = _Reader(objects)
    upserts = _Upserts(index, checkpoint, progress, report)
    window: deque[tuple[str, asyncio.Task[InstanceDocument | str | None]]] = deque()
    batch: list[InstanceDocument] = []
    taken = after  # the last key handed on

    async def take() -> None:
        """Hand on the window's first object (in key order) to the batch."""
        nonlocal batch, taken
        taken, task = window.popleft()
        result = await task
        if isinstance(result, str):
            progress.refused += 1
            if len(progress.refusals) < 100:
                progress.refusals.append((taken, result))
        elif result is not None:
            batch.append(result)
        if len(batch) >= batch_size:
            await upserts.submit(batch, taken)
            batch = []

    try:
        async for key in objects.list(""):
            match = _INSTANCE_KEY.match(key)
            if match is None or key <= after:
                continue
            window.append((key, asyncio.create_task(read(match[1], key))))
            if len(window) >= concurrency:
                await take()
        while window:
            await take()
        await upserts.wait()
        if batch:
            await upserts.submit(batch, taken)
            await upserts.wait()
    finally:
        for _, task in window:
            task.cancel()
        await asyncio.gather(*(task for _, task in window), return_exceptions=True)
        await upserts.cancel()
    if checkpoint is not None:
        await asyncio.to_thread(checkpoint.unlink, missing_ok=True)
    return progress


def _resume_after(checkpoint: Path | None) -> str:
    """The last key a stopped run finished with ("" to start from the first)."""
    return checkpoint.read_text().strip() if checkpoint and checkpoint.exists() else ""
