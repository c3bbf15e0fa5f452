"""The middleware around every HTTP request: its id, its access log line, its duration metric
and its server span (``pacsflow.telemetry.tracing``, child of a ``traceparent`` it carries).

The id (``pacsflow.telemetry.logs``) is set for everything the request logs and answered in
``X-Request-ID``. The access log line (logger ``pacsflow.access``, level info) gives the
method, the path, the names of the query parameters (their values, which may be a patient's
name or ID, only at level debug), the status and the duration. ``/health``, ``/ready`` and
``/metrics`` are logged at debug only (probes and scrapes would fill the log).
"""

from __future__ import annotations

import logging
import time
from typing import Final
from urllib.parse import parse_qsl

from starlette.datastructures import Headers
from starlette.routing import BaseRoute
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from pacsflow.telemetry import logs, metrics, tracing

__all__ = ["RequestContext", "transaction"]

access = logging.getLogger("pacsflow.access")

_QUIET: Final = frozenset({"health", "metrics"})


def transaction(route: BaseRoute | None) -> str:
    """The transaction a request belongs to: its router's module (``stow``, ``qido``,
    ``wado``, ``rendered``, ``changefeed``...); ``other`` for an unrouted request."""
    endpoint = getattr(route, "endpoint", None)
    if endpoint is None:
        return "other"
    return str(endpoint.__module__).rsplit(".", 1)[-1]


def shown_query(query: bytes, values: bool) -> str:
    """The query string as logged: its parameter names, values elided unless ``values``."""
    if not query:
        return ""
    if values:
        return "?" + query.decode("latin-1")
    names = [name for name, _ in parse_qsl(query.decode("latin-1"), keep_blank_values=True)]
    return "?" + "&".join(f"{name}=…" for name in names)


class RequestContext:
    """Gives each HTTP request an id, an access log line and a duration metric."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Serve the request within its id's context."""
        if scope["type"] not in ("http", "websocket"):
            await self.app(scope, receive, send)
            return
        request_id = logs.new_request_id()
        client_id = logs.client_request_id(Headers(scope=scope).get("x-request-id"))
        tokens = (logs.REQUEST_ID.set(request_id), logs.CLIENT_REQUEST_ID.set(client_id))
        started = time.perf_counter()
        status = 500

        async def sending(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = int(message["status"])
                message.setdefault("headers", [])
                message["headers"] = [*message["headers"], (b"x-request-id", request_id.encode())]
            await send(message)

        carried = Headers(scope=scope)
        try:
            with tracing.serving(carried) as span:
                try:
                    await self.app(scope, receive, sending)
                finally:
                    name = transaction(scope.get("route"))
                    route = str(getattr(scope.get("route"), "path", ""))
                    tracing.served(span, scope.get("method", "WS"), name, route, status)
        finally:
            self._record(scope, status, time.perf_counter() - started)
            logs.CLIENT_REQUEST_ID.reset(tokens[1])
            logs.REQUEST_ID.reset(tokens[0])

    @staticmethod
    def _record(scope: Scope, status: int, seconds: float) -> None:
        name = transaction(scope.get("route"))
        level = logging.DEBUG if name in _QUIET else logging.INFO
        if name not in _QUIET and scope["type"] == "http":
            metrics.transaction_seconds(name, status, seconds)
        if not access.isEnabledFor(level):
            return
        method = scope.get("method", "WS")
        query = shown_query(scope.get("query_string", b""), access.isEnabledFor(logging.DEBUG))
        path = scope["path"] + query
        access.log(
            level,
            "%s %s %d %.1f ms",
            method,
            path,
            status,
            seconds * 1000,
            extra={
                "transaction": name,
                "status": status,
                "duration_ms": round(seconds * 1000, 1),
                "method": method,
                "path": path,
            },
        )
