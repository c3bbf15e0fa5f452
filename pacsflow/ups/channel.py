"""The event channel of an AE title: Open Event Channel and Send Event Report (PS3.18 8.10.4-5).

Every Event Report is a record on the ``ups-events`` topic addressed to the AE titles that
subscribed when it happened (``pacsflow.ups.events``). A channel reads that topic as the
consumer group of its AE title, so whichever ``pacsflow ups`` replica the subscriber's
WebSocket reaches, it reads every record, and from where the AE title's last channel stopped:

* it sends each record addressed to its AE title as one text frame (the report's DICOM JSON),
  then commits the record's offset; records for others are skipped and committed;
* a reconnecting subscriber gets what was published while it was away (within the topic's
  retention) - more than PS3.18 asks, which lets an origin server drop events while the
  connection is down;
* the delivery guarantee: every event at least once, in order per workitem. When the replica
  stops in order the channel finishes the frame it is writing and commits it before it
  closes, so across a restart nothing is lost or repeated; after a crash the one event being
  written may come again. A record the relay published twice is sent once per channel (events
  of a workitem are numbered; a number already sent is skipped).

One channel per site, AE title and process: a new connection of the same AE title closes the
previous one (the subscriber reconnected; the old socket is stale).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from typing import Final

import orjson

from pacsflow.ports.bus import Bus, Message
from pacsflow.ups.events import EVENTS_TOPIC, EventRecord, EventRecordError

__all__ = ["Channels", "EventChannel", "channel_group"]

log = logging.getLogger(__name__)

FETCH_WAIT: Final = 0.5  # seconds a fetch waits; also how soon a closed channel notices
BATCH: Final = 100


def channel_group(site: str, ae: str) -> str:
    """The consumer group of an AE title's channel (hex: AE titles may hold spaces)."""
    return f"ups-channel.{site}.{ae.encode().hex()}"


class EventChannel:
    """Delivers the events of one AE title to one connection (see the module docstring)."""

    def __init__(self, bus: Bus, site: str, ae: str) -> None:
        self.bus = bus
        self.site = site
        self.ae = ae
        self.sent = 0

    def _wanted(self, message: Message, last: dict[str, int]) -> EventRecord | None:
        try:
            record = EventRecord.from_json(message.value)
        except EventRecordError as exc:
            log.warning("skipping an unreadable record on %s: %s", EVENTS_TOPIC, exc)
            return None
        if record.site != self.site or self.ae not in record.recipients:
            return None
        if record.seq and last.get(record.workitem, 0) >= record.seq:
            return None  # the relay published it twice
        return record

    async def run(self, send: Callable[[str], Awaitable[None]], closed: asyncio.Event) -> None:
        """Send this AE title's events until ``closed`` is set or ``send`` fails."""
        subscription = await self.bus.subscribe(EVENTS_TOPIC, channel_group(self.site, self.ae))
        last: dict[str, int] = {}
        try:
            while not closed.is_set():
                messages = await subscription.fetch(BATCH, timeout=FETCH_WAIT)
                done: list[Message] = []
                for message in messages:
                    if closed.is_set():
                        break
                    record = self._wanted(message, last)
                    if record is not None:
                        await send(orjson.dumps(record.report).decode())
                        self.sent += 1
                        if record.seq:
                            last[record.workitem] = record.seq
                        await subscription.commit([message])
                    done.append(message)
                if done:
                    await subscription.commit(done)
        finally:
            await subscription.close()


class Channels:
    """The open channels of a process: one per site and AE title, the newest wins."""

    def __init__(self) -> None:
        self._open: dict[tuple[str, str], asyncio.Event] = {}

    def open(self, site: str, ae: str) -> asyncio.Event:
        """Register a new channel of ``ae`` on ``site``; close the one it replaces; its
        ``closed`` event."""
        previous = self._open.get((site, ae))
        if previous is not None:
            previous.set()
        closed = asyncio.Event()
        self._open[(site, ae)] = closed
        return closed

    def release(self, site: str, ae: str, closed: asyncio.Event) -> None:
        """Forget a channel that ended (unless a newer one took its place)."""
        closed.set()
        if self._open.get((site, ae)) is closed:
            del self._open[(site, ae)]

    def close_all(self) -> None:
        """Ask every open channel to stop (process shutdown)."""
        for closed in self._open.values():
            closed.set()
