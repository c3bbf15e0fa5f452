"""The HTTP workers' listening sockets of ``pacsflow serve`` (pacsflow.supervisor.listeners)."""

from __future__ import annotations

import socket

import pytest

from pacsflow.supervisor import listeners


def test_one_socket_per_worker_on_one_port() -> None:
    sockets = listeners("127.0.0.1", 0, 2)
    try:
        assert len({s.fileno() for s in sockets}) == 2
        assert len({s.getsockname()[1] for s in sockets}) == 1
        port = sockets[0].getsockname()[1]
        clients = [socket.create_connection(("127.0.0.1", port)) for _ in range(16)]
        accepted = 0
        for listener in sockets:  # each connection waits on exactly one of the sockets
            listener.setblocking(False)
            while True:
                try:
                    connection, _ = listener.accept()
                except BlockingIOError:
                    break
                connection.close()
                accepted += 1
        assert accepted == len(clients)
        for client in clients:
            client.close()
    finally:
        for s in sockets:
            s.close()


@pytest.mark.parametrize("reuse_port", [False, True])
def test_a_port_in_use_is_refused(reuse_port: bool) -> None:
    other = socket.create_server(("127.0.0.1", 0), reuse_port=reuse_port)
    try:
        with pytest.raises(OSError):
            listeners("127.0.0.1", other.getsockname()[1], 2)
    finally:
        other.close()


def test_one_worker_one_socket() -> None:
    sockets = listeners("127.0.0.1", 0, 1)
    try:
        assert len(sockets) == 1
    finally:
        sockets[0].close()
