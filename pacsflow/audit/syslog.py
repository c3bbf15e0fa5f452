"""Audit messages to an audit record repository: syslog (RFC 5424) over TLS (RFC 5425).

The transport of IHE ATNA (ITI-20): each message is one RFC 5424 record - facility 10
(security/authorization), severity 5 (notice), APP-NAME ``pacsflow``, MSGID ``IHE+RFC-3881``,
no structured data, the XML document as MSG (UTF-8 with its BOM) - framed with its octet count
(RFC 5425 4.3). One TLS connection is kept open and opened again after a failure; a message
that cannot be sent is logged and dropped (the ``audit`` topic keeps every message).
Hand-written because it is a few lines of framing over asyncio's TLS streams.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import socket
import ssl
from datetime import UTC, datetime
from typing import Final
from urllib.parse import urlparse

from pacsflow.audit.settings import AuditSettings

__all__ = ["SyslogSender", "syslog_frame"]

log = logging.getLogger(__name__)

_PRI: Final = 10 * 8 + 5  # facility authpriv (10), severity notice (5)
_BOM: Final = b"\xef\xbb\xbf"
_TIMEOUT: Final = 5.0


def syslog_frame(message: bytes, hostname: str, when: datetime | None = None) -> bytes:
    """One RFC 5424 record holding ``message``, framed for TLS transport (RFC 5425 4.3)."""
    stamp = (when or datetime.now(UTC)).astimezone(UTC).isoformat(timespec="microseconds")
    host = "".join(c for c in hostname if 33 <= ord(c) <= 126)[:255] or "-"
    header = f"<{_PRI}>1 {stamp} {host} pacsflow {os.getpid()} IHE+RFC-3881 - ".encode()
    record = header + _BOM + message.lstrip(_BOM)
    return f"{len(record)} ".encode() + record


class SyslogSender:
    """A TLS connection to one syslog receiver (``tls://host:port``)."""

    def __init__(self, settings: AuditSettings) -> None:
        parsed = urlparse(settings.syslog_url)
        self.host, self.port = str(parsed.hostname), int(parsed.port or 6514)
        self.context = ssl.create_default_context(cafile=settings.syslog_ca_certs or None)
        if settings.syslog_cert_file:
            self.context.load_cert_chain(settings.syslog_cert_file, settings.syslog_key_file)
        self.hostname = socket.gethostname()
        self._writer: asyncio.StreamWriter | None = None
        self._lock = asyncio.Lock()

    async def send(self, message: bytes) -> bool:
        """Send one message; False (and a log line) when it could not be sent."""
        frame = syslog_frame(message, self.hostname)
        async with self._lock:
            for attempt in (1, 2):
                try:
                    writer = self._writer or await self._connect()
                    writer.write(frame)
                    await asyncio.wait_for(writer.drain(), _TIMEOUT)
                    return True
                except (OSError, TimeoutError, ssl.SSLError) as exc:
                    await self._drop()
                    if attempt == 2:
                        log.warning("audit message not sent to syslog %s: %s", self.host, exc)
        return False

    async def _connect(self) -> asyncio.StreamWriter:
        connecting = asyncio.open_connection(self.host, self.port, ssl=self.context)
        _, writer = await asyncio.wait_for(connecting, _TIMEOUT)
        self._writer = writer
        return writer

    async def _drop(self) -> None:
        writer, self._writer = self._writer, None
        if writer is not None:
            writer.close()
            with contextlib.suppress(OSError, TimeoutError, ssl.SSLError):
                await asyncio.wait_for(writer.wait_closed(), _TIMEOUT)

    async def close(self) -> None:
        """Close the connection."""
        async with self._lock:
            await self._drop()
