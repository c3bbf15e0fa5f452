"""The thumbnail processor: consume ``events``, make the thumbnails of the series stored.

A second consumer of the ingest outcomes, beside the STOW front ends that wait for them: the
consumer group ``pacsflow-thumbnails`` (embedded runner) or the Faust worker's group reads
every ``IngestEvent`` and calls the core step ``pacsflow.wado.thumbnails.make_series_thumbnails``.
Best effort, in both modes: an unreadable event is skipped, and a batch a backend failed is
skipped too (its thumbnails are rendered on request).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence
from typing import Final

from pacsflow.errors import ServiceUnavailable
from pacsflow.pipeline.records import EVENTS_TOPIC, IngestEvent, RecordError
from pacsflow.ports import Bus, Index, Message, ObjectStore
from pacsflow.wado.thumbnails import make_series_thumbnails

__all__ = ["THUMBNAIL_GROUP", "make_thumbnails_of", "run_thumbnail_processor"]

log = logging.getLogger(__name__)

THUMBNAIL_GROUP = "pacsflow-thumbnails"
# While ingest goes on, the events of a burst are gathered (until none comes for
# GATHER_SECONDS, or GATHER_MAX of them) so that a growing series gets its thumbnail rendered
# once for the burst, not once for every batch of the processor: the thumbnail is made for the
# same (last) middle instance, with less CPU taken from ingest.
GATHER_SECONDS: Final = 0.5
GATHER_MAX: Final = 1024


async def make_thumbnails_of(
    messages: Sequence[Message], index: Index, objects: ObjectStore
) -> int:
    """Make the thumbnails the events in ``messages`` call for; how many were made."""
    events = []
    for message in messages:
        try:
            events.append(IngestEvent.from_bytes(message.value))
        except RecordError as exc:
            log.warning(
                "thumbnails: event at %s/%d skipped: %s", message.topic, message.offset, exc
            )
    return await make_series_thumbnails(events, index, objects)


async def run_thumbnail_processor(
    bus: Bus,
    index: Index,
    objects: ObjectStore,
    stop: asyncio.Event,
    batch: int = 64,
    partitions: Sequence[int] | None = None,
) -> None:
    """Consume ``events`` (its ``partitions``, all by default) until ``stop`` is set, committing
    each batch once handled (a batch a backend failed is skipped: rendered on request)."""
    subscription = await bus.subscribe(EVENTS_TOPIC, THUMBNAIL_GROUP, partitions=partitions)
    try:
        while not stop.is_set():
            messages = await subscription.fetch(batch, timeout=0.5)
            if not messages:
                continue
            while len(messages) < GATHER_MAX and not stop.is_set():
                more = await subscription.fetch(batch, timeout=GATHER_SECONDS)
                if not more:
                    break
                messages += more
            try:
                await make_thumbnails_of(messages, index, objects)
            except ServiceUnavailable as exc:
                log.warning("thumbnails of %d events skipped: %s", len(messages), exc)
            await subscription.commit(messages)
    finally:
        await subscription.close()
