"""Entity tags and the render cache of WADO-RS retrievals (RFC 9110 8.8.3, 13.1.2)."""

from __future__ import annotations

import pytest

from pacsflow.ports import InstanceRef
from pacsflow.wado.render_cache import CachedRendering, RenderCache
from pacsflow.wado.validators import entity_tag, is_current


def _ref(sop: str, sha256: str) -> InstanceRef:
    return InstanceRef("1.2", "1.2.3", sop, "1.2.840.10008.1.2.1", 10, sha256)


def test_the_tag_follows_the_instances_digests_and_what_is_asked() -> None:
    one = entity_tag(b"v1", [_ref("1", "aa")], "image/jpeg")
    assert one == entity_tag(b"v1", [_ref("1", "aa")], "image/jpeg")
    assert one != entity_tag(b"v1", [_ref("1", "ab")], "image/jpeg")  # replaced instance
    assert one != entity_tag(b"v1", [_ref("1", "aa")], "image/png")
    assert one != entity_tag(b"v2", [_ref("1", "aa")], "image/jpeg")
    assert entity_tag(b"v1", [], "ab", "c") != entity_tag(b"v1", [], "a", "bc")
    assert one.startswith('"') and entity_tag(b"v1", [], weak=True).startswith('W/"')


@pytest.mark.parametrize(
    ("etag", "header", "current"),
    [
        ('"x"', None, False),
        ('"x"', '"x"', True),
        ('W/"x"', '"x"', True),  # weak comparison
        ('"x"', 'W/"x"', True),
        ('W/"x"', '"y", W/"x"', True),
        ('W/"x"', '"y"', False),
        ('"x"', "*", True),
    ],
)
def test_if_none_match_uses_weak_comparison(etag: str, header: str | None, current: bool) -> None:
    assert is_current(etag, header) is current


def test_the_cache_keeps_at_most_its_bytes_least_recently_used_first() -> None:
    cache = RenderCache(max_bytes=100)
    for name in "abcd":
        cache.put(name, CachedRendering("image/jpeg", name.encode() * 10))
    assert cache.held_bytes == 40
    assert cache.get("a") is not None  # a is now the most recently used
    for name in "efghijk":
        cache.put(name, CachedRendering("image/jpeg", name.encode() * 10))
    assert cache.held_bytes <= 100
    assert cache.get("b") is None and cache.get("a") is not None
    assert cache.get("k") == CachedRendering("image/jpeg", b"k" * 10)


def test_a_rendering_larger_than_its_share_or_no_cache_keeps_nothing() -> None:
    cache = RenderCache(max_bytes=100)
    cache.put("big", CachedRendering("image/gif", b"x" * 20))
    assert cache.get("big") is None and cache.held_bytes == 0
    off = RenderCache(max_bytes=0)
    off.put("a", CachedRendering("image/jpeg", b"a"))
    assert off.get("a") is None
