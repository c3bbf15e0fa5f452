"""Backpressure of STOW-RS on the ingest processors (issue 23, item 4).

The front end acknowledges a part once it is on the log (staged, for a large one); the
processors validate, store and index it later. When they fall behind (stopped, slow, or a
backend down), every request accepted meanwhile grows the log and the staging area without
bound. So before a request's body is read, the ingest group's lag (records published and not
yet committed, over all partitions, ``Bus.positions``) is compared with
``PACSFLOW_STOW_MAX_INGEST_LAG``; past it the request is refused with 503 and Retry-After
(PS3.18 10.5.3: the origin server is busy), and nothing of it is read or kept.

The lag is read at most once per ``REFRESH_SECONDS`` (one cheap query of the journal or one
offset fetch of the broker), shared by the requests of the process.
"""

from __future__ import annotations

import asyncio
from typing import Final

from pacsflow.errors import ServiceUnavailable
from pacsflow.pipeline.records import INGEST_GROUP, INGEST_TOPIC
from pacsflow.ports import Bus

__all__ = ["IngestBacklog", "IngestLag"]

REFRESH_SECONDS: Final = 1.0


class IngestBacklog(ServiceUnavailable):
    """The processors are too far behind to accept more now (HTTP 503 with Retry-After)."""


class IngestLag:
    """The ingest group's lag, read at most once per ``REFRESH_SECONDS``, against a limit."""

    def __init__(self, bus: Bus, max_lag: int) -> None:
        self._bus = bus
        self._max_lag = max_lag
        self._lag = 0
        self._read_at: float | None = None
        self._lock = asyncio.Lock()

    async def lag(self) -> int:
        """Records on the ingest topic the processors have not committed (cached briefly)."""
        async with self._lock:
            now = asyncio.get_running_loop().time()
            if self._read_at is None or now - self._read_at >= REFRESH_SECONDS:
                positions = await self._bus.positions(INGEST_TOPIC, INGEST_GROUP)
                self._lag = sum(max(0, end - done) for done, end in positions.values())
                self._read_at = now
            return self._lag

    async def admit(self) -> None:
        """Raise ``IngestBacklog`` when the lag is past the limit (0: no limit)."""
        if self._max_lag and (lag := await self.lag()) > self._max_lag:
            raise IngestBacklog(
                f"the archive is {lag} instances behind in processing what it accepted"
                f" (more than PACSFLOW_STOW_MAX_INGEST_LAG={self._max_lag}); retry later"
            )
