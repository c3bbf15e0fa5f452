"""STOW-RS Store Instances (PS3.18 10.5): stream parts in, publish them, report outcomes.

Each part is read as it arrives: its first bytes give the identifying attributes
(``read_part_header``), its bytes are hashed, kept inline when small or staged in the object
store when large (claim check), and accepted parts are published to the ``ingest`` topic keyed
by Study Instance UID. Nothing is acknowledged before the bus holds it durably. With the
``indexed`` consistency the response waits for each part's ingest outcome.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import logging
import uuid
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Literal

from pacsflow.config import Settings
from pacsflow.dicom.header import (
    HeaderIncomplete,
    PartHeader,
    PartRejected,
    read_file_header,
    read_part_header,
)
from pacsflow.dicom.status import FailureReason
from pacsflow.dicom.uids import NON_PATIENT_SOP_CLASSES, is_valid_uid
from pacsflow.errors import BadRequest, PayloadTooLarge, ServiceUnavailable
from pacsflow.keys import staging_key
from pacsflow.multipart import PartEvent, media_type_parameters, parse_parts
from pacsflow.outcomes import OutcomeBoard
from pacsflow.ports import Bus, ObjectStore, ObjectWriter
from pacsflow.records import INGEST_TOPIC, IngestEvent, IngestRecord
from pacsflow.stow_response import PartOutcome, StowResult

__all__ = ["StowService"]

log = logging.getLogger(__name__)

_PART_TYPES = frozenset({"application/dicom", "application/octet-stream"})
_BATCH_BYTES = 8 * 1024 * 1024


@dataclass(slots=True)
class _Part:
    """A part while it streams in."""

    number: int
    content_type: str
    prefix: bytearray = field(default_factory=bytearray)
    header: PartHeader | None = None
    size: int = 0
    sha256: hashlib._Hash = field(default_factory=hashlib.sha256)
    inline: bytearray | None = field(default_factory=bytearray)
    staged_key: str | None = None
    writer: ObjectWriter | None = None
    stack: AsyncExitStack | None = None
    failure: tuple[FailureReason, str] | None = None


class StowService:
    """The Store Instances use case, shared by both modes."""

    def __init__(
        self, settings: Settings, bus: Bus, objects: ObjectStore, outcomes: OutcomeBoard
    ) -> None:
        self._settings = settings
        self._bus = bus
        self._objects = objects
        self._outcomes = outcomes

    async def store_instances(
        self,
        body: AsyncIterator[bytes],
        boundary: str,
        study_uid: str | None,
        consistency: Literal["indexed", "durable"] | None = None,
    ) -> StowResult:
        """Store the parts of a multipart/related body; ``study_uid`` for /studies/{study}."""
        if study_uid is not None and not is_valid_uid(study_uid, strict=False):
            raise BadRequest(f"{study_uid!r} is not a valid Study Instance UID")
        consistency = consistency or self._settings.stow_consistency
        request_id = uuid.uuid4().hex
        waiter = self._outcomes.register(request_id)
        result = StowResult(study_uid=study_uid, consistency=consistency)
        batch: list[IngestRecord] = []
        batch_bytes = 0
        part: _Part | None = None
        received = 0
        try:
            async for event in parse_parts(self._limited(body), boundary):
                if event.kind == "begin":
                    part = _Part(len(result.parts) + 1, event.headers.get("content-type", ""))
                    result.parts.append(PartOutcome(part.number))
                elif part is not None and event.kind == "data":
                    received += len(event.data)
                    await self._feed(part, event.data, request_id)
                elif part is not None and event.kind in ("end", "truncated"):
                    record = await self._finish(part, event, request_id, study_uid, result)
                    part = None
                    if record is not None:
                        waiter.expect(record.part)
                        batch.append(record)
                        batch_bytes += len(record.inline or b"")
                        if batch_bytes >= _BATCH_BYTES:
                            await self._publish(batch, result)
                            batch, batch_bytes = [], 0
            if batch:
                await self._publish(batch, result)
        except BaseException:
            if part is not None:
                await _discard(part, self._objects)
            self._outcomes.release(request_id)
            raise
        if not result.parts:
            self._outcomes.release(request_id)
            raise BadRequest("the request holds no part")
        try:
            if consistency == "indexed" and waiter.futures:
                events = await waiter.wait(self._settings.stow_timeout_seconds)
                for number, ingest_event in events.items():
                    _apply_event(result.parts[number - 1], ingest_event)
        finally:
            self._outcomes.release(request_id)
        log.info("STOW %s: %d parts, %d bytes", request_id, len(result.parts), received)
        return result

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

    async def _feed(self, part: _Part, data: bytes, request_id: str) -> None:
        if part.failure is not None:
            return
        part.size += len(data)
        part.sha256.update(data)
        if part.header is None and len(part.prefix) < self._settings.header_prefix_max_bytes:
            part.prefix.extend(data)
            self._try_header(part, complete=False)
        if part.inline is not None:
            part.inline.extend(data)
            if len(part.inline) > self._settings.inline_max_bytes:
                await self._spill(part, request_id)
        elif part.writer is not None:
            await part.writer.write(data)

    def _try_header(self, part: _Part, *, complete: bool) -> None:
        try:
            part.header = read_part_header(bytes(part.prefix), complete=complete)
        except HeaderIncomplete:
            return
        except PartRejected as exc:
            part.failure = (exc.reason, exc.message)
        part.prefix = bytearray()

    async def _spill(self, part: _Part, request_id: str) -> None:
        """Move a part that outgrew the inline limit to a staged object (claim check)."""
        part.staged_key = staging_key(self._settings.site, request_id, part.number)
        part.stack = AsyncExitStack()
        part.writer = await part.stack.enter_async_context(self._objects.writer(part.staged_key))
        assert part.inline is not None
        await part.writer.write(bytes(part.inline))
        part.inline = None

    async def _finish(
        self,
        part: _Part,
        event: PartEvent,
        request_id: str,
        study_uid: str | None,
        result: StowResult,
    ) -> IngestRecord | None:
        outcome = result.parts[part.number - 1]
        if event.kind == "truncated":
            part.failure = (FailureReason.CANNOT_UNDERSTAND, "the request ended inside the part")
        elif part.failure is None:
            media, _ = media_type_parameters(part.content_type or "application/dicom")
            if media not in _PART_TYPES:
                part.failure = (
                    FailureReason.CANNOT_UNDERSTAND,
                    f"part media type {media!r} is not application/dicom",
                )
        if part.failure is None and part.header is None:
            await self._header_from_whole_part(part)
        if part.failure is None and part.stack is not None:
            await part.stack.aclose()  # publishes the staged object
            part.stack = None
        header = part.header
        if header is not None:
            outcome.sop_class_uid, outcome.sop_uid = header.sop_class_uid, header.sop_uid
            outcome.study_uid = header.study_uid
        if part.failure is None and header is not None:
            part.failure = _check_placement(header, study_uid)
        if part.failure is not None or header is None:
            reason, message = part.failure or (FailureReason.CANNOT_UNDERSTAND, "no header")
            outcome.fail(reason, message)
            await _discard(part, self._objects)
            return None
        return IngestRecord(
            request_id=request_id,
            part=part.number,
            site=self._settings.site,
            study_uid=header.study_uid,
            series_uid=header.series_uid,
            sop_uid=header.sop_uid,
            sop_class_uid=header.sop_class_uid,
            transfer_syntax=header.transfer_syntax,
            size=part.size,
            sha256=part.sha256.hexdigest(),
            received_at=datetime.now(UTC).isoformat(),
            inline=bytes(part.inline) if part.inline is not None else None,
            staged_key=part.staged_key,
        )

    async def _header_from_whole_part(self, part: _Part) -> None:
        if part.inline is not None:
            part.prefix = part.inline
            self._try_header(part, complete=True)
            return
        if part.stack is not None:
            await part.stack.aclose()
            part.stack = None
        assert part.staged_key is not None
        async with self._objects.local_file(part.staged_key) as path:
            try:
                part.header = await asyncio.to_thread(_read_file_header, path, part.size)
            except PartRejected as exc:
                part.failure = (exc.reason, exc.message)

    async def _publish(self, batch: list[IngestRecord], result: StowResult) -> None:
        try:
            await self._bus.publish_batch(
                INGEST_TOPIC, [(r.study_uid.encode(), r.to_bytes(), ()) for r in batch]
            )
        except ServiceUnavailable:
            for record in batch:  # not acknowledged: leave nothing staged behind
                if record.staged_key is not None:
                    await self._objects.delete(record.staged_key)
            raise
        for record in batch:
            outcome = result.parts[record.part - 1]
            outcome.published = True
            outcome.series_uid = record.series_uid


def _read_file_header(path: Path, size: int) -> PartHeader:
    with path.open("rb") as fp:
        return read_file_header(fp, size)


def _check_placement(header: PartHeader, study_uid: str | None) -> tuple[FailureReason, str] | None:
    if header.sop_class_uid in NON_PATIENT_SOP_CLASSES:
        return (
            FailureReason.SOP_CLASS_NOT_SUPPORTED,
            f"{NON_PATIENT_SOP_CLASSES[header.sop_class_uid]} is not a patient/study object: "
            "it belongs to the Non-Patient Instance service, not to the Studies service",
        )
    missing = header.missing()
    if missing:
        return (
            FailureReason.DATA_SET_DOES_NOT_MATCH_SOP_CLASS,
            "the data set lacks " + ", ".join(missing) + ", needed to place it in a study",
        )
    if study_uid is not None and header.study_uid != study_uid:
        return (
            FailureReason.STUDY_INSTANCE_UID_MISMATCH,
            f"Study Instance UID {header.study_uid} does not match the target study {study_uid}",
        )
    return None


def _apply_event(outcome: PartOutcome, event: IngestEvent) -> None:
    outcome.processed = True
    if event.status == "failed":
        reason = FailureReason(event.failure_reason or FailureReason.PROCESSING_FAILURE)
        outcome.fail(reason, event.message)
    elif event.warning_reason is not None:
        outcome.warning_reason = event.warning_reason
        outcome.message = event.message
    outcome.series_uid = event.series_uid or outcome.series_uid


async def _discard(part: _Part, objects: ObjectStore) -> None:
    """Drop what a failed part left: an open writer is aborted, a staged object deleted."""
    if part.stack is not None:
        stack, part.stack = part.stack, None
        with contextlib.suppress(PartDiscarded):
            await stack.__aexit__(PartDiscarded, PartDiscarded(), None)
    if part.staged_key is not None:
        await objects.delete(part.staged_key)


class PartDiscarded(Exception):
    """Raised into a staged writer to abort it."""
