"""The embedded processor loop: the ingest processor on the embedded bus, in-process."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence

from pacsflow.errors import ServiceUnavailable
from pacsflow.pipeline.ingest import IngestContext, PreparedBatch, merge_prepared
from pacsflow.pipeline.records import INGEST_GROUP, INGEST_TOPIC
from pacsflow.ports import Bus, Message
from pacsflow.ports.bus import Subscription
from streams.ingest import prepare_messages, process_messages

__all__ = ["INGEST_GROUP", "run_ingest_processor"]

log = logging.getLogger(__name__)


async def run_ingest_processor(
    bus: Bus,
    ctx: IngestContext,
    stop: asyncio.Event,
    batch: int = 64,
    partitions: Sequence[int] | None = None,
) -> None:
    """Consume ``ingest`` (its ``partitions``, all by default) until ``stop`` is set; commit
    each batch after it is processed (one group commit per batch: ``process_messages``).

    While a batch is written, indexed and committed, the next one is fetched and validated
    (``prepare_messages``), so validation's CPU overlaps the fsyncs; batches still complete
    and commit one after the other, in order. When a backend fails, the subscription is
    reopened after a pause: the uncommitted batches are delivered again and processed
    idempotently.
    """
    while not stop.is_set():
        subscription = await bus.subscribe(INGEST_TOPIC, INGEST_GROUP, partitions=partitions)
        ahead: _ReadAhead | None = None
        chunks: list[_Chunk]
        try:
            while not stop.is_set():
                if ahead is None:
                    chunks = [(await subscription.fetch(batch, timeout=0.5), None)]
                else:
                    chunks, ahead = await ahead.collect(), None
                chunks = [(m, p) for m, p in chunks if m]
                if not chunks:
                    continue
                ahead = _ReadAhead(subscription, batch, ctx)
                for messages, prepared in chunks:
                    await process_messages(messages, ctx, bus, stop, prepared)
                    await subscription.commit(messages)
        except ServiceUnavailable as exc:
            log.warning("ingest processor: %s; resuming from the last commit", exc)
            await asyncio.sleep(1.0)
        finally:
            if ahead is not None:
                await ahead.drop()
            await subscription.close()


_Chunk = tuple[list[Message], PreparedBatch | None]
_MORE_SECONDS = 0.02  # how long a fetch after the first waits while the batch before completes


class _ReadAhead:
    """The messages fetched and validated while the batch before completes: up to ``batch``
    of them, merged into one prepared batch where their SOP Instance UIDs allow it."""

    def __init__(self, subscription: Subscription, batch: int, ctx: IngestContext) -> None:
        self._chunks: list[_Chunk] = []
        self._done = asyncio.Event()
        self._task = asyncio.create_task(self._run(subscription, batch, ctx))

    async def _run(self, subscription: Subscription, batch: int, ctx: IngestContext) -> None:
        count = 0
        while count < batch:
            timeout = _MORE_SECONDS if self._chunks else 0.5
            messages = await subscription.fetch(batch - count, timeout=timeout)
            if messages:
                count += len(messages)
                self._add(messages, await prepare_messages(messages, ctx))
            if self._done.is_set() and (self._chunks or not messages):
                return

    def _add(self, messages: list[Message], prepared: PreparedBatch | None) -> None:
        if self._chunks:
            last, before = self._chunks[-1]
            if prepared is not None and before is not None:
                merged = merge_prepared(before, prepared)
                if merged is not None:
                    self._chunks[-1] = (last + messages, merged)
                    return
        self._chunks.append((messages, prepared))

    async def collect(self) -> list[_Chunk]:
        """What was read ahead, in order (once the batch before completed)."""
        self._done.set()
        await self._task
        return self._chunks

    async def drop(self) -> None:
        """Stop reading ahead; release what was read (its messages are delivered again)."""
        self._task.cancel()
        await asyncio.wait([self._task])
        for _, prepared in self._chunks:
            if prepared is not None:
                await prepared.discard()
