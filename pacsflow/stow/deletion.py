"""DELETE of a study, series or instance: published on ``ingest``, applied by the processors.

Not a PS3.18 transaction (every peer has one; docs/conformance.md, "Deletion"). The request is
checked against the index (404 when it holds nothing of the resource), then a ``DeleteRecord``
is published on ``ingest`` keyed by the Study Instance UID, ordered with the study's stores;
the answer waits for its ``deleted`` event as a STOW waits for its parts: ``applied`` once the
processors removed the resource from the index and the object store, not yet (202) when they
did not within ``PACSFLOW_STOW_TIMEOUT_SECONDS`` or the client asked ``Prefer: respond-async``.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import UTC, datetime

from pacsflow.errors import NotFound, ServiceUnavailable
from pacsflow.pipeline.outcomes import OutcomeBoard
from pacsflow.pipeline.records import INGEST_TOPIC, DeleteRecord
from pacsflow.ports import Bus, Index
from pacsflow.telemetry import tracing
from pacsflow.telemetry.logs import REQUEST_ID

__all__ = ["Deletion", "DeletionService"]


@dataclass(frozen=True, slots=True)
class Deletion:
    """The outcome of a DELETE request: how many instances it names, and whether it is done."""

    instances: int
    applied: bool


class DeletionService:
    """Deletes studies, series and instances through the pipeline (see the module docstring)."""

    def __init__(self, bus: Bus, index: Index, outcomes: OutcomeBoard, timeout: float) -> None:
        self._bus = bus
        self._index = index
        self._outcomes = outcomes
        self._timeout = timeout

    async def delete(
        self,
        site: str,
        study: str,
        series: str | None = None,
        instance: str | None = None,
        *,
        wait: bool = True,
    ) -> Deletion:
        """Delete a study, a series (``series``) or an instance (both); 404 when not held."""
        refs = await self._index.list_instances(site, study, series)
        count = sum(1 for r in refs if instance in (None, r.sop_uid))
        if count == 0:
            raise NotFound(_missing(study, series, instance))
        record = DeleteRecord(
            request_id=REQUEST_ID.get() or uuid.uuid4().hex,  # the HTTP request's, for the logs
            site=site,
            study_uid=study,
            series_uid=series,
            sop_uid=instance,
            requested_at=datetime.now(UTC).isoformat(),
        )
        waiter = self._outcomes.register(record.request_id)
        try:
            waiter.expect(0)
            with tracing.publishing(INGEST_TOPIC, 1) as headers:  # the trace goes on to the worker
                await self._bus.publish_batch(
                    INGEST_TOPIC, [(study.encode(), record.to_bytes(), headers)]
                )
            events = await waiter.wait(self._timeout) if wait else {}
        finally:
            self._outcomes.release(record.request_id)
        event = events.get(0)
        if event is not None and event.status == "failed":
            raise ServiceUnavailable(f"the deletion failed in the pipeline: {event.message}")
        return Deletion(count, applied=event is not None)


def _missing(study: str, series: str | None, instance: str | None) -> str:
    if instance is not None:
        return f"no instance {instance} in series {series} of study {study}"
    if series is not None:
        return f"no series {series} in study {study}"
    return f"no study {study}"
