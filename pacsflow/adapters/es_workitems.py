"""Elasticsearch/OpenSearch adapter of the workitem store port (pipeline mode); see the port.

Three indices under the prefix: ``{prefix}-workitems`` (one document per workitem, keyed
``{site}|{uid}``), ``{prefix}-workitem-tombstones`` (the UIDs of deleted workitems) and
``{prefix}-workitem-globals`` (one document per site: its global subscriptions).

Changes to one workitem are serialized by Elasticsearch's optimistic concurrency control: a
document's version is its ``_seq_no`` and ``_primary_term``, which ``get`` reads (real time,
no refresh needed) and ``replace``/``delete`` require (``if_seq_no``/``if_primary_term``); a
document written in between makes the write fail with 409, which becomes ``VersionConflict``.
Two ``pacsflow ups`` replicas racing for one workitem therefore cannot both win, whichever
node each asks. Every write refreshes the index, so a search that follows sees it (workitem
writes are few; ingest-scale write rates are not expected here).

A workitem document keeps its attributes whole (stored, not indexed), its match terms in the
keyword field ``terms`` (``pacsflow.query.terms`` at ``Level.WORKITEM``, searched with
``pacsflow.query.es`` like the study index), its subscribers as an AE title list for scans and
an object for their locks, and its outbox as stored-only JSON. Searches page with
``from``/``size`` within ``index.max_result_window`` (10,000 workitems); deeper pages answer
``BadRequest`` asking to narrow the query.
"""

from __future__ import annotations

from typing import Any, Final

from elasticsearch import ConflictError, NotFoundError

from pacsflow.adapters.es_index import _unavailable, doc_id
from pacsflow.adapters.es_store import ElasticsearchStore
from pacsflow.errors import BadRequest
from pacsflow.ports.workitems import Globals, StoredWorkitem, VersionConflict, WorkitemExists
from pacsflow.query.es import TERMS_FIELD, search_body
from pacsflow.query.model import Level, Query, SearchPage
from pacsflow.query.terms import entity_terms

__all__ = ["ElasticsearchWorkitemStore", "workitem_bodies", "workitem_source"]

JsonDict = dict[str, Any]

_WINDOW: Final = 10_000
_STORED: Final = {"type": "object", "enabled": False}


def workitem_bodies(prefix: str) -> dict[str, JsonDict]:
    """Index name → mappings of the three workitem indices under ``prefix``."""

    def body(properties: JsonDict) -> JsonDict:
        return {"mappings": {"dynamic": "strict", "properties": properties}}

    keyword = {"type": "keyword"}
    return {
        f"{prefix}-workitems": body(
            {
                "site": keyword,
                "workitem_uid": keyword,
                "state": keyword,
                "subscribers": keyword,
                "locked": {"type": "boolean"},
                "outbox_since": {"type": "double"},
                "finished": {"type": "double"},
                "created": {"type": "double"},
                TERMS_FIELD: {"type": "keyword", "doc_values": False},
                "attributes": _STORED,
                "stored": _STORED,
            }
        ),
        f"{prefix}-workitem-tombstones": body({"site": keyword, "workitem_uid": keyword}),
        f"{prefix}-workitem-globals": body({"site": keyword, "subscriptions": _STORED}),
    }


def workitem_source(item: StoredWorkitem) -> JsonDict:
    """The document of a workitem (pure; golden-tested)."""
    return {
        "site": item.site,
        "workitem_uid": item.uid,
        "state": item.state,
        "subscribers": sorted(item.subscribers),
        "locked": item.locked,
        "outbox_since": item.outbox_since,
        "finished": item.finished,
        "created": item.created,
        TERMS_FIELD: entity_terms(item.attributes, Level.WORKITEM),
        "attributes": item.attributes,
        "stored": {
            "transaction_uid": item.transaction_uid,
            "subscribers": dict(item.subscribers),
            "event_seq": item.event_seq,
            "outbox": list(item.outbox),
        },
    }


