"""The ingest processor: consume ``ingest`` records, run the pipeline step, emit outcomes.

Plain async functions over the bus port, so that the embedded runner and a Faust agent call
the same code. A batch of messages is processed together (``ingest_batch``: one validation
hop, one object-store group commit, one index transaction) and its outcomes are published in
one ``publish_batch`` per topic. A DELETE record among them is applied in its place
(``pacsflow.pipeline.delete.process_records``): after the stores before it, before those
after. At-least-once: the caller commits offsets only after ``process_messages`` returned,
i.e. after every record was stored and indexed, or deleted (or dead-lettered).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence

from pacsflow.dicom.status import FailureReason
from pacsflow.errors import ServiceUnavailable
from pacsflow.pipeline.delete import process_records
from pacsflow.pipeline.ingest import IngestContext, PreparedBatch, prepare_batch
from pacsflow.pipeline.records import (
    DEAD_LETTER_TOPIC,
    EVENTS_TOPIC,
    DeadLetter,
    DeleteRecord,
    IngestEvent,
    IngestRecord,
    RecordError,
    decode_ingest,
)
from pacsflow.ports import Bus, Message
from pacsflow.ports.bus import Headers
from pacsflow.telemetry import metrics, tracing

__all__ = ["prepare_messages", "process_messages"]

log = logging.getLogger(__name__)

MAX_BACKOFF_SECONDS = 30.0


async def prepare_messages(messages: Sequence[Message], ctx: IngestContext) -> PreparedBatch | None:
    """Locate and validate the records of ``messages`` ahead (``prepare_batch``); ``None``
    for a batch with a DELETE record (applied in its place, so nothing is read ahead)."""
    pending, _ = _decode(messages)
    stores = [r for _, r in pending if isinstance(r, IngestRecord)]
    if len(stores) < len(pending):
        return None
    return await prepare_batch(stores, ctx)


async def process_messages(
    messages: Sequence[Message],
    ctx: IngestContext,
    bus: Bus,
    stop: asyncio.Event | None = None,
    prepared: PreparedBatch | None = None,
) -> list[IngestEvent]:
    """Process a batch, retrying backend failures with backoff; return the outcome events.

    Messages that hold no record are dead-lettered at once. A batch that fails with an
    unexpected error (a bug) is processed again record by record, so that only the record
    that triggers it is failed (Failure Reason 0110) and the partition does not stall.
    ``prepared``: the batch read ahead by ``prepare_messages`` (its first attempt only).
    """
    pending, letters = _decode(messages)
    records = [r for _, r in pending]
    attributes = [{"dicom.sop_instance_uid": r.sop_uid or ""} for r in records]
    with tracing.consumed([m.headers for m, _ in pending], attributes) as spans:
        parents = tracing.contexts_of(spans)
        events: list[IngestEvent] | None = None
        if prepared is not None:
            try:
                events = await process_records(records, ctx, prepared, parents)
            except Exception as exc:  # retried below from the start, as any failed batch
                log.warning("ingest of %d records read ahead failed (%r)", len(records), exc)
        if events is None:
            events = await _with_retries(records, ctx, stop, parents)
        for (message, record), event, span in zip(pending, events, spans, strict=True):
            if event.status == "failed":
                reason = FailureReason(event.failure_reason or FailureReason.PROCESSING_FAILURE)
                letters.append(_letter(message, reason, event.message, record))
                tracing.failed(span, f"Failure Reason {int(reason):04X}")
        await _publish(bus, DEAD_LETTER_TOPIC, letters, stop)
        with tracing.each(parents, "event"):
            outcomes = [
                (e.study_uid.encode(), e.to_bytes(), tracing.headers_of(parent))
                for e, parent in zip(events, parents, strict=True)
            ]
            await _publish(bus, EVENTS_TOPIC, outcomes, stop)
    stores = [
        (message, record, event)
        for (message, record), event in zip(pending, events, strict=True)
        if isinstance(record, IngestRecord)
    ]
    received = [(e.status, e.failure_reason, r.received_at) for _, r, e in stores]
    metrics.ingest_outcomes(received, {m.partition: r.received_at for m, r, _ in stores})
    metrics.dead_letters(len(letters))
    return events


def _decode(
    messages: Sequence[Message],
) -> tuple[list[tuple[Message, IngestRecord | DeleteRecord]], list[tuple[bytes, bytes, Headers]]]:
    """The records of ``messages``, and the dead letters of those that hold none."""
    letters: list[tuple[bytes, bytes, Headers]] = []
    pending: list[tuple[Message, IngestRecord | DeleteRecord]] = []
    for message in messages:
        try:
            pending.append((message, decode_ingest(message.value)))
        except RecordError as exc:
            letters.append(_letter(message, FailureReason.CANNOT_UNDERSTAND, str(exc), None))
    return pending, letters


async def _with_retries(
    records: list[IngestRecord | DeleteRecord],
    ctx: IngestContext,
    stop: asyncio.Event | None,
    parents: list[tracing.Context],
) -> list[IngestEvent]:
    """``process_records`` until the backends answer; a bug splits the batch (see above)."""
    if not records:
        return []
    delay = 0.5
    while True:
        try:
            return await process_records(records, ctx, None, parents)
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
            ids = {"request_id": records[0].request_id}  # the STOW or DELETE request's
            uid = records[0].sop_uid or records[0].study_uid
            log.exception("ingest of %s failed", uid, extra=ids)
            failure, text = int(FailureReason.PROCESSING_FAILURE), type(exc).__name__
            if isinstance(records[0], DeleteRecord):
                return [records[0].event("failed", f"processing failure: {text}", failure)]
            return [
                IngestEvent.for_record(
                    records[0], "failed", failure=failure, message=f"processing failure: {text}"
                )
            ]
        delay = await _pause(delay, stop)


async def _publish(
    bus: Bus, topic: str, items: Sequence[tuple[bytes, bytes, Headers]], stop: asyncio.Event | None
) -> None:
    """Publish the batch's outcomes until the bus answers: raised, the error ended the Faust
    agent with the batch unacknowledged, and the next rebalance waited for it forever (a
    broker or object store restart in the chaos trials, issue 23)."""
    delay = 0.5
    while True:
        try:
            await bus.publish_batch(topic, items)
            return
        except ServiceUnavailable as exc:
            metrics.backend_error(exc)
            log.warning("publishing %d records to %s failed (%s); retry in %.1fs",
                        len(items), topic, exc, delay)  # fmt: skip
        delay = await _pause(delay, stop)


async def _pause(delay: float, stop: asyncio.Event | None) -> float:
    """Sleep ``delay`` before a retry (unless stopping); the next, doubled, bounded delay."""
    if stop is not None and stop.is_set():
        raise asyncio.CancelledError("stopping with the records unprocessed")
    await asyncio.sleep(delay)
    return min(delay * 2, MAX_BACKOFF_SECONDS)


def _letter(
    message: Message,
    reason: FailureReason,
    text: str,
    record: IngestRecord | DeleteRecord | None,
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
