"""Logs: plain text or one JSON object a line (``PACSFLOW_LOG_FORMAT``), each with the id of
the HTTP request it belongs to (docs/operations.md, "Logs").

The request id is made by the server for every request (``new_request_id``), answered in the
``X-Request-ID`` header, and is the id of a STOW-RS request's ingest records, so the lines of
the front end and of the processor about one request share it. A client's own
``X-Request-ID`` is logged beside it (``client_request_id``), never used as a key.

No PHI at the default level: pacsflow's messages name instances by UID, never by patient name
or ID; the access log gives a query's parameter names and keeps its values for ``debug``.
"""

from __future__ import annotations

import logging
import re
import sys
import uuid
from contextvars import ContextVar
from datetime import UTC, datetime
from typing import Final, Literal

import orjson

__all__ = [
    "REQUEST_ID",
    "JsonFormatter",
    "LogFormat",
    "RequestIdFilter",
    "client_request_id",
    "configure",
    "new_request_id",
]

LogFormat = Literal["text", "json"]

REQUEST_ID: ContextVar[str] = ContextVar("pacsflow_request_id", default="")
CLIENT_REQUEST_ID: ContextVar[str] = ContextVar("pacsflow_client_request_id", default="")
_TEXT: Final = "%(asctime)s %(levelname)s %(name)s: %(message)s"
_CLIENT_ID: Final = re.compile(r"[A-Za-z0-9._:/+=-]{1,128}")


def new_request_id() -> str:
    """A fresh id for a request (unique: it keys the request's ingest records)."""
    return uuid.uuid4().hex


def client_request_id(header: str | None) -> str:
    """A client's ``X-Request-ID`` if it is a plain token of at most 128 characters."""
    return header if header is not None and _CLIENT_ID.fullmatch(header) else ""


class RequestIdFilter(logging.Filter):
    """Gives every record the request id of the context it was logged in (unless given)."""

    def filter(self, record: logging.LogRecord) -> bool:
        """Add ``request_id`` and ``client_request_id``; keep the record."""
        if not getattr(record, "request_id", ""):
            record.request_id = REQUEST_ID.get()
        if not getattr(record, "client_request_id", ""):
            record.client_request_id = CLIENT_REQUEST_ID.get()
        return True


class JsonFormatter(logging.Formatter):
    """One JSON object a line: time, level, logger, message, request ids, error."""

    def format(self, record: logging.LogRecord) -> str:
        """The record as JSON (fields without a value left out)."""
        entry = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
            "request_id": getattr(record, "request_id", ""),
            "client_request_id": getattr(record, "client_request_id", ""),
            "pid": record.process,
        }
        for name in ("transaction", "status", "duration_ms", "method", "path"):
            if hasattr(record, name):
                entry[name] = getattr(record, name)
        if record.exc_info:
            entry["error"] = self.formatException(record.exc_info)
        return orjson.dumps({k: v for k, v in entry.items() if v not in ("", None)}).decode()


def handler(log_format: LogFormat) -> logging.Handler:
    """A handler on stderr writing ``log_format``, with the request id filter."""
    out = logging.StreamHandler(sys.stderr)
    out.setFormatter(JsonFormatter() if log_format == "json" else logging.Formatter(_TEXT))
    out.addFilter(RequestIdFilter())
    return out


def configure(level: str, log_format: LogFormat) -> None:
    """Send every log record of the process (uvicorn's too) to one handler on stderr."""
    root = logging.getLogger()
    for previous in list(root.handlers):
        root.removeHandler(previous)
    root.addHandler(handler(log_format))
    root.setLevel(level.upper())
    for name in ("uvicorn", "uvicorn.error", "uvicorn.access"):
        logging.getLogger(name).handlers.clear()
        logging.getLogger(name).propagate = True
