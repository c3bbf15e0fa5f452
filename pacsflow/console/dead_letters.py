"""The latest dead letters and their reasons, read from the ``dead-letter`` topic (docs/topics.md).

A ``DeadLetterLog`` follows the topic with a subscription of its own group that never commits:
it starts at the oldest dead letter the log retains and keeps the latest ``keep`` of them. Each
``refresh`` reads what arrived since, up to a bound, so one call never reads a whole log.
"""

from __future__ import annotations

import asyncio
import collections
import uuid
from dataclasses import dataclass
from typing import Final

from pacsflow.pipeline.records import DEAD_LETTER_TOPIC, DeadLetter, RecordError
from pacsflow.ports import Bus, Subscription

__all__ = ["DeadLetterLog", "DeadLetterView"]

_READ_PER_REFRESH: Final = 5000
_BATCH: Final = 500


@dataclass(frozen=True)
class DeadLetterView:
    """One dead letter as the status page shows it (UIDs and the reason, no payload)."""

    partition: int
    offset: int
    failure_reason: int
    message: str
    site: str
    study_uid: str
    sop_uid: str

    @classmethod
    def of(cls, letter: DeadLetter) -> DeadLetterView:
        record = letter.record or {}
        return cls(
            partition=letter.partition,
            offset=letter.offset,
            failure_reason=letter.failure_reason,
            message=letter.message,
            site=str(record.get("site") or ""),
            study_uid=str(record.get("study_uid") or ""),
            sop_uid=str(record.get("sop_uid") or ""),
        )


class DeadLetterLog:
    """The tail of the dead-letter topic and how many dead letters this log has read."""

    def __init__(self, bus: Bus, keep: int = 50) -> None:
        self._bus = bus
        self._group = f"pacsflow-console-{uuid.uuid4().hex}"
        self._recent: collections.deque[DeadLetterView] = collections.deque(maxlen=keep)
        self._subscription: Subscription | None = None
        self._lock = asyncio.Lock()
        self.read = 0  # dead letters read since this log started (unreadable ones too)

    async def refresh(self) -> list[DeadLetterView]:
        """Read what arrived (bounded); the latest dead letters, newest first."""
        async with self._lock:
            if self._subscription is None:
                self._subscription = await self._bus.subscribe(DEAD_LETTER_TOPIC, self._group)
            budget = _READ_PER_REFRESH
            while budget > 0:
                messages = await self._subscription.fetch(min(_BATCH, budget), timeout=0.05)
                if not messages:
                    break
                budget -= len(messages)
                self.read += len(messages)
                for message in messages:
                    try:
                        self._recent.append(DeadLetterView.of(DeadLetter.from_bytes(message.value)))
                    except RecordError:
                        continue  # not a dead letter of a known version: counted, not shown
            return list(reversed(self._recent))

    async def close(self) -> None:
        """Release the subscription (nothing was committed: no group state is left)."""
        async with self._lock:
            if self._subscription is not None:
                await self._subscription.close()
                self._subscription = None
