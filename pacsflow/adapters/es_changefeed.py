"""The change feed of the Elasticsearch index: ``{prefix}-changefeed``, one shard.

Elasticsearch has no transaction spanning documents and no sequence, so the feed is built
from three kinds of documents of one index:

* a *counter* per site (``{site}|counter``): the highest sequence handed out. A writer claims
  the next ``n`` numbers by a compare-and-set (``if_seq_no``/``if_primary_term``) of this
  document, so two writers never get the same number, whichever process they run in;
* an *origin* per change (``{site}|origin|{origin}``): looked up (a realtime multi-get) before
  a claim, so a change appended again (a redelivered ingest record) is not numbered twice;
* an *entry* per sequence (``{site}|{sequence}``): the change, its number and when it was
  written.

A writer indexes its instances first, then claims, then writes its entries in one bulk
request: a ``create`` entry is never visible before its instance (a deletion writes its
``delete`` entries first, then removes the instances: ``ElasticsearchIndex.delete_instances``).
Writers of several ingest workers interleave, so a reader may see sequence 12 before 11 is
written; ``read`` therefore stops at the first missing number, unless an entry after it was
written more than ``HOLE_SECONDS`` ago (a writer that claimed numbers and died before writing
them leaves a hole for good, and the ingest record it was writing is numbered again when
redelivered). So a reader that resumes after the last sequence it read misses nothing a live
writer writes.
"""

from __future__ import annotations

import time
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import asdict
from typing import Any, Final

from elasticsearch import (
    ApiError,
    AsyncElasticsearch,
    BadRequestError,
    ConflictError,
    TransportError,
)

from pacsflow.changefeed.entries import Change, FeedEntry
from pacsflow.errors import IndexUnavailable

__all__ = ["HOLE_SECONDS", "ElasticsearchChangeFeed", "changefeed_body"]

JsonDict = dict[str, Any]

HOLE_SECONDS: Final = 120.0  # beyond any bulk request's timeout and retries (es_index.py)
_CLAIM_ATTEMPTS: Final = 100


def changefeed_body() -> JsonDict:
    """Settings and mappings of the feed index: one shard, so a refresh shows one order."""
    keyword = {"type": "keyword"}
    return {
        "settings": {"number_of_shards": 1},
        "mappings": {
            "dynamic": "strict",
            "properties": {
                "kind": keyword,
                "site": keyword,
                "origin": keyword,
                "sequence": {"type": "long"},
                "written": {"type": "long"},  # epoch milliseconds
                "change": {"type": "object", "enabled": False},
            },
        },
    }


@contextmanager
def _unavailable(action: str) -> Iterator[None]:
    try:
        yield
    except (ApiError, TransportError) as exc:
        raise IndexUnavailable(f"Elasticsearch change feed {action} failed: {exc}") from exc


def _entry(source: Mapping[str, Any]) -> FeedEntry:
    return FeedEntry(int(source["sequence"]), Change.from_dict(source["change"]))


class ElasticsearchChangeFeed:
    """The feeds of every site in the index ``name``."""

    def __init__(self, name: str, refresh: bool | str) -> None:
        self.name = name
        self._refresh = refresh

    async def create(self, es: AsyncElasticsearch) -> None:
        """Create the feed index (idempotent)."""
        with _unavailable("creation"):
            try:
                await es.indices.create(index=self.name, **changefeed_body())
            except BadRequestError as exc:
                if exc.error != "resource_already_exists_exception":
                    raise

    async def append(self, es: AsyncElasticsearch, changes: Sequence[Change]) -> None:
        """Number the changes not yet in their sites' feeds and write them, in order."""
        by_site: dict[str, dict[str, Change]] = {}
        for change in changes:
            by_site.setdefault(change.site, {}).setdefault(change.origin, change)
        for site, pending in by_site.items():
            ids = [origin_id(change) for change in pending.values()]
            with _unavailable("lookup"):
                found = await es.mget(index=self.name, ids=ids, source=False)
            known = {hit["_id"] for hit in found["docs"] if hit.get("found")}
            fresh = [c for c, i in zip(pending.values(), ids, strict=True) if i not in known]
            if not fresh:
                continue
            first = await self._claim(es, site, len(fresh))
            written = int(time.time() * 1000)
            operations: list[JsonDict] = []
            for sequence, change in enumerate(fresh, start=first):
                common: JsonDict = {"site": site, "origin": change.origin}
                common |= {"sequence": sequence, "written": written}
                entry = {"kind": "entry", **common, "change": asdict(change)}
                operations += [{"index": {"_index": self.name, "_id": f"{site}|{sequence}"}}]
                operations += [entry, {"index": {"_index": self.name, "_id": origin_id(change)}}]
                operations += [{"kind": "origin", **common}]
            with _unavailable("write"):
                answer = await es.bulk(operations=operations, refresh=self._refresh)
            for item in answer.body["items"]:
                (result,) = item.values()
                if "error" in result:
                    raise IndexUnavailable(f"Elasticsearch feed write failed: {result['error']}")

    async def _claim(self, es: AsyncElasticsearch, site: str, count: int) -> int:
        """Claim ``count`` sequence numbers of ``site``; the first of them."""
        key = f"{site}|counter"
        for _ in range(_CLAIM_ATTEMPTS):
            with _unavailable("claim"):
                current = await es.options(ignore_status=404).get(index=self.name, id=key)
                highest = int(current["_source"]["sequence"]) if current.get("found") else 0
                document = {"kind": "counter", "site": site, "sequence": highest + count}
                condition: JsonDict = (
                    {"if_seq_no": current["_seq_no"], "if_primary_term": current["_primary_term"]}
                    if current.get("found")
                    else {"op_type": "create"}
                )
                try:
                    await es.index(index=self.name, id=key, document=document, **condition)
                except ConflictError:
                    continue  # another writer claimed first: read the counter again
            return highest + 1
        raise IndexUnavailable(f"Elasticsearch change feed of {site}: the counter stays contended")

    async def read(
        self, es: AsyncElasticsearch, site: str, after: int, limit: int
    ) -> list[FeedEntry]:
        """Entries above ``after`` in order, up to the first number not written yet."""
        query = {
            "bool": {
                "filter": [
                    {"term": {"kind": "entry"}},
                    {"term": {"site": site}},
                    {"range": {"sequence": {"gt": after}}},
                ]
            }
        }
        with _unavailable("read"):
            found = await es.search(
                index=self.name, query=query, sort=[{"sequence": "asc"}], size=limit
            )
        stale = (time.time() - HOLE_SECONDS) * 1000
        entries: list[FeedEntry] = []
        expected = after + 1
        for hit in found["hits"]["hits"]:
            source = hit["_source"]
            if source["sequence"] != expected and source["written"] > stale:
                break  # a number not written yet: its writer is still at work
            entries.append(_entry(source))
            expected = int(source["sequence"]) + 1
        return entries

    async def latest(self, es: AsyncElasticsearch, site: str) -> FeedEntry | None:
        """The site's entry with the highest sequence written."""
        query = {"bool": {"filter": [{"term": {"kind": "entry"}}, {"term": {"site": site}}]}}
        with _unavailable("read"):
            found = await es.search(
                index=self.name, query=query, sort=[{"sequence": "desc"}], size=1
            )
        hits = found["hits"]["hits"]
        return _entry(hits[0]["_source"]) if hits else None


def origin_id(change: Change) -> str:
    """The document id that records an origin in its site's feed."""
    return f"{change.site}|origin|{change.origin}"
