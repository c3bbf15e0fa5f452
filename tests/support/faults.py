"""A loopback TCP proxy whose link can be cut and restored: outages without losing state.

The backends used in tests (Tansu, moto, osmem) keep their data in memory, so stopping them
would lose it; cutting the proxy in front of them makes them unreachable for pacsflow while
their state survives, which is what a network partition or a restarting broker looks like.
"""

from __future__ import annotations

import contextlib
import errno
import selectors
import socket
import threading
import time

__all__ = ["Link"]


class Link:
    """Forwards 127.0.0.1:``port`` to 127.0.0.1:``target`` until ``cut()``."""

    def __init__(self, target: int, port: int = 0) -> None:
        self.target = target
        self._listener = self._listen(port)
        self.port = int(self._listener.getsockname()[1])
        self._lock = threading.Lock()
        self._connections: set[socket.socket] = set()
        self._up = True
        self._muted = False
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._thread.start()

    @staticmethod
    def _listen(port: int) -> socket.socket:
        listener = socket.socket()
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        for _ in range(50):  # the serving thread may still hold a cut listener in accept()
            try:
                listener.bind(("127.0.0.1", port))
                break
            except OSError as exc:
                if exc.errno != errno.EADDRINUSE:
                    raise
                time.sleep(0.1)
        else:
            listener.bind(("127.0.0.1", port))
        listener.listen(64)
        listener.settimeout(0.2)
        return listener

    def cut(self) -> None:
        """Drop every connection and refuse new ones (connection refused)."""
        with self._lock:
            self._up = False
            self._listener.close()
            for conn in list(self._connections):
                with contextlib.suppress(OSError):
                    conn.shutdown(socket.SHUT_RDWR)
                conn.close()
            self._connections.clear()

    def restore(self) -> None:
        """Accept connections again on the same port (answers pass again)."""
        with self._lock:
            self._listener = self._listen(self.port)
            self._up = True
            self._muted = False

    def mute(self) -> None:
        """Keep forwarding requests but drop every answer: the server acts on what it is
        sent, the client hears nothing back (a lost answer). ``cut`` and ``restore`` end it."""
        self._muted = True

    def close(self) -> None:
        """Stop the proxy."""
        self._stop.set()
        self.cut()
        self._thread.join(timeout=5)

    def _serve(self) -> None:
        while not self._stop.is_set():
            with self._lock:
                listener, up = self._listener, self._up
            if not up:
                self._stop.wait(0.05)
                continue
            try:
                client, _ = listener.accept()
            except (TimeoutError, OSError):
                continue
            try:
                upstream = socket.create_connection(("127.0.0.1", self.target), timeout=5)
            except OSError:
                client.close()
                continue
            with self._lock:
                if not self._up:
                    client.close()
                    upstream.close()
                    continue
                self._connections.update((client, upstream))
            threading.Thread(target=self._pump, args=(client, upstream), daemon=True).start()

    def _pump(self, a: socket.socket, b: socket.socket) -> None:
        selector = selectors.DefaultSelector()
        a.setblocking(False)
        b.setblocking(False)
        selector.register(a, selectors.EVENT_READ, b)
        selector.register(b, selectors.EVENT_READ, a)
        try:
            while True:
                for key, _ in selector.select(timeout=0.5):
                    source: socket.socket = key.fileobj  # type: ignore[assignment]
                    data = source.recv(1 << 16)
                    if not data:
                        return
                    if source is b and self._muted:
                        continue  # an answer, lost
                    key.data.setblocking(True)
                    key.data.sendall(data)
                    key.data.setblocking(False)
                if self._stop.is_set():
                    return
        except OSError:
            return
        finally:
            selector.close()
            for sock in (a, b):
                with self._lock:
                    self._connections.discard(sock)
                sock.close()
