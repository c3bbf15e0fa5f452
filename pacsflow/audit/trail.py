"""The audit trail of a process: every audit message to the ``audit`` topic and to syslog.

A message is published to the ``audit`` topic of the bus (key: the site; value: the PS3.15
A.5.1 XML document; docs/topics.md) and, when ``PACSFLOW_AUDIT_SYSLOG_URL`` is set, sent to
that audit record repository over TLS (``pacsflow.audit.syslog``). A failure to audit is
logged and does not fail the request it describes.
"""

from __future__ import annotations

import logging
import socket
from typing import Final

from pacsflow.audit.messages import AuditMessage, to_xml
from pacsflow.audit.settings import AuditSettings
from pacsflow.audit.syslog import SyslogSender
from pacsflow.errors import ServiceUnavailable
from pacsflow.ports.bus import Bus

__all__ = ["AUDIT_TOPIC", "AuditTrail"]

log = logging.getLogger(__name__)

AUDIT_TOPIC: Final = "audit"


class AuditTrail:
    """Records audit messages (see the module docstring)."""

    def __init__(self, settings: AuditSettings, bus: Bus) -> None:
        self.settings = settings
        self.bus = bus
        self.source_id = settings.source_id or f"pacsflow@{socket.gethostname()}"
        self.syslog = SyslogSender(settings) if settings.syslog_url else None

    async def record(self, message: AuditMessage) -> None:
        """Publish ``message``; never raises for an unavailable bus or repository."""
        if not self.settings.enabled:
            return
        document = to_xml(message)
        try:
            await self.bus.publish(AUDIT_TOPIC, message.site.encode(), document)
        except ServiceUnavailable as exc:
            log.warning("audit message %s not published: %s", message.event.meaning, exc)
        if self.syslog is not None:
            await self.syslog.send(document)

    async def close(self) -> None:
        """Close the syslog connection."""
        if self.syslog is not None:
            await self.syslog.close()
