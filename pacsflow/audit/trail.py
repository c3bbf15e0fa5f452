"""The audit trail of a process: every audit message to the ``audit`` topic and to syslog.

A message is published to the ``audit`` topic of the bus (key: the site; value: the PS3.15
A.5.1 XML document; docs/topics.md) and, when ``PACSFLOW_AUDIT_SYSLOG_URL`` is set, sent to
that audit record repository over TLS (``pacsflow.audit.syslog``). Requests do not wait for
either: ``record`` queues the message (waiting only while ``QUEUE`` messages are queued) and a
background task publishes the queue in batches, so a retrieval costs no extra durable write.
A failure to audit is logged and does not fail the request it describes; ``close`` publishes
what is still queued.
"""

from __future__ import annotations

import asyncio
import contextlib
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
QUEUE: Final = 10_000  # messages waiting to be published before record() waits
BATCH: Final = 500
CLOSE_TIMEOUT: Final = 30.0  # longest wait at shutdown for queued messages to be published


class AuditTrail:
    """Records audit messages (see the module docstring)."""

    def __init__(self, settings: AuditSettings, bus: Bus) -> None:
        self.settings = settings
        self.bus = bus
        self.source_id = settings.source_id or f"pacsflow@{socket.gethostname()}"
        self.syslog = SyslogSender(settings) if settings.syslog_url else None
        self._queue: asyncio.Queue[AuditMessage] | None = None
        self._publisher: asyncio.Task[None] | None = None

    async def record(self, message: AuditMessage) -> None:
        """Queue ``message`` for the topic and syslog; never raises for an unavailable backend."""
        if not self.settings.enabled:
            return
        if self._queue is None:
            self._queue = asyncio.Queue(QUEUE)
            self._publisher = asyncio.create_task(self._publish_forever(self._queue))
        await self._queue.put(message)

    async def _publish_forever(self, queue: asyncio.Queue[AuditMessage]) -> None:
        while True:
            batch = [await queue.get()]
            while len(batch) < BATCH and not queue.empty():
                batch.append(queue.get_nowait())
            try:
                await self._publish(batch)
            except Exception:  # the publisher outlives one bad batch; the failure is logged
                log.exception("%d audit messages not published", len(batch))
            for _ in batch:
                queue.task_done()

    async def _publish(self, batch: list[AuditMessage]) -> None:
        documents = [(m.site.encode(), to_xml(m), ()) for m in batch]
        try:
            await self.bus.publish_batch(AUDIT_TOPIC, documents)
        except ServiceUnavailable as exc:
            log.warning("%d audit messages not published: %s", len(batch), exc)
        if self.syslog is not None:
            for _, document, _ in documents:
                await self.syslog.send(document)

    async def close(self) -> None:
        """Publish what is queued (bounded by the backends' own timeouts) and stop."""
        if self._queue is not None and self._publisher is not None:
            if not self._publisher.done():
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._queue.join(), CLOSE_TIMEOUT)
            self._publisher.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._publisher
            self._queue, self._publisher = None, None
        if self.syslog is not None:
            await self.syslog.close()
