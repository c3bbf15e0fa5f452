"""Entity tags of retrieved representations and the conditional GET (RFC 9110 8.8.3, 13.1.2).

A stored instance never changes under its digest (a replaced instance has a new SHA-256 in the
index), so a representation's tag derives from the digests of the instances it is made of and
from what the request asks, without reading any object: ``If-None-Match`` is answered with 304
after the index lookup alone.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable

from pacsflow.ports import InstanceRef

__all__ = ["entity_tag", "is_current"]


def entity_tag(kind: bytes, refs: Iterable[InstanceRef], *asked: str, weak: bool = False) -> str:
    """The tag of a representation of ``kind`` made of ``refs`` for a request asking ``asked``."""
    digest = hashlib.sha256(kind)
    for text in asked:
        digest.update(f"{len(text)}:{text};".encode())
    for ref in refs:
        digest.update(f"{ref.sop_uid}:{ref.sha256};".encode())
    tag = f'"{digest.hexdigest()[:40]}"'
    return f"W/{tag}" if weak else tag


def is_current(etag: str, if_none_match: str | None) -> bool:
    """True when ``If-None-Match`` is ``*`` or lists ``etag`` (weak comparison, RFC 9110 13.1.2)."""
    if if_none_match is None:
        return False
    listed = {tag.strip().removeprefix("W/") for tag in if_none_match.split(",")}
    return "*" in listed or etag.removeprefix("W/") in listed
