"""Wake-ups between the processes that share one embedded bus journal.

A fetch waiting on the journal is woken at once by a publish of its own process (an
``asyncio.Event``); a publish of another process (an HTTP worker publishing to ``ingest``, the
processor publishing ``events``) reaches it as a datagram naming the topic, sent to a Unix
datagram socket that each bus instance binds in Linux's abstract namespace and registers in the
journal's ``listeners`` table. Datagrams cost no file, no polling and no lock; a lost one (a
full socket buffer) only delays the reader to its next poll. Where abstract sockets do not
exist, readers fall back to polling the journal.

Written by hand: it is a socket, a name and ``loop.add_reader``.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import uuid
from collections.abc import Callable, Iterable

__all__ = ["Wakeups"]

_PREFIX = b"\0pacsflow-bus-"


class Wakeups:
    """This bus instance's wake-up socket: receives topic names, sends them to the others."""

    def __init__(self, on_topic: Callable[[str], None]) -> None:
        self._on_topic = on_topic
        self._socket: socket.socket | None = None
        self._sender: socket.socket | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self.name: bytes | None = None

    def open(self) -> bytes | None:
        """Bind the socket and watch it from the running loop; its name, or None (polling)."""
        try:
            receiver = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        except (AttributeError, OSError):
            return None
        name = _PREFIX + uuid.uuid4().hex.encode()
        try:
            receiver.bind(name)
        except OSError:  # no abstract namespace on this platform
            receiver.close()
            return None
        receiver.setblocking(False)
        sender = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        sender.setblocking(False)
        self._loop = asyncio.get_running_loop()
        self._loop.add_reader(receiver.fileno(), self._readable)
        self._socket, self._sender, self.name = receiver, sender, name
        return name

    def close(self) -> None:
        """Stop watching and close the sockets (idempotent)."""
        if self._socket is not None and self._loop is not None:
            with contextlib.suppress(RuntimeError):  # the loop may already be closed
                self._loop.remove_reader(self._socket.fileno())
        for sock in (self._socket, self._sender):
            if sock is not None:
                sock.close()
        self._socket = self._sender = self._loop = None
        self.name = None

    def notify(self, names: Iterable[bytes], topic: str) -> list[bytes]:
        """Send ``topic`` to every other listener; return the names nobody listens on."""
        gone: list[bytes] = []
        sender = self._sender
        if sender is None:
            return gone
        payload = topic.encode()
        for name in names:
            if name == self.name:
                continue
            try:
                sender.sendto(payload, name)
            except (ConnectionRefusedError, FileNotFoundError):
                gone.append(name)  # its process is gone
            except OSError:  # a full buffer: that reader has wake-ups pending anyway
                continue
        return gone

    def _readable(self) -> None:
        sock = self._socket
        while sock is not None:
            try:
                payload = sock.recv(1024)
            except (BlockingIOError, InterruptedError):
                return
            except OSError:
                return
            self._on_topic(payload.decode(errors="replace"))
