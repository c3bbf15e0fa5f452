"""The index is derived state: rebuild it from the stored objects (issue 23, item 3).

Every instance's Part 10 object (``{site}/studies/{study}/series/{series}/instances/{sop}.dcm``)
is read and parsed by the same validation ingest runs (``validate_instance``), so the documents
written are the ones ingest wrote: UIDs, SOP Class, transfer syntax, size, SHA-256 and the
attributes without bulk data. Keys are visited in lexicographic order (the object store port's
``list`` order) in batches; after each batch the last key is written to a checkpoint file, so a
run that stops resumes after it. Upserts are idempotent: a batch done twice changes nothing.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Final

from pacsflow.dicom.header import PartRejected
from pacsflow.dicom.validate import validate_instance
from pacsflow.nonpatient.resources import is_npi_site
from pacsflow.pipeline.ingest import instance_document, sha256_of
from pacsflow.pipeline.keys import instance_path
from pacsflow.ports import Index, InstanceDocument, ObjectStore

__all__ = ["BATCH", "Progress", "reindex"]

BATCH: Final = 200
_INSTANCE_KEY: Final = re.compile(r"^([^/]+)/studies/[^/]+/series/[^/]+/instances/[^/]+\.dcm$")
_TEMPLATE: Final = instance_path("{study}", "{series}", "{instance}")


@dataclass
class Progress:
    """What a run did so far: instances indexed, objects refused, the last key done."""

    indexed: int = 0
    refused: int = 0
    last_key: str = ""


def _document(site: str, key: str, path: Path) -> InstanceDocument:
    """The index document of one stored object (``PartRejected`` if it is not an instance)."""
    size = path.stat().st_size
    instance = validate_instance(path, size, _TEMPLATE, non_patient=is_npi_site(site))
    return instance_document(site, instance, key, size, sha256_of(path))


async def reindex(
    objects: ObjectStore,
    index: Index,
    *,
    checkpoint: Path | None = None,
    report: Callable[[Progress], None] = lambda _: None,
) -> Progress:
    """Upsert a document for every stored instance; resume after ``checkpoint``'s key if it
    exists, write it after each batch and delete it once the run is complete."""
    after = await asyncio.to_thread(_resume_after, checkpoint)
    progress = Progress(last_key=after)
    batch: list[InstanceDocument] = []

    async def flush(last_key: str) -> None:
        await index.upsert_instances(batch)
        progress.indexed += len(batch)
        progress.last_key = last_key
        batch.clear()
        if checkpoint is not None:
            await asyncio.to_thread(checkpoint.write_text, last_key)
        report(progress)

    key = after
    async for key in objects.list(""):
        match = _INSTANCE_KEY.match(key)
        if match is None or key <= after:
            continue
        async with objects.local_file(key) as path:
            try:
                batch.append(await asyncio.to_thread(_document, match[1], key, path))
            except PartRejected:
                progress.refused += 1
        if len(batch) >= BATCH:
            await flush(key)
    await flush(key)
    if checkpoint is not None:
        await asyncio.to_thread(checkpoint.unlink, missing_ok=True)
    return progress


def _resume_after(checkpoint: Path | None) -> str:
    """The last key a stopped run finished with ("" to start from the first)."""
    return checkpoint.read_text().strip() if checkpoint and checkpoint.exists() else ""
