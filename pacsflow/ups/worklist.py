"""The Worklist Service of one process: its transactions, channels and background work together.

Built once per process by the container from the workitem store, the bus, the settings and
the sites the process serves; every request names its site (``Worklist.at``), which reaches
every store call, record and event channel of the request: a site's workitems, subscriptions
and events are never seen from another site. ``services.ups`` calls it, ``pacsflow.cli`` runs
its upkeep.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Iterable

from pacsflow.ports.bus import Bus
from pacsflow.ports.workitems import WorkitemStore
from pacsflow.ups.channel import Channels, EventChannel
from pacsflow.ups.service import UpsService, UpsSettings
from pacsflow.ups.upkeep import INTERVAL, Upkeep
from pacsflow.ups.watch import Watch

__all__ = ["SiteWorklist", "Worklist", "WorklistUpkeep"]


class SiteWorklist:
    """UPS-RS on one site: ``workitems`` (PS3.18 11.4-11.9), ``watch`` (11.10-11.12),
    ``channel`` (8.10.4-5) and ``upkeep`` (relay, retention, SCP status)."""

    def __init__(
        self,
        store: WorkitemStore,
        bus: Bus,
        settings: UpsSettings,
        site: str,
        clock: Callable[[], float],
    ) -> None:
        self.site = site
        self.bus = bus
        self.workitems = UpsService(store, bus, settings, site, clock)
        self.watch = Watch(store, self.workitems.outbox, settings.max_results)
        self.upkeep = Upkeep(store, self.workitems.outbox, settings.retention_seconds)

    def channel(self, ae: str) -> EventChannel:
        """A channel delivering the events of ``ae`` on this site."""
        return EventChannel(self.bus, self.site, ae)


class WorklistUpkeep:
    """The background work of every site of the process (``pacsflow.ups.upkeep``)."""

    def __init__(self, upkeeps: Iterable[Upkeep]) -> None:
        self.upkeeps = tuple(upkeeps)

    async def sweep(self) -> int:
        """Retention on every site; how many workitems were deleted."""
        return sum([await upkeep.sweep() for upkeep in self.upkeeps])

    async def announce(self, status: str) -> None:
        """SCP Status Change to the subscribers of every site."""
        for upkeep in self.upkeeps:
            await upkeep.announce(status)

    async def run(self, stop: asyncio.Event, interval: float = INTERVAL) -> None:
        """Run the upkeep of every site until ``stop``."""
        await asyncio.gather(*(upkeep.run(stop, interval) for upkeep in self.upkeeps))


class Worklist:
    """UPS-RS for the sites of one process; ``at(site)`` is the Worklist of one site."""

    def __init__(
        self,
        store: WorkitemStore,
        bus: Bus,
        settings: UpsSettings,
        sites: Iterable[str],
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.settings = settings
        self._sites = {
            site: SiteWorklist(store, bus, settings, site, clock) for site in sorted(set(sites))
        }
        self.upkeep = WorklistUpkeep(part.upkeep for part in self._sites.values())
        self.channels = Channels()

    def at(self, site: str) -> SiteWorklist:
        """The Worklist of ``site`` (one the process serves: ``KeyError`` otherwise)."""
        return self._sites[site]
