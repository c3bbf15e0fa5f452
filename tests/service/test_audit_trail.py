"""The audit trail: messages on the ``audit`` topic and at a syslog receiver over TLS.

The receiver is a TLS server on loopback with a certificate of a test CA (trustme); it reads
RFC 5425 frames (octet counting) as an audit record repository does.
"""

from __future__ import annotations

import asyncio
import ssl
import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
import trustme
from lxml import etree

from pacsflow.adapters.embedded_bus import EmbeddedBus
from pacsflow.audit import events
from pacsflow.audit.messages import Outcome, Participant
from pacsflow.audit.settings import AuditSettings
from pacsflow.audit.trail import AUDIT_TOPIC, AuditTrail

CTX = events.AuditContext(
    Participant("alice", True, address="127.0.0.1"),
    Participant("pacsflow@test", False),
    "pacsflow@test",
    "north",
)


class Receiver:
    """A syslog-over-TLS receiver: the records it got, one per frame."""

    def __init__(self) -> None:
        self.records: asyncio.Queue[bytes] = asyncio.Queue()
        self.connections = 0
        self.writers: list[asyncio.StreamWriter] = []

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        self.writers.append(writer)
        try:
            while True:
                length = await reader.readuntil(b" ")
                await self.records.put(await reader.readexactly(int(length)))
        except (asyncio.IncompleteReadError, ConnectionError):
            writer.close()


@pytest.fixture
async def receiver(tmp_path: Path) -> AsyncIterator[tuple[Receiver, AuditSettings]]:
    ca = trustme.CA()
    server_context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert("127.0.0.1").configure_cert(server_context)
    ca_file = tmp_path / "ca.pem"
    ca.cert_pem.write_to_path(str(ca_file))
    got = Receiver()
    server = await asyncio.start_server(got.handle, "127.0.0.1", 0, ssl=server_context)
    port = server.sockets[0].getsockname()[1]
    try:
        yield got, AuditSettings(syslog_url=f"tls://127.0.0.1:{port}", syslog_ca_certs=str(ca_file))
    finally:
        server.close()
        for writer in got.writers:
            writer.close()
        await server.wait_closed()


async def test_messages_reach_the_topic_and_the_tls_receiver(
    receiver: tuple[Receiver, AuditSettings], tmp_path: Path
) -> None:
    got, settings = receiver
    bus = EmbeddedBus(tmp_path / "bus.sqlite")
    await bus.start()
    trail = AuditTrail(settings, bus)
    try:
        await trail.record(events.begin_transferring(CTX, ["1.2.3"], Outcome.SUCCESS))
        record = await asyncio.wait_for(got.records.get(), 10)
        document = record.partition(b"\xef\xbb\xbf")[2]
        assert (
            etree.fromstring(document)
            .find("AuditSourceIdentification")
            .get(  # type: ignore[union-attr]
                "AuditEnterpriseSiteID"
            )
            == "north"
        )
        subscription = await bus.subscribe(AUDIT_TOPIC, f"test-{uuid.uuid4().hex}")
        [message] = await subscription.fetch(10, 5.0)
        assert message.key == b"north" and message.value == document
        await subscription.close()
        # the receiver drops the connection: the next message opens a new one
        for writer in got.writers:
            writer.close()
        await trail.record(events.authentication_failed(CTX, "expired"))
        record = await asyncio.wait_for(got.records.get(), 10)
        assert b"User Authentication" in record and got.connections == 2
    finally:
        await trail.close()
        await bus.close()


async def test_an_untrusted_receiver_gets_nothing(
    receiver: tuple[Receiver, AuditSettings], tmp_path: Path
) -> None:
    got, settings = receiver
    stranger = trustme.CA()
    other_ca = tmp_path / "other-ca.pem"
    stranger.cert_pem.write_to_path(str(other_ca))
    bus = EmbeddedBus(tmp_path / "bus.sqlite")
    await bus.start()
    trail = AuditTrail(settings.model_copy(update={"syslog_ca_certs": str(other_ca)}), bus)
    try:
        assert trail.syslog is not None
        assert not await trail.syslog.send(b"<AuditMessage/>")  # the certificate fails
        await trail.record(events.authentication_failed(CTX, "expired"))  # never raises
        assert got.records.empty()
    finally:
        await trail.close()
        await bus.close()
