"""The embedded processor loop: the ingest processor on the embedded bus, in-process."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence

from pacsflow.errors import ServiceUnavailable
from pacsflow.pipeline.ingest import IngestContext, PreparedBatch
from pacsflow.pipeline.records import INGEST_TOPIC
from pacsflow.ports import Bus, Message
from pacsflow.ports.bus import Subscription
from streams.ingest import prepare_messages, process_messages

__all__ = ["INGEST_GROUP", "run_ingest_processor"]

log = logging.getLogger(__name__)

INGEST_GROUP = "pacsflow-ingest"


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
        ahead: asyncio.Task[_Ahead] | None = None
        try:
            while not stop.is_set():
                if ahead is None:
                    messages, prepared = await subscription.fetch(batch, timeout=0.5), None
                else:
                    (messages, prepared), ahead = await ahead, None
                if not messages:
                    continue
                ahead = asyncio.create_task(_read_ahead(subscription, batch, ctx))
                await process_messages(messages, ctx, bus, stop, prepared)
                await subscription.commit(messages)
        except ServiceUnavailable as exc:
            log.warning("ingest processor: %s; resuming from the last commit", exc)
            await asyncio.sleep(1.0)
        finally:
            if ahead is not None:
                await _drop(ahead)
            await subscription.close()


_Ahead = tuple[list[Message], PreparedBatch | None]


async def _read_ahead(subscription: Subscription, batch: int, ctx: IngestContext) -> _Ahead:
    """The next batch, fetched and validated while the one before completes."""
    messages = await subscription.fetch(batch, timeout=0.5)
    return messages, (await prepare_messages(messages, ctx) if messages else None)


async def _drop(ahead: asyncio.Task[_Ahead]) -> None:
    """Stop reading ahead; release what was read (its messages are delivered again)."""
    ahead.cancel()
    await asyncio.wait([ahead])
    if not ahead.cancelled() and ahead.exception() is None:
        _, prepared = ahead.result()
        if prepared is not None:
            await prepared.discard()
