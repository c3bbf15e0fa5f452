"""Bulk-load the pacsflow embedded index through the index port (no HTTP, no object files).

``SqliteIndex.upsert_instances`` receives batches of ``InstanceDocument`` exactly as ingest
would write them; the objects themselves are not stored, so QIDO works and WADO does not.
Documents are built in worker processes (pydicom encoding is the slow part) while the
index writes the previous batch.
"""

from __future__ import annotations

import asyncio
import sys
import time
from collections.abc import Iterator, Sequence
from concurrent.futures import Future, ProcessPoolExecutor
from dataclasses import dataclass
from pathlib import Path

from bench.synth import SITE, Corpus, Study, documents
from pacsflow.adapters.sqlite_index import SqliteIndex
from pacsflow.ports.index import InstanceDocument

__all__ = ["LoadReport", "load_index"]


@dataclass(frozen=True, slots=True)
class LoadReport:
    """What a load did and how fast."""

    instances: int
    studies: int
    seconds: float

    @property
    def rate(self) -> float:
        """Instances per second."""
        return self.instances / self.seconds if self.seconds else 0.0


def _documents(studies: Sequence[Study]) -> list[InstanceDocument]:
    return [doc for study in studies for doc in documents(study, SITE)]


def _chunks(corpus: Corpus, batch_size: int) -> Iterator[tuple[Study, ...]]:
    """Runs of whole studies holding about ``batch_size`` instances."""
    chunk: list[Study] = []
    count = 0
    for study in corpus.studies:
        chunk.append(study)
        count += study.instance_count
        if count >= batch_size:
            yield tuple(chunk)
            chunk, count = [], 0
    if chunk:
        yield tuple(chunk)


async def load_index(
    corpus: Corpus,
    index_path: Path,
    batch_size: int = 1000,
    workers: int = 1,
    progress_every: float = 10.0,
) -> LoadReport:
    """Upsert every instance of ``corpus`` into the SQLite index at ``index_path``."""
    index = SqliteIndex(index_path)
    await index.start()
    total = corpus.instance_count
    done = 0
    started = last = time.perf_counter()
    loop = asyncio.get_running_loop()
    try:
        with ProcessPoolExecutor(max_workers=workers) as pool:
            pending: list[Future[list[InstanceDocument]]] = []
            chunks = _chunks(corpus, batch_size)
            for chunk in chunks:
                pending.append(pool.submit(_documents, chunk))
                if len(pending) >= workers * 2:
                    break
            while pending:
                docs = await asyncio.wrap_future(pending.pop(0), loop=loop)
                next_chunk = next(chunks, None)
                if next_chunk is not None:
                    pending.append(pool.submit(_documents, next_chunk))
                await index.upsert_instances(docs)
                done += len(docs)
                now = time.perf_counter()
                if now - last >= progress_every:
                    last = now
                    rate = done / (now - started)
                    print(
                        f"pacsflow index: {done}/{total} instances, {rate:.0f}/s,"
                        f" eta {(total - done) / rate:.0f}s",
                        file=sys.stderr,
                        flush=True,
                    )
    finally:
        await index.close()
    return LoadReport(done, len(corpus.studies), time.perf_counter() - started)
