"""STOW-RS Store Instances (PS3.18 10.5): stream parts in, publish them, report outcomes.

Each part is read as it arrives: its first bytes give the identifying attributes
(``read_part_header``), its bytes are hashed, kept inline when small or staged in the object
store when large (claim check), and accepted parts are published to the ``ingest`` topic keyed
by Study Instance UID. Nothing is acknowledged before the bus holds it durably. With the
``indexed`` consistency the response waits for each part's ingest outcome.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Literal

from pacsflow.config import Settings
from pacsflow.dicom.status import FailureReason
from pacsflow.dicom.uids import is_valid_uid
from pacsflow.errors import BadRequest, PayloadTooLarge, ServiceUnavailable
from pacsflow.media.multipart_in import PartEvent, parse_parts
from pacsflow.pipeline.keys import staging_key, staging_prefix
from pacsflow.pipeline.outcomes import OutcomeBoard, Waiter
from pacsflow.pipeline.records import INGEST_TOPIC, IngestRecord
from pacsflow.ports import Bus, ObjectStore
from pacsflow.stow.admission import (
    Placement,
    StudyPlacement,
    apply_event,
    check_media_type,
    ingest_record,
)
from pacsflow.stow.backpressure import IngestLag
from pacsflow.stow.confirm import publish_confirmed
from pacsflow.stow.inflight import InFlight
from pacsflow.stow.metadata_request import MetadataLimits, Refusal, metadata_instances
from pacsflow.stow.parts import PartLimits, StreamingPart
from pacsflow.stow.response import PartOutcome, StowResult
from pacsflow.telemetry import tracing
from pacsflow.telemetry.logs import REQUEST_ID

__all__ = ["StowService"]

log = logging.getLogger(__name__)

_BATCH_BYTES = 8 * 1024 * 1024


class StowService:
    """The Store Instances use case, shared by both modes."""

    def __init__(
        self,
        settings: Settings,
        bus: Bus,
        objects: ObjectStore,
        outcomes: OutcomeBoard,
        inflight: InFlight | None = None,
    ) -> None:
        self._settings = settings
        self._inflight = inflight
        self._bus = bus
        self._objects = objects
        self._outcomes = outcomes
        self._limits = PartLimits(
            settings.header_prefix_max_bytes, settings.resolved_inline_max_bytes()
        )
        self._backlog = IngestLag(bus, settings.stow_max_ingest_lag)
        self._metadata_limits = MetadataLimits(
            settings.stow_metadata_max_bytes,
            settings.stow_bulk_max_bytes,
            settings.resolved_inline_max_bytes(),
        )

    async def store_instances(
        self,
        body: AsyncIterator[bytes],
        boundary: str,
        study_uid: str | None,
        consistency: Literal["indexed", "durable"] | None = None,
        *,
        site: str,
        part_type: str = "application/dicom",
        placement: Placement | None = None,
    ) -> StowResult:
        """Store the parts of a multipart/related body in ``site``; ``study_uid`` for
        /studies/{study}; ``part_type`` is the request's ``type`` (PS3.18 10.5.1.4);
        ``placement`` files the parts elsewhere than in studies (PS3.18 12.5)."""
        if study_uid is not None and not is_valid_uid(study_uid, strict=False):
            raise BadRequest(f"{study_uid!r} is not a valid Study Instance UID")
        placement = placement or StudyPlacement(study_uid)
        await self._backlog.admit()  # before any byte is read or staged
        consistency = consistency or self._settings.stow_consistency
        request_id = REQUEST_ID.get() or uuid.uuid4().hex  # the HTTP request's, for the logs
        waiter = self._outcomes.register(request_id)
        # before anything is staged: a crash leaves the marker, and the next start deletes
        # what the request staged (pacsflow/stow/inflight.py)
        marker = self._inflight.begin(staging_prefix(site, request_id)) if self._inflight else None
        result = StowResult(
            study_uid=placement.target, consistency=consistency, resource=placement.resource
        )
        batch: list[IngestRecord] = []
        batch_bytes = 0
        refusal: ServiceUnavailable | None = None  # why the log refused a batch of this request
        part: StreamingPart | None = None
        received = 0
        received_parts = parse_parts(self._limited(body), boundary)
        incoming: AsyncIterator[PartEvent | Refusal] = (
            received_parts
            if part_type == "application/dicom"  # else metadata and bulk data: assembled instances
            else metadata_instances(received_parts, part_type, study_uid, self._metadata_limits)
        )
        try:
            async for event in incoming:
                if isinstance(event, Refusal):
                    event.record(result)
                elif event.kind == "begin":
                    part = StreamingPart(
                        len(result.parts) + 1, event.headers.get("content-type", "")
                    )
                    result.parts.append(PartOutcome(part.number))
                elif part is not None and event.kind == "data":
                    received += len(event.data)
                    await part.feed(
                        event.data,
                        self._limits,
                        self._objects,
                        staging_key(site, request_id, part.number),
                    )
                elif event.kind == "truncated":  # PS3.18 8.6.1.2: a malformed body, 400
                    await self._drop(batch)
                    raise BadRequest(_cut_short(len(result.parts), result))
                elif part is not None and event.kind == "end":
                    record = await self._finish(part, request_id, placement, result, site)
                    part = None
                    if record is not None:
                        waiter.expect(record.part)
                        batch.append(record)
                        batch_bytes += len(record.inline or b"")
                        if batch_bytes >= _BATCH_BYTES:
                            refusal = await self._publish(batch, result, waiter, refusal)
                            batch, batch_bytes = [], 0
            if batch:
                refusal = await self._publish(batch, result, waiter, refusal)
        except BaseException:
            if part is not None:
                await part.discard(self._objects)
            await self._drop(batch)  # staged parts of records not published
            self._end(marker)
            self._outcomes.release(request_id)
            raise
        self._end(marker)  # every staged part is named by a published record: none is swept
        if not result.parts:
            self._outcomes.release(request_id)
            raise BadRequest("the request holds no part")
        try:
            if consistency == "indexed" and waiter.futures:
                events = await waiter.wait(self._settings.stow_timeout_seconds)
                for number, ingest_event in events.items():
                    apply_event(result.parts[number - 1], ingest_event)
        finally:
            self._outcomes.release(request_id)
        log.info("STOW %s: %d parts, %d bytes", request_id, len(result.parts), received)
        return result

    def _end(self, marker: Path | None) -> None:
        if self._inflight is not None:
            self._inflight.end(marker)

    async def _limited(self, body: AsyncIterator[bytes]) -> AsyncIterator[bytes]:
        total = 0
        async for chunk in body:
            total += len(chunk)
            if total > self._settings.max_request_bytes:
                raise PayloadTooLarge(
                    f"the request exceeds {self._settings.max_request_bytes} bytes"
                    " (PACSFLOW_MAX_REQUEST_BYTES)"
                )
            yield chunk

    async def _finish(
        self,
        part: StreamingPart,
        request_id: str,
        placement: Placement,
        result: StowResult,
        site: str,
    ) -> IngestRecord | None:
        """Admit a complete part (a record to publish) or record why it failed."""
        outcome = result.parts[part.number - 1]
        if part.failure is None:
            part.failure = check_media_type(part.content_type)
        if part.failure is None and part.header is None:
            await part.header_from_whole_part(self._objects)
        if part.failure is None:
            await part.publish_staged()
        header = part.header
        if header is not None:  # only UIDs reach the response (not a NUL or a line break)
            outcome.sop_class_uid, outcome.sop_uid, outcome.study_uid = (
                uid if is_valid_uid(uid, strict=False) else ""
                for uid in (header.sop_class_uid, header.sop_uid, header.study_uid)
            )
        if part.failure is None and header is not None:
            placed = placement.place(header)
            if isinstance(placed, tuple):
                part.failure = placed
            else:
                header = placed
                outcome.study_uid = header.study_uid
        if part.failure is not None or header is None:
            reason, message = part.failure or (FailureReason.CANNOT_UNDERSTAND, "no header")
            outcome.fail(reason, message)
            await part.discard(self._objects)
            return None
        await part.settle(self._limits, self._objects, staging_key(site, request_id, part.number))
        return ingest_record(part, header, request_id, site)

    async def _drop(self, batch: list[IngestRecord]) -> None:
        """Forget records not published: their staged objects are deleted."""
        for record in batch:
            if record.staged_key is not None:
                await self._objects.delete(record.staged_key)
        batch.clear()

    async def _publish(
        self,
        batch: list[IngestRecord],
        result: StowResult,
        waiter: Waiter,
        refusal: ServiceUnavailable | None,
    ) -> ServiceUnavailable | None:
        """Publish ``batch`` (confirmed, ``pacsflow.stow.confirm``); return why the log refused
        it, or ``refusal`` unchanged once published.

        Nothing published yet: the refusal is the whole request's 503. Once an earlier batch is
        in the log (it will be stored), this batch's parts fail with Out of Resources (A700)
        instead, and so do the later batches without being sent: the response names what is
        stored (PS3.18 10.5.3, 202).
        """
        if refusal is None:
            version = self._settings.record_version
            try:
                staged = [r.staged_key for r in batch if r.staged_key is not None]
                await self._objects.sync(staged)
                with tracing.publishing(INGEST_TOPIC, len(batch)) as headers:
                    await publish_confirmed(
                        self._bus,
                        INGEST_TOPIC,
                        [(r.study_uid.encode(), r.to_bytes(version), headers) for r in batch],
                        self._settings.stow_publish_confirm_seconds,
                    )
            except ServiceUnavailable as exc:
                if not any(o.published for o in result.parts):
                    raise  # the whole request's 503: the caller drops the staged parts
                refusal = exc
            else:
                for record in batch:
                    outcome = result.parts[record.part - 1]
                    outcome.published = True
                    outcome.size = record.size
                    outcome.series_uid = record.series_uid
                return None
        for record in batch:
            waiter.forget(record.part)
            result.parts[record.part - 1].fail(
                FailureReason.OUT_OF_RESOURCES, f"not stored: the log refused it ({refusal})"
            )
        # not acknowledged: leave nothing staged behind; a record the log holds after all then
        # finds its staged part gone and is dead-lettered, not stored
        await self._drop(batch)
        return refusal


def _cut_short(number: int, result: StowResult) -> str:
    """Why a body that ends inside part ``number`` is refused, and what was kept before."""
    kept = [o.sop_uid or f"part {o.number}" for o in result.parts if o.published]
    stored = (
        f"; {len(kept)} earlier part(s) were already logged and will be stored: {', '.join(kept)}"
        if kept
        else "; nothing of it was stored"
    )
    return (
        f"the request body ended inside part {number} (no closing boundary, PS3.18 8.6.1.2)"
        + stored
    )
