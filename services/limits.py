"""Limits of the HTTP server against slow, stalled or hostile clients (RFC 9110 15.5.9).

A client that sends its request head a byte at a time (slowloris), trickles its body, or stops
reading a response holds a connection, a task and its buffers for as long as it likes unless the
server bounds it; uvicorn bounds only the idle time between requests. Three bounds, as nginx's
``client_header_timeout``, ``client_body_timeout`` and ``send_timeout`` and Apache's
``mod_reqtimeout`` set them:

* ``timed_protocol``: the request head (request line and header fields) must arrive within
  ``PACSFLOW_HTTP_HEADER_TIMEOUT_SECONDS`` of the connection (or of the first byte of a later
  request on it); else 408 Request Timeout and the connection is closed. A response the client
  does not read for ``PACSFLOW_HTTP_SEND_TIMEOUT_SECONDS`` (the socket's buffer stays full) aborts
  the connection.
* ``RequestLimits``: the time a request waits for its body may not exceed
  ``PACSFLOW_HTTP_BODY_TIMEOUT_SECONDS`` plus one second per
  ``PACSFLOW_HTTP_BODY_MIN_BYTES_PER_SECOND`` bytes received (a minimum rate, Apache's
  ``MinRate``; 0: the timeout alone); else 408 and the connection is closed. Time the
  application spends on the received bytes (the backends) does not count.
* ``RequestLimits`` also keeps every response header value legal: a control character (a NUL,
  CR or LF from a request echoed into a header) would make uvicorn drop the connection without a
  response, so it becomes ``?`` (and is logged: the header's builder should not let it through).

Written here because uvicorn has no such option and these are a few lines on its protocol.
"""

from __future__ import annotations

import asyncio
import logging
import re
from typing import Any

from starlette.types import ASGIApp, Message, Receive, Scope, Send
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

__all__ = ["BodyTimedOut", "RequestLimits", "timed_protocol"]

log = logging.getLogger(__name__)

_ILLEGAL = re.compile(rb"[\x00-\x08\x0a-\x1f\x7f]")  # what uvicorn refuses in a header value
_TIMEOUT_BODY = b"the request was not received in time\n"
_TIMEOUT_RESPONSE = (
    b"HTTP/1.1 408 Request Timeout\r\ncontent-type: text/plain; charset=utf-8\r\n"
    b"content-length: %d\r\nconnection: close\r\n\r\n%s" % (len(_TIMEOUT_BODY), _TIMEOUT_BODY)
)


class _TimedHttpToolsProtocol(HttpToolsProtocol):
    """uvicorn's httptools protocol with a request-head timeout and a send timeout."""

    header_timeout: float = 30.0
    send_timeout: float = 60.0

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._head_timer: asyncio.TimerHandle | None = None
        self._send_timer: asyncio.TimerHandle | None = None

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._arm_head_timer()

    def connection_lost(self, exc: Exception | None) -> None:
        for timer in (self._head_timer, self._send_timer):
            if timer is not None:
                timer.cancel()
        super().connection_lost(exc)

    def on_message_begin(self) -> None:
        super().on_message_begin()
        if self._head_timer is None:  # a later request on a kept-alive connection
            self._arm_head_timer()

    def on_headers_complete(self) -> None:
        if self._head_timer is not None:
            self._head_timer.cancel()
            self._head_timer = None
        super().on_headers_complete()

    def pause_writing(self) -> None:
        super().pause_writing()
        if self._send_timer is None:
            self._send_timer = self.loop.call_later(self.send_timeout, self._send_timed_out)

    def resume_writing(self) -> None:
        if self._send_timer is not None:
            self._send_timer.cancel()
            self._send_timer = None
        super().resume_writing()

    def _arm_head_timer(self) -> None:
        self._head_timer = self.loop.call_later(self.header_timeout, self._head_timed_out)

    def _head_timed_out(self) -> None:
        self._head_timer = None
        if self.transport.is_closing():
            return
        log.info("%s: no complete request head within %.0f s", _peer(self), self.header_timeout)
        self.transport.write(_TIMEOUT_RESPONSE)
        self.transport.close()

    def _send_timed_out(self) -> None:
        self._send_timer = None
        log.info("%s: the response was not read for %.0f s", _peer(self), self.send_timeout)
        self.transport.abort()


def _peer(protocol: HttpToolsProtocol) -> str:
    return f"{protocol.client[0]}:{protocol.client[1]}" if protocol.client else "a client"


def timed_protocol(header_timeout: float, send_timeout: float) -> type[HttpToolsProtocol]:
    """The uvicorn ``http`` protocol class with these timeouts (seconds)."""
    attributes = {"header_timeout": header_timeout, "send_timeout": send_timeout}
    return type("TimedHttpToolsProtocol", (_TimedHttpToolsProtocol,), attributes)


class BodyTimedOut(Exception):
    """The request body did not arrive in time (answered 408 by ``RequestLimits``)."""


class RequestLimits:
    """ASGI middleware: the body timeout and legal response header values (module docstring)."""

    def __init__(self, app: ASGIApp, body_timeout: float, body_min_rate: int) -> None:
        self.app = app
        self.body_timeout = body_timeout
        self.body_min_rate = body_min_rate

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        loop = asyncio.get_running_loop()
        waited, received, started, complete = 0.0, 0, False, False

        async def timed_receive() -> Message:
            nonlocal waited, received, complete
            if complete:  # the body is in: what follows is a wait for the client to go away
                return await receive()
            allowed = self.body_timeout + (
                received / self.body_min_rate if self.body_min_rate else 0.0
            )
            begin = loop.time()
            try:
                message = await asyncio.wait_for(receive(), max(allowed - waited, 0.0))
            except TimeoutError:
                raise BodyTimedOut(f"{received} bytes of the body in {waited:.0f} s") from None
            waited += loop.time() - begin
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                complete = not message.get("more_body", False)
            return message

        async def legal_send(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
                message["headers"] = [_legal(name, value) for name, value in message["headers"]]
            await send(message)

        try:
            await self.app(scope, timed_receive, legal_send)
        except BodyTimedOut as exc:
            if started:
                raise
            log.info("%s %s: request body timeout (%s)", scope["method"], scope["path"], exc)
            await send(
                {
                    "type": "http.response.start",
                    "status": 408,
                    "headers": [
                        (b"content-type", b"text/plain; charset=utf-8"),
                        (b"connection", b"close"),
                    ],
                }
            )
            await send({"type": "http.response.body", "body": _TIMEOUT_BODY})


def _legal(name: bytes, value: bytes) -> tuple[bytes, bytes]:
    if _ILLEGAL.search(value):
        log.warning("response header %s held a control character; replaced", name.decode())
        return name, _ILLEGAL.sub(b"?", value)
    return name, value
