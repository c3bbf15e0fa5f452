"""Maps pacsflow errors to HTTP status codes, in one place; no stack trace reaches a client."""

from __future__ import annotations

import logging
import re
from collections.abc import Mapping

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.requests import ClientDisconnect

from pacsflow.errors import (
    RETRY_AFTER,
    BadRequest,
    Conflict,
    Forbidden,
    Gone,
    InsufficientStorage,
    NotAcceptable,
    NotFound,
    PacsflowError,
    PayloadTooLarge,
    RangeNotSatisfiable,
    ServiceUnavailable,
    Unauthorized,
    UnsupportedMediaType,
)
from pacsflow.telemetry import metrics

__all__ = ["RETRY_AFTER", "WARN_AGENT", "header_text", "install_error_handlers", "warning_header"]

log = logging.getLogger(__name__)

_STATUS: dict[type[PacsflowError], int] = {
    BadRequest: 400,
    Unauthorized: 401,
    Forbidden: 403,
    NotFound: 404,
    Conflict: 409,
    Gone: 410,
    NotAcceptable: 406,
    PayloadTooLarge: 413,
    RangeNotSatisfiable: 416,
    UnsupportedMediaType: 415,
    InsufficientStorage: 507,  # before its base class ServiceUnavailable
    ServiceUnavailable: 503,
}
WARN_AGENT = "pacsflow"  # the <service> of a Warning when the request names no host


_NOT_VISIBLE = re.compile(r"[^\x20-\x7e]")  # beside visible ASCII and space (RFC 9110 5.5)


def header_text(text: str) -> str:
    """``text`` safe inside a quoted header value: visible ASCII and spaces only, no quote or
    backslash (a NUL, CR or LF from a request would make the whole response illegal)."""
    return _NOT_VISIBLE.sub("?", text.replace('"', "'").replace("\\", "/"))


def warning_header(text: str, agent: str | None = None) -> str:
    """A ``Warning`` value with code 299 and ``text`` (PS3.18 8.4, Chapter 11), as STOW's."""
    return f'299 {header_text(agent or WARN_AGENT)} "{header_text(text)}"'


def _problem(status: int, message: str, headers: Mapping[str, str] | None = None) -> Response:
    return JSONResponse({"status": status, "message": message}, status, headers=headers)


def _method(request: Request) -> str:
    """The request's method; a WebSocket handshake (the handlers answer it too) has none."""
    return str(request.scope.get("method", "WEBSOCKET"))


def install_error_handlers(app: FastAPI) -> None:
    """Register the handlers on ``app``."""

    @app.exception_handler(PacsflowError)
    async def pacsflow_error(request: Request, exc: PacsflowError) -> Response:
        status = next((s for t, s in _STATUS.items() if isinstance(exc, t)), 500)
        if status == 500:
            log.error("unmapped error on %s %s: %r", _method(request), request.url.path, exc)
            return _problem(500, "internal error")
        headers = dict(RETRY_AFTER) if status in (503, 507) else {}
        challenge = getattr(exc, "challenge", None)
        if challenge:
            headers["WWW-Authenticate"] = challenge
        if exc.warning:
            headers["Warning"] = warning_header(exc.warning, request.url.hostname)
        if status in (503, 507):
            log.warning("%s %s: %s", _method(request), request.url.path, exc)
            metrics.backend_error(exc)
        return _problem(status, str(exc), headers)

    @app.exception_handler(RequestValidationError)
    async def validation_error(request: Request, exc: RequestValidationError) -> Response:
        parts = [f"{'.'.join(str(p) for p in e['loc'])}: {e['msg']}" for e in exc.errors()]
        return _problem(400, "; ".join(parts) or "invalid request")

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException) -> Response:
        return _problem(exc.status_code, str(exc.detail), dict(exc.headers or {}))

    @app.exception_handler(ClientDisconnect)
    async def disconnected(request: Request, exc: ClientDisconnect) -> Response:
        log.info("%s %s: the client went away mid-request", request.method, request.url.path)
        return _problem(400, "the client disconnected before the request was complete")

    @app.exception_handler(Exception)
    async def unexpected(request: Request, exc: Exception) -> Response:
        log.exception("unexpected error on %s %s", request.method, request.url.path)
        return _problem(500, "internal error")
