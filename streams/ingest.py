"""The ingest processor: consume ``ingest`` records, run the pipeline step, emit outcomes.

Plain async functions over the bus port, so that the embedded runner and a Faust agent call
the same code. A batch of messages is processed together (``ingest_batch``: one validation
hop, one object-store group commit, one index transaction) and its outcomes are published in
one ``publish_batch`` per topic. At-least-once: the caller commits offsets only after
``process_messages`` returned, i.e. after every record was stored and indexed (or
dead-lettered).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence

from pacsflow.dicom.status import FailureReason
from pacsflow.errors import ServiceUnavailable
from pacsflow.pipeline.ingest import IngestContext, ingest_batch
from pacsflow.pipeline.records import (
    DEAD_LETTER_TOPIC,
    EVENTS_TOPIC,
    DeadLetter,
    IngestEvent,
    IngestRecord,
    RecordError,
)
from pacsflow.ports import Bus, Message
from pacsflow.ports.bus import Headers
from pacsflow.telemetry import metrics, tracing

__all__ = ["process_messages"]

log = logging.getLogger(__name__)

MAX_BACKOFF_SECONDS = 30.0


async def process_messages(
    messages: Sequence[Message], ctx: IngestContext, bus: Bus, stop: asyncio.Event | None = None
) -> list[IngestEvent]:
    """Process a batch, retrying backend failures with backoff; return the outcome events.

    Messages that hold no record are dead-lettered at once. A batch that fails with an
    unexpected error (a bug) is processed again record by record, so that only the record
    that triggers it is failed (Failure Reason 0110) and the partition does not stall.
    """
    letters: list[tuple[bytes, bytes, Headers]] = []
    pending: list[tuple[Message, IngestRecord]] = []
    for message in messages:
        try:
            pending.append((message, IngestRecord.from_bytes(message.value)))
        except RecordError as exc:
            letters.append(_letter(message, FailureReason.CANNOT_UNDERSTAND, str(exc), None))
    attributes = [{"dicom.sop_instance_uid": r.sop_uid} for _, r in pending]
    with tracing.consumed([m.headers for m, _ in pending], attributes) as spans:
        parents = tracing.contexts_of(spans)
        events = await _with_retries([r for _, r in pending], ctx, stop, parents)
        for (message, record), event, span in zip(pending, events, spans, strict=True):
            if event.status == "failed":
                reason = FailureReason(event.failure_reason or FailureReason.PROCESSING_FAILURE)
                letters.append(_letter(message, reason, event.message, record))
                tracing.failed(span, f"Failure Reason {int(reason):04X}")
        await bus.publish_batch(DEAD_LETTER_TOPIC, letters)
        with tracing.each(parents, "event"):
            outcomes = [
                (e.study_uid.encode(), e.to_bytes(), tracing.headers_of(parent))
                for e, parent in zip(events, parents, strict=True)
            ]
            await bus.publish_batch(EVENTS_TOPIC, outcomes)
    received = [
        (e.status, e.failure_reason, r.received_at)
        for (_, r), e in zip(pending, events, strict=True)
    ]
    metrics.ingest_outcomes(received, {m.partition: r.received_at for m, r in pending})
    metrics.dead_letters(len(letters))
    return events


async def _with_retries(
    records: list[IngestRecord],
    ctx: IngestContext,
    stop: asyncio.Event | None,
    parents: list[tracing.Context],
) -> list[IngestEvent]:
    """``ingest_batch`` until the backends answer; a bug splits the batch (see above)."""
    if not records:
        return []
    delay = 0.5
    while True:
        try:
            return await ingest_batch(records, ctx, parents)
        except ServiceUnavailable as exc:
            metrics.backend_error(exc)
            log.warning("ingest of %d records: backend unavailable (%s); retry in %.1fs",
                        len(records), exc, delay)  # fmt: skip
        except Exception as exc:
            if len(records) > 1:
                log.warning("ingest of %d records failed (%r); one by one", len(records), exc)
                return [
                    e
                    for r, p in zip(records, parents, strict=True)
                    for e in await _with_retries([r], ctx, stop, [p])
                ]
            ids = {"request_id": records[0].request_id}  # the STOW request's
            log.exception("ingest of %s failed", records[0].sop_uid, extra=ids)
            return [
                IngestEvent.for_record(
                    records[0],
                    "failed",
                    failure=int(FailureReason.PROCESSING_FAILURE),
                    message=f"processing failure: {type(exc).__name__}",
                )
            ]
        if stop is not None and stop.is_set():
            raise asyncio.CancelledError("stopping with the records unprocessed")
        await asyncio.sleep(delay)
        delay = min(delay * 2, MAX_BACKOFF_SECONDS)


def _letter(
    message: Message, reason: FailureReason, text: str, record: IngestRecord | None
) -> tuple[bytes, bytes, Headers]:
    letter = DeadLetter(
        topic=message.topic,
        partition=message.partition,
        offset=message.offset,
        failure_reason=int(reason),
        message=text,
        record=record.summary() if record is not None else None,
    )
    return message.key, letter.to_bytes(), ()
