"""Write record batches produced by async code as a partitioned Parquet dataset (pyarrow).

``pyarrow.dataset.write_dataset`` takes a blocking iterator; the index is read with async
calls. The writer runs in a thread and takes batches from a bounded queue that the async
side fills, so memory holds a few batches whatever the size of the table.
"""

from __future__ import annotations

import asyncio
import queue
from collections.abc import Iterator
from pathlib import Path
from typing import Final

import pyarrow as pa
import pyarrow.dataset as ds

__all__ = ["DatasetWriter"]

_END: Final = object()
_QUEUED: Final = 8  # batches waiting for the writer thread
_ROWS_PER_GROUP: Final = (1_024, 65_536)  # min, max rows of a Parquet row group


class DatasetWriter:
    """A Hive-partitioned Parquet dataset under ``directory``, written from another thread."""

    def __init__(self, directory: Path, schema: pa.Schema, partitioning: pa.Schema) -> None:
        self._directory = directory
        self._schema = schema
        self._partitioning = ds.partitioning(partitioning, flavor="hive")
        self._queue: queue.Queue[object] = queue.Queue(_QUEUED)
        self._thread: asyncio.Task[None] | None = None

    async def __aenter__(self) -> DatasetWriter:
        self._thread = asyncio.create_task(asyncio.to_thread(self._write))
        return self

    async def __aexit__(self, exc_type: object, exc: object, tb: object) -> None:
        await self._put(_END)
        assert self._thread is not None
        await self._thread

    async def write(self, batch: pa.RecordBatch) -> None:
        """Queue a batch (waits while the queue is full)."""
        if batch.num_rows:
            await self._put(batch)

    async def _put(self, item: object) -> None:
        assert self._thread is not None
        while True:
            if self._thread.done():
                await self._thread  # raises the writer's error
                raise RuntimeError("the Parquet writer stopped early")
            try:
                self._queue.put_nowait(item)
                return
            except queue.Full:
                await asyncio.sleep(0.005)

    def _batches(self) -> Iterator[pa.RecordBatch]:
        while (item := self._queue.get()) is not _END:
            assert isinstance(item, pa.RecordBatch)
            yield item

    def _write(self) -> None:
        low, high = _ROWS_PER_GROUP
        ds.write_dataset(
            self._batches(),
            self._directory,
            schema=self._schema,
            format="parquet",
            partitioning=self._partitioning,
            basename_template="part-{i}.parquet",
            existing_data_behavior="error",
            min_rows_per_group=low,
            max_rows_per_group=high,
        )
