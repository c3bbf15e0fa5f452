"""Waiting for ingest outcomes: how STOW answers once its instances are indexed (PS3.18 10.5).

The STOW process subscribes to the ``events`` topic and hands every event to ``OutcomeBoard``;
a request registers the parts it published and waits for their events, up to a timeout.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field

from pacsflow.pipeline.records import IngestEvent

__all__ = ["OutcomeBoard", "Waiter"]


@dataclass(slots=True)
class Waiter:
    """The parts of one STOW request still waiting for their outcome."""

    request_id: str
    futures: dict[int, asyncio.Future[IngestEvent]] = field(default_factory=dict)

    def expect(self, part: int) -> None:
        """Wait for the outcome of ``part`` as well."""
        self.futures[part] = asyncio.get_running_loop().create_future()

    def forget(self, part: int) -> None:
        """Stop waiting for ``part`` (it was not published)."""
        self.futures.pop(part, None)

    async def wait(self, timeout: float) -> dict[int, IngestEvent]:
        """Outcomes that arrived within ``timeout`` seconds, by part number."""
        pending = [f for f in self.futures.values() if not f.done()]
        if pending:
            await asyncio.wait(pending, timeout=timeout)
        return {part: f.result() for part, f in self.futures.items() if f.done()}


class OutcomeBoard:
    """Routes ingest events to the waiting STOW requests of this process."""

    def __init__(self) -> None:
        self._waiters: dict[str, Waiter] = {}

    def register(self, request_id: str) -> Waiter:
        """Start waiting for events of ``request_id``."""
        waiter = Waiter(request_id)
        self._waiters[request_id] = waiter
        return waiter

    def release(self, request_id: str) -> None:
        """Stop waiting for ``request_id``."""
        self._waiters.pop(request_id, None)

    def deliver(self, event: IngestEvent) -> None:
        """Resolve the waiting part of ``event``; later duplicates (redelivery) are ignored."""
        waiter = self._waiters.get(event.request_id)
        if waiter is None:
            return
        future = waiter.futures.get(event.part)
        if future is not None and not future.done():
            future.set_result(event)