def _item(hit: JsonDict) -> StoredWorkitem:
    source, stored = hit["_source"], hit["_source"]["stored"]
    return StoredWorkitem(
        site=source["site"],
        uid=source["workitem_uid"],
        attributes=source["attributes"],
        state=source["state"],
        transaction_uid=stored["transaction_uid"],
        subscribers=stored["subscribers"],
        event_seq=int(stored["event_seq"]),
        outbox=tuple(stored["outbox"]),
        created=float(source["created"]),
        finished=source["finished"],
        outbox_since=source["outbox_since"],
        version=f"{hit['_seq_no']}:{hit['_primary_term']}",
    )


def _expected(version: str) -> JsonDict:
    seq_no, _, term = version.partition(":")
    if not seq_no or not term:
        raise VersionConflict(f"not a version of this store: {version!r}")
    return {"if_seq_no": int(seq_no), "if_primary_term": int(term)}


class ElasticsearchWorkitemStore(ElasticsearchStore):
    """The workitem store in three Elasticsearch/OpenSearch indices named after ``prefix``."""

    def __init__(
        self,
        url: str,
        *,
        prefix: str = "pacsflow",
        **credentials: Any,
    ) -> None:
        """``credentials``: ``api_key``, ``basic_auth``, ``ca_certs`` (``ElasticsearchStore``)."""
        bodies = workitem_bodies(prefix)
        super().__init__(
            url,
            bodies,
            "workitem store",
            **credentials,
        )
        self._workitems, self._tombstones, self._globals = bodies

    async def get(self, site: str, uid: str) -> StoredWorkitem | None:
        """The latest version of a workitem (a real-time get), or ``None``."""
        with _unavailable("get"):
            try:
                hit = await self._es.get(index=self._workitems, id=doc_id(site, uid))
            except NotFoundError:
                return None
        return _item(dict(hit))

    async def deleted(self, site: str, uid: str) -> bool:
        """Whether the UID has a tombstone."""
        with _unavailable("get"):
            found = await self._es.exists(index=self._tombstones, id=doc_id(site, uid))
        return bool(found)

    async def create(self, item: StoredWorkitem) -> str:
        """Index a new document (``op_type=create``); ``WorkitemExists`` if the UID is taken."""
        if await self.deleted(item.site, item.uid):
            raise WorkitemExists(item.uid)
        with _unavailable("create"):
            try:
                answer = await self._es.index(
                    index=self._workitems,
                    id=doc_id(item.site, item.uid),
                    document=workitem_source(item),
                    op_type="create",
                    refresh=True,
                )
            except ConflictError:
                raise WorkitemExists(item.uid) from None
        return f"{answer['_seq_no']}:{answer['_primary_term']}"

    async def replace(self, item: StoredWorkitem, expected: str) -> str:
        """Index the document if it is still at ``expected``; ``VersionConflict`` otherwise."""
        with _unavailable("write"):
            try:
                answer = await self._es.index(
                    index=self._workitems,
                    id=doc_id(item.site, item.uid),
                    document=workitem_source(item),
                    refresh=True,
                    **_expected(expected),
                )
            except (ConflictError, NotFoundError):
                raise VersionConflict(item.uid) from None
        return f"{answer['_seq_no']}:{answer['_primary_term']}"

    async def delete(self, item: StoredWorkitem, expected: str) -> None:
        """Write the tombstone, then delete the document if still at ``expected``.

        The tombstone goes first so that the UID is never free; it is taken back only when the
        document changed meanwhile, not when another process deleted it first.
        """
        key = doc_id(item.site, item.uid)
        with _unavailable("delete"):
            await self._es.index(
                index=self._tombstones,
                id=key,
                document={"site": item.site, "workitem_uid": item.uid},
                refresh=True,
            )
            try:
                await self._es.delete(
                    index=self._workitems, id=key, refresh=True, **_expected(expected)
                )
            except (ConflictError, NotFoundError):
                # 409 also when the document is gone (another process deleted it): then the
                # tombstone stays; it is taken back only if the workitem is still there.
                if await self._es.exists(index=self._workitems, id=key):
                    await self._es.delete(index=self._tombstones, id=key, refresh=True)
                raise VersionConflict(item.uid) from None

    async def search(self, site: str, query: Query) -> SearchPage:
        """One page of ``query`` (``pacsflow.query.es``) and the number of all matches."""
        if query.level is not Level.WORKITEM:
            raise ValueError(f"a {query.level} query on the workitem store")
        if query.offset + query.limit > _WINDOW:
            raise BadRequest(
                f"offset + limit may reach {_WINDOW} workitems at most; narrow the query"
            )
        body = search_body(site, query)
        with _unavailable("search"):
            found = await self._es.search(
                index=self._workitems,
                query=body["query"],
                sort=body["sort"],
                from_=body["from"],
                size=body["size"],
                track_total_hits=True,
                source={"includes": ["attributes"]},
            )
        hits = found["hits"]
        return SearchPage(
            [hit["_source"]["attributes"] for hit in hits["hits"]], hits["total"]["value"]
        )

    async def scan(
        self,
        site: str,
        *,
        subscriber: str | None = None,
        outbox_before: float | None = None,
        finished_before: float | None = None,
        after: str = "",
        limit: int = 100,
    ) -> list[StoredWorkitem]:
        """Workitems by UID after ``after`` meeting every criterion given (see the port)."""
        filters: list[JsonDict] = [{"term": {"site": site}}]
        if after:
            filters.append({"range": {"workitem_uid": {"gt": after}}})
        if subscriber is not None:
            filters.append({"term": {"subscribers": subscriber}})
        if outbox_before is not None:
            filters.append({"range": {"outbox_since": {"lt": outbox_before}}})
        if finished_before is not None:
            filters.append({"range": {"finished": {"lt": finished_before}}})
            filters.append({"term": {"locked": False}})
        with _unavailable("scan"):
            found = await self._es.search(
                index=self._workitems,
                query={"bool": {"filter": filters}},
                sort=[{"workitem_uid": "asc"}],
                size=limit,
                seq_no_primary_term=True,
            )
        return [_item(hit) for hit in found["hits"]["hits"]]

    async def subscriber_aes(self, site: str) -> set[str]:
        """Every AE title subscribed to a workitem of ``site`` (a terms aggregation)."""
        with _unavailable("aggregation"):
            found = await self._es.search(
                index=self._workitems,
                query={"term": {"site": site}},
                size=0,
                aggs={"aes": {"terms": {"field": "subscribers", "size": _WINDOW}}},
            )
        return {str(bucket["key"]) for bucket in found["aggregations"]["aes"]["buckets"]}

    async def get_globals(self, site: str) -> Globals:
        """The global subscriptions of ``site`` (a real-time get)."""
        with _unavailable("get"):
            try:
                hit = await self._es.get(index=self._globals, id=site)
            except NotFoundError:
                return Globals(site)
        version = f"{hit['_seq_no']}:{hit['_primary_term']}"
        return Globals.from_document(site, hit["_source"]["subscriptions"], version)

    async def put_globals(self, globals_: Globals, expected: str) -> str:
        """Write the global subscriptions at ``expected`` (``""``: create the document)."""
        document = {"site": globals_.site, "subscriptions": globals_.to_document()}
        condition = _expected(expected) if expected else {"op_type": "create"}
        with _unavailable("write"):
            try:
                answer = await self._es.index(
                    index=self._globals,
                    id=globals_.site,
                    document=document,
                    refresh=True,
                    **condition,
                )
            except (ConflictError, NotFoundError):
                raise VersionConflict(globals_.site) from None
        return f"{answer['_seq_no']}:{answer['_primary_term']}"
