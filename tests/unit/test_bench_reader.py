"""The benchmark's WADO-RS reader survives a server closing an idle kept-alive connection.

uvicorn closes a kept-alive connection after 5 s of idleness; when the benchmark's servers take
turns on a slow machine, the next request on it must go out again on a new connection (what any
HTTP client's pool does) rather than fail the measurement.
"""

from __future__ import annotations

import socket
import threading
from collections.abc import Iterator

import pytest

from bench.wado_measure import Reader

PART = b"Content-Type: application/dicom\r\n\r\n"
BODY = b"--b\r\n" + PART + b"xyz\r\n--b\r\n" + PART + b"uvw\r\n--b--\r\n"


def _serve(server: socket.socket, stop: threading.Event, connections: list[int]) -> None:
    """Each connection: read one request, answer it as if kept alive, then close it."""
    server.settimeout(0.05)
    while not stop.is_set():
        try:
            client, _ = server.accept()
        except TimeoutError:
            continue
        with client:
            request = b""
            while b"\r\n\r\n" not in request and (chunk := client.recv(4096)):
                request += chunk
            if request:
                connections.append(1)
                client.sendall(
                    b"HTTP/1.1 200 OK\r\nConnection: keep-alive\r\n"
                    b'Content-Type: multipart/related; type="application/dicom"; boundary=b\r\n'
                    + f"Content-Length: {len(BODY)}\r\n\r\n".encode()
                    + BODY
                )


@pytest.fixture
def closing_server() -> Iterator[tuple[str, list[int]]]:
    """A server that closes every connection after its first answer; its connection count."""
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen()
    stop = threading.Event()
    connections: list[int] = []
    thread = threading.Thread(target=_serve, args=(server, stop, connections), daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.getsockname()[1]}/dicom-web", connections
    finally:
        stop.set()
        thread.join(timeout=5)
        server.close()


def test_a_connection_closed_while_idle_is_opened_again(
    closing_server: tuple[str, list[int]],
) -> None:
    url, connections = closing_server
    reader = Reader(url, timeout=5)
    try:
        answers = [reader.read("/studies/1/series/2", "multipart/related", True) for _ in range(3)]
    finally:
        reader.close()
    assert [(a.status, a.size, a.parts) for a in answers] == [(200, len(BODY), 2)] * 3
    assert len(connections) == 3
