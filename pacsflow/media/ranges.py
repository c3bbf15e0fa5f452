"""HTTP Range requests on bulk data (RFC 9110 14.2): one range, ``bytes=a-b``, ``a-``, ``-n``."""

from __future__ import annotations

import re
from typing import Final

from pacsflow.errors import BadRequest, RangeNotSatisfiable

__all__ = ["parse_range"]

_RANGE: Final = re.compile(r"^bytes=(\d*)-(\d*)$")


def parse_range(header: str | None, size: int) -> tuple[int, int] | None:
    """``(start, length)`` of a single-range ``Range`` header within ``size`` bytes, or None.

    Raises ``RangeNotSatisfiable`` (416) for a range outside the value and ``BadRequest`` for a
    header of several ranges or another unit.
    """
    if header is None or not header.strip():
        return None
    match = _RANGE.match(header.strip().replace(" ", ""))
    if match is None or (not match[1] and not match[2]):
        raise BadRequest(f"Range {header!r}: only one range of bytes is supported")
    if not match[1]:  # the last n bytes
        length = min(int(match[2]), size)
        if length == 0:
            raise RangeNotSatisfiable(f"Range {header!r}: the value has {size} bytes")
        return size - length, length
    start = int(match[1])
    end = min(int(match[2]), size - 1) if match[2] else size - 1
    if start >= size or end < start:
        raise RangeNotSatisfiable(f"Range {header!r}: the value has {size} bytes")
    return start, end - start + 1
