"""The embedded processor loop: the ingest processor on the embedded bus, in-process."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence

from pacsflow.errors import ServiceUnavailable
from pacsflow.pipeline.ingest import IngestContext
from pacsflow.pipeline.records import INGEST_GROUP, INGEST_TOPIC
from pacsflow.ports import Bus
from streams.ingest import process_messages

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

    When a backend fails, the subscription is reopened after a pause: the uncommitted batch is
    delivered again and processed idempotently.
    """
    while not stop.is_set():
        subscription = await bus.subscribe(INGEST_TOPIC, INGEST_GROUP, partitions=partitions)
        try:
            while not stop.is_set():
                messages = await subscription.fetch(batch, timeout=0.5)
                if not messages:
                    continue
                await process_messages(messages, ctx, bus, stop)
                await subscription.commit(messages)
        except ServiceUnavailable as exc:
            log.warning("ingest processor: %s; resuming from the last commit", exc)
            await asyncio.sleep(1.0)
        finally:
            await subscription.close()
