"""What a Worklist process does in the background: relay, retention and SCP Status Change.

* Relay: outbox records older than ``RELAY_AFTER`` seconds (a crash or a bus failure kept
  them there) are published again (``pacsflow.ups.outbox``).
* Retention: a COMPLETED or CANCELED workitem is deleted ``retention_seconds`` after it got
  there, unless a subscriber holds a Deletion Lock on it (PS3.4 CC.2.1.3: "the SCP shall not
  delete the instance until all deletion locks have been removed"); its UID stays known, so a
  request for it is answered 410 Gone (PS3.18 11.5.3.1).
* SCP Status Change (PS3.4 CC.2.4.3, Event Type 4): when the process starts, every subscribed
  AE title is told ``RESTARTED`` with ``WARM START`` (workitems and subscriptions are kept);
  when it stops in order, ``GOING DOWN``.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import Final

from pacsflow.errors import ServiceUnavailable
from pacsflow.ports.workitems import VersionConflict, WorkitemStore
from pacsflow.ups import events
from pacsflow.ups.events import EventRecord
from pacsflow.ups.model import GLOBAL_SUBSCRIPTION_UID
from pacsflow.ups.outbox import Outbox

__all__ = ["RELAY_AFTER", "Upkeep"]

log = logging.getLogger(__name__)

RELAY_AFTER: Final = 10.0  # seconds an outbox record waits before the relay republishes it
INTERVAL: Final = 5.0  # seconds between two rounds


class Upkeep:
    """The background work of the Worklist Service of one site."""

    def __init__(self, store: WorkitemStore, outbox: Outbox, retention_seconds: float) -> None:
        self.store = store
        self.outbox = outbox
        self.retention = retention_seconds

    async def sweep(self) -> int:
        """Delete the final workitems past retention and without Deletion Lock; how many."""
        cutoff = self.outbox.clock() - self.retention
        deleted, after = 0, ""
        while True:
            page = await self.store.scan(self.outbox.site, finished_before=cutoff, after=after)
            for item in page:
                if item.outbox and not await self.outbox.flush(item):
                    continue  # its last events first
                current = await self.store.get(item.site, item.uid)
                if current is None or current.outbox or current.locked:
                    continue
                with contextlib.suppress(VersionConflict):
                    await self.store.delete(current, current.version)
                    deleted += 1
            if len(page) < 100:
                return deleted
            after = page[-1].uid

    async def announce(self, status: str) -> None:
        """Send SCP Status Change (``RESTARTED`` or ``GOING DOWN``) to every subscriber."""
        site = self.outbox.site
        globals_ = await self.store.get_globals(site)
        recipients = await self.store.subscriber_aes(site) | set(globals_.subscriptions)
        if not recipients:
            return
        report = events.scp_status_change(GLOBAL_SUBSCRIPTION_UID, status)
        record = EventRecord(site, GLOBAL_SUBSCRIPTION_UID, 0, tuple(sorted(recipients)), report)
        await self.outbox.publish(record)

    async def round(self) -> None:
        """One round of relay and retention."""
        await self.outbox.relay(self.outbox.clock() - RELAY_AFTER)
        await self.sweep()

    async def run(self, stop: asyncio.Event, interval: float = INTERVAL) -> None:
        """Announce the restart, keep relaying and sweeping until ``stop``, announce the end."""
        with contextlib.suppress(ServiceUnavailable):
            await self.announce("RESTARTED")
        while not stop.is_set():
            try:
                await self.round()
            except ServiceUnavailable as exc:
                log.warning("worklist upkeep: %s", exc)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), interval)
        try:
            await self.announce("GOING DOWN")
        except ServiceUnavailable as exc:
            log.warning("worklist upkeep could not announce the shutdown: %s", exc)
