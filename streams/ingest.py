"""The ingest processor: consume ``ingest`` records, run the pipeline step, emit outcomes.

Plain async functions over the bus port, so that the embedded runner and a Faust agent call
the same code. At-least-once: the caller commits offsets only after ``process_messages``
returned, i.e. after every record was stored and indexed (or dead-lettered).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence

from pacsflow.dicom.status import FailureReason
from pacsflow.errors import ServiceUnavailable
from pacsflow.pipeline.ingest import IngestContext, ingest_instance
from pacsflow.pipeline.records import (
    DEAD_LETTER_TOPIC,
    EVENTS_TOPIC,
    DeadLetter,
    IngestEvent,
    IngestRecord,
    RecordError,
)
from pacsflow.ports import Bus, Message

__all__ = ["process_message", "process_messages"]

log = logging.getLogger(__name__)

MAX_BACKOFF_SECONDS = 30.0


async def process_messages(
    messages: Sequence[Message], ctx: IngestContext, bus: Bus, stop: asyncio.Event | None = None
) -> list[str]:
    """Process a batch in order; return the staged keys to delete once offsets are committed."""
    staged: list[str] = []
    for message in messages:
        key = await process_message(message, ctx, bus, stop)
        if key is not None:
            staged.append(key)
    return staged


async def process_message(
    message: Message, ctx: IngestContext, bus: Bus, stop: asyncio.Event | None = None
) -> str | None:
    """Process one message, retrying backend failures with backoff; return its staged key."""
    try:
        record = IngestRecord.from_bytes(message.value)
    except RecordError as exc:
        await _dead_letter(bus, message, FailureReason.CANNOT_UNDERSTAND, str(exc), None)
        return None
    delay = 0.5
    while True:
        try:
            event = await ingest_instance(record, ctx)
            break
        except ServiceUnavailable as exc:
            log.warning(
                "ingest of %s: backend unavailable (%s); retry in %.1fs", record.sop_uid, exc, delay
            )
        except Exception as exc:  # a bug must not stall the partition: dead-letter the record
            log.exception("ingest of %s failed", record.sop_uid)
            event = IngestEvent.for_record(
                record,
                "failed",
                failure=int(FailureReason.PROCESSING_FAILURE),
                message=f"processing failure: {type(exc).__name__}",
            )
            break
        if stop is not None and stop.is_set():
            raise asyncio.CancelledError("stopping with the record unprocessed")
        await asyncio.sleep(delay)
        delay = min(delay * 2, MAX_BACKOFF_SECONDS)
    if event.status == "failed":
        await _dead_letter(
            bus, message, FailureReason(event.failure_reason or 0x0110), event.message, record
        )
    await bus.publish(EVENTS_TOPIC, record.study_uid.encode(), event.to_bytes())
    return record.staged_key


async def _dead_letter(
    bus: Bus, message: Message, reason: FailureReason, text: str, record: IngestRecord | None
) -> None:
    letter = DeadLetter(
        topic=message.topic,
        partition=message.partition,
        offset=message.offset,
        failure_reason=int(reason),
        message=text,
        record=record.summary() if record is not None else None,
    )
    await bus.publish(DEAD_LETTER_TOPIC, message.key, letter.to_bytes())
