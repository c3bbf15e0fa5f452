"""``GET /metrics`` (Prometheus text format) and the middleware that times every request.

Beside ``/health``, outside the DICOMweb roots: no PHI is in any metric, and Prometheus
scrapes without a token (restrict it by network, docs/operations.md).
"""

from __future__ import annotations

import time

from fastapi import APIRouter
from fastapi.responses import Response
from starlette.routing import BaseRoute
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from pacsflow.telemetry import metrics

__all__ = ["RequestTimer", "router"]

router = APIRouter()


@router.get("/metrics")
async def read_metrics() -> Response:
    """The process's metrics (all of ``serve``'s processes) in the Prometheus text format."""
    return Response(metrics.render(), media_type=metrics.CONTENT_TYPE)


def transaction(route: BaseRoute | None) -> str:
    """The transaction a request belongs to: its router's module (``stow``, ``qido``,
    ``wado``, ``rendered``, ``changefeed``...); ``other`` for an unrouted request."""
    endpoint = getattr(route, "endpoint", None)
    if endpoint is None:
        return "other"
    return str(endpoint.__module__).rsplit(".", 1)[-1]


class RequestTimer:
    """Observes each HTTP request's duration by transaction and status class."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Time the request from its start to its last response byte."""
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 500

        async def sending(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = int(message["status"])
            await send(message)

        try:
            await self.app(scope, receive, sending)
        finally:
            name = transaction(scope.get("route"))
            if name not in ("metrics", "health"):
                metrics.transaction_seconds(name, status, time.perf_counter() - started)
