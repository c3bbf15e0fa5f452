"""The Worklist Service of one process: its transactions, channels and background work together.

Built once per process by the container from the workitem store, the bus and the settings;
``services.ups`` calls it, ``pacsflow.cli`` runs its upkeep.
"""

from __future__ import annotations

import time
from collections.abc import Callable

from pacsflow.ports.bus import Bus
from pacsflow.ports.workitems import WorkitemStore
from pacsflow.ups.channel import Channels, EventChannel
from pacsflow.ups.service import UpsService, UpsSettings
from pacsflow.ups.upkeep import Upkeep
from pacsflow.ups.watch import Watch

__all__ = ["Worklist"]


class Worklist:
    """UPS-RS for one site: ``workitems`` (PS3.18 11.4-11.9), ``watch`` (11.10-11.12),
    ``channel`` (8.10.4-5) and ``upkeep`` (relay, retention, SCP status)."""

    def __init__(
        self,
        store: WorkitemStore,
        bus: Bus,
        settings: UpsSettings,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.settings = settings
        self.bus = bus
        self.workitems = UpsService(store, bus, settings, clock)
        self.watch = Watch(store, self.workitems.outbox, settings.max_results)
        self.upkeep = Upkeep(store, self.workitems.outbox, settings.retention_seconds)
        self.channels = Channels()

    def channel(self, ae: str) -> EventChannel:
        """A channel delivering the events of ``ae``."""
        return EventChannel(self.bus, self.settings.site, ae)
