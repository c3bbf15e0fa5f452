"""Streaming multipart/related parsing (RFC 2387) for STOW-RS request bodies (PS3.18 8.6.1.2).

python-multipart does the boundary scanning; this module turns its callbacks into an async
stream of parts whose bodies arrive chunk by chunk, so a body is never held in memory whole.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass, field

from python_multipart.exceptions import FormParserError
from python_multipart.multipart import MultipartParser, MultipartState, parse_options_header

from pacsflow.errors import BadRequest, UnsupportedMediaType

__all__ = [
    "MAX_BOUNDARY_LENGTH",
    "PartEvent",
    "check_boundary",
    "media_type_parameters",
    "parse_parts",
    "require_multipart_related",
]

MAX_BOUNDARY_LENGTH = 70  # RFC 2046 5.1.1: a boundary is 1 to 70 characters


@dataclass(slots=True)
class PartEvent:
    """``begin`` (with headers), ``data`` (with a chunk), ``end``, or ``truncated``."""

    kind: str
    headers: dict[str, str] = field(default_factory=dict)
    data: bytes = b""


def media_type_parameters(content_type: str) -> tuple[str, dict[str, str]]:
    """Split a Content-Type into a lower-case media type and its (unquoted) parameters."""
    media, params = parse_options_header(content_type)
    return media.decode("latin-1").lower(), {
        k.decode("latin-1").lower(): v.decode("latin-1") for k, v in params.items()
    }


def require_multipart_related(content_type: str, accepted_types: frozenset[str]) -> str:
    """Check a STOW Content-Type (PS3.18 10.5.1.1); return its boundary.

    Raises ``UnsupportedMediaType`` (415) for other media types and ``BadRequest`` (400) for a
    multipart/related header without a boundary.
    """
    media, params = media_type_parameters(content_type)
    types = " or ".join(f'type="{t}"' for t in sorted(accepted_types))
    if media != "multipart/related":
        raise UnsupportedMediaType(
            f"this resource accepts multipart/related; {types}, not {media or 'none'}"
        )
    part_type = params.get("type", "application/dicom").lower()
    if part_type not in accepted_types:
        raise UnsupportedMediaType(
            f"multipart/related type {part_type!r} is not supported; use {types}"
        )
    boundary = params.get("boundary", "")
    if not boundary:
        raise BadRequest("the multipart/related Content-Type has no boundary parameter")
    return check_boundary(boundary)


def check_boundary(boundary: str) -> str:
    """``boundary`` if it is one RFC 2046 5.1.1 allows (1 to 70 characters); else 400."""
    if not 1 <= len(boundary) <= MAX_BOUNDARY_LENGTH:
        raise BadRequest(
            f"the multipart boundary has {len(boundary)} characters;"
            f" RFC 2046 5.1.1 allows 1 to {MAX_BOUNDARY_LENGTH}"
        )
    return boundary


async def parse_parts(body: AsyncIterator[bytes], boundary: str) -> AsyncIterator[PartEvent]:
    """Yield part events as the body streams in.

    A body that ends inside a part yields ``truncated`` for that part; a body with no valid
    multipart structure raises ``BadRequest``.
    """
    events: list[PartEvent] = []
    header_field = bytearray()
    header_value = bytearray()
    headers: dict[str, str] = {}

    def on_header_field(data: bytes, start: int, end: int) -> None:
        header_field.extend(data[start:end])

    def on_header_value(data: bytes, start: int, end: int) -> None:
        header_value.extend(data[start:end])

    def on_header_end() -> None:
        headers[header_field.decode("latin-1").strip().lower()] = header_value.decode(
            "latin-1"
        ).strip()
        header_field.clear()
        header_value.clear()

    def on_headers_finished() -> None:
        events.append(PartEvent("begin", dict(headers)))
        headers.clear()

    def on_part_data(data: bytes, start: int, end: int) -> None:
        if end > start:
            events.append(PartEvent("data", data=bytes(data[start:end])))

    def on_part_end() -> None:
        events.append(PartEvent("end"))

    parser = MultipartParser(
        check_boundary(boundary),
        {
            "on_header_field": on_header_field,
            "on_header_value": on_header_value,
            "on_header_end": on_header_end,
            "on_headers_finished": on_headers_finished,
            "on_part_data": on_part_data,
            "on_part_end": on_part_end,
        },
    )
    in_part = False
    async for chunk in body:
        try:
            parser.write(chunk)
        except FormParserError as exc:  # MultipartParseError and the parser's other errors
            raise BadRequest(f"malformed multipart/related body: {exc}") from exc
        for event in events:
            in_part = event.kind != "end" if event.kind in ("begin", "end") else in_part
            yield event
        events.clear()
    if parser.state != MultipartState.END:
        if in_part:
            yield PartEvent("truncated")
        elif parser.state in (MultipartState.START, MultipartState.START_BOUNDARY):
            raise BadRequest("the body holds no multipart/related part with the given boundary")
        elif parser.state != MultipartState.END_BOUNDARY:
            # The body ended after a delimiter line or inside a part's headers: that part
            # began and is reported as cut short rather than silently dropped.
            yield PartEvent("begin", dict(headers))
            yield PartEvent("truncated")
