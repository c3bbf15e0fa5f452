"""HEAD on every GET resource (RFC 9110 9.3.2): the headers a GET would get, and no content.

``Router`` is the ``APIRouter`` of the services: each GET route it is given gets a HEAD twin
(same endpoint and dependencies, its own operation id ``{name}_head``). ``HeadWithoutContent``
drops the content of every HEAD response, so that status and headers, Content-Length among
them, are exactly those of the GET. Streamed representations are not produced at all for HEAD
(``services.retrieval.respond``).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from fastapi import APIRouter
from starlette.types import ASGIApp, Message, Receive, Scope, Send

__all__ = ["HeadWithoutContent", "Router"]


class Router(APIRouter):
    """An ``APIRouter`` whose GET routes answer HEAD too."""

    def add_api_route(self, path: str, endpoint: Callable[..., Any], **options: Any) -> None:
        """Add the route, and its HEAD twin when it answers GET."""
        super().add_api_route(path, endpoint, **options)
        methods = {m.upper() for m in options.get("methods") or ()}
        if "GET" not in methods:
            return
        name = options.get("name") or endpoint.__name__
        twin = {
            **options,
            "methods": ["HEAD"],
            "name": f"{name}_head",
            "operation_id": f"{name}_head",
            "summary": f"{(options.get('summary') or name.replace('_', ' ')).capitalize()}"
            " (headers only)",
            "description": f"The headers of {name} (HEAD, RFC 9110 9.3.2), no content.",
        }
        super().add_api_route(path, endpoint, **twin)


class HeadWithoutContent:
    """ASGI middleware: the response to a HEAD request keeps its headers and loses its content."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] != "HEAD":
            await self.app(scope, receive, send)
            return

        async def without_content(message: Message) -> None:
            if message["type"] == "http.response.body":
                message = {**message, "body": b""}
            await send(message)

        await self.app(scope, receive, without_content)
