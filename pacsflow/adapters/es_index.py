"""Elasticsearch and OpenSearch adapter of the index port (pipeline mode); see ``ports.index``.

Three indices: ``{prefix}-instances``, ``{prefix}-studies`` and ``{prefix}-series``, documents
keyed ``{site}|{uid}``. Each keeps its DICOM JSON whole in ``attributes``, an object that is
stored but not indexed, its UIDs in keyword fields and the match terms of its entity
(``pacsflow.query.terms``) in the keyword field ``terms``, which every QIDO-RS matching rule
queries (``pacsflow.query.es``, the counterpart of the SQLite adapter's ``pacsflow.query.sql``).

Study and series documents hold, as the SQLite adapter's rows do, the level attributes of the
latest instance written plus the derived attributes of PS3.18 10.6.3 (numbers of related
series and instances, ModalitiesInStudy, SOPClassesInStudy), and the terms of both, so that the
derived attributes are returned and matched as stored. Every write recomputes them for the
studies and series it touches (those of the batch and those an instance left) with one
aggregation over the instances index, after the instance writes are searchable (the instance
bulk request waits for a refresh); studies and series left without instances are deleted.
The pipeline serializes writes of one study (the ingest topic is keyed by Study Instance UID),
so two writers do not recompute one study at once. The change feed is a fourth index,
``{prefix}-changefeed`` (``pacsflow.adapters.es_changefeed``), written after the instances.

Written by hand: ``_PlainJsonNode``. The official client sends
``application/vnd.elasticsearch+json; compatible-with=9``, which OpenSearch (and osmem, its
test stand-in) refuse with 406, and rejects replies without ``X-Elastic-Product``, which
OpenSearch omits. The node sends plain ``application/json``; this is how pacsflow supports
OpenSearch with the same client.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field, fields
from typing import Any, Final

from elastic_transport import AiohttpHttpNode, HttpHeaders
from elastic_transport._node import NodeApiResponse  # not re-exported at the top level
from elastic_transport.client_utils import DEFAULT, DefaultType
from elasticsearch import ApiError, AsyncElasticsearch, BadRequestError, TransportError

from pacsflow.adapters.es_changefeed import ElasticsearchChangeFeed
from pacsflow.changefeed.entries import Change, DeletionCause, FeedEntry, deletion
from pacsflow.dicom.levels import level_attributes, series_derived, study_derived
from pacsflow.errors import BadRequest, IndexUnavailable
from pacsflow.ports.index import (
    IndexedEntity,
    IndexTotals,
    InstanceDocument,
    InstanceRef,
    check_scan_studies,
)
from pacsflow.query.es import (
    MAX_PARENT_UIDS,
    TERMS_FIELD,
    parent_levels,
    parent_query,
    search_body,
    sort,
)
from pacsflow.query.model import Condition, Level, Query, SearchPage
from pacsflow.query.terms import entity_terms, first_value

__all__ = [
    "ElasticsearchIndex",
    "index_bodies",
    "instance_from_source",
    "instance_source",
    "level_source",
]

JsonDict = dict[str, Any]

_TIMEOUT: Final = 10.0  # seconds per request
CHECK_TIMEOUT: Final = 2.0  # seconds for the readiness request, which is not retried
_RETRIES: Final = 2  # on connection errors, timeouts, 429 and 502-504
_WINDOW: Final = 10_000  # index.max_result_window: from + size beyond it needs search_after
_MAX_SERIES: Final = 10_000  # series buckets per study in one aggregation
_MAX_TERMS: Final = 1_000  # modality and SOP Class buckets per study
_COMPAT: Final = re.compile(r"application/vnd\.elasticsearch\+([\w.-]+); ?compatible-with=\d+")
_WHERE: Final = ["site", "study_uid", "series_uid"]
_REF_FIELDS: Final = ("study_uid", "series_uid", "sop_uid", "transfer_syntax", "size", "sha256")
_SCAN_KEYS: Final = {
    Level.STUDY: "study_uid",
    Level.SERIES: "series_uid",
    Level.INSTANCE: "sop_uid",
}
# The match terms: matched by term, terms, wildcard and range queries, never sorted on.
_TERMS_MAPPING: Final = {"type": "keyword", "doc_values": False}


# ---- mappings and documents: pure functions, golden-tested in tests/unit/test_es_mappings.py


def index_bodies(prefix: str) -> dict[str, JsonDict]:
    """Index name → mappings of the three indices under ``prefix``."""

    def body(*names: str) -> JsonDict:
        properties = {
            **{name: {"type": "keyword"} for name in names},
            TERMS_FIELD: dict(_TERMS_MAPPING),
            "attributes": {"type": "object", "enabled": False},
        }
        return {"mappings": {"dynamic": "strict", "properties": properties}}

    instance_fields = ("site", "study_uid", "series_uid", "sop_uid", "sop_class_uid")
    instances = body(*instance_fields, "transfer_syntax", "modality", "object_key", "sha256")
    instances["mappings"]["properties"]["size"] = {"type": "long"}
    return {
        f"{prefix}-instances": instances,
        f"{prefix}-studies": body("site", "study_uid"),
        f"{prefix}-series": body("site", "study_uid", "series_uid"),
    }


def doc_id(site: str, uid: str) -> str:
    """The document id of a UID within a site."""
    return f"{site}|{uid}"


def instance_source(doc: InstanceDocument) -> JsonDict:
    """The instances-index document of an instance: every field, its modality and terms."""
    # the fields as they are (``asdict`` deep-copied the attributes: a seventh of a reindex's CPU)
    source: JsonDict = {f.name: getattr(doc, f.name) for f in fields(doc)}
    if modality := first_value(doc.attributes, "00080060"):
        source["modality"] = modality  # aggregated into ModalitiesInStudy
    source[TERMS_FIELD] = entity_terms(doc.attributes, Level.INSTANCE)
    return source


def instance_from_source(source: JsonDict) -> InstanceDocument:
    """The instance an instances-index document holds."""
    return InstanceDocument(**{f.name: source[f.name] for f in fields(InstanceDocument)})


def level_source(
    level: Level, site: str, study_uid: str, series_uid: str, attributes: JsonDict
) -> JsonDict:
    """The studies- or series-index document of an entity (``attributes`` with the derived).

    ``series_uid`` is ignored for a study.
    """
    source: JsonDict = {"site": site, "study_uid": study_uid}
    if level is Level.SERIES:
        source["series_uid"] = series_uid
    elif level is not Level.STUDY:
        raise ValueError(f"no {level} documents in the study and series indices")
    source["attributes"] = attributes
    source[TERMS_FIELD] = entity_terms(attributes, level)
    return source


class _PlainJsonNode(AiohttpHttpNode):
    """aiohttp node speaking plain ``application/json`` (Elasticsearch, OpenSearch, osmem)."""

    async def perform_request(  # type: ignore[override]  # as AiohttpHttpNode's own
        self,
        method: str,
        target: str,
        body: bytes | None = None,
        headers: HttpHeaders | None = None,
        request_timeout: DefaultType | float | None = DEFAULT,
    ) -> NodeApiResponse:
        """Send with compatible-with media types made plain; accept any product's reply."""
        plain = HttpHeaders(
            {k: _COMPAT.sub(r"application/\1", v) for k, v in (headers or {}).items()}
        )
        response = await super().perform_request(method, target, body, plain, request_timeout)
        if "x-elastic-product" not in response.meta.headers:
            response.meta.headers["x-elastic-product"] = "Elasticsearch"
        return response


@contextmanager
def _unavailable(action: str) -> Iterator[None]:
    try:
        yield
    except BadRequestError as exc:
        if action == "search":  # too many clauses, a pattern too complex: the query's fault
            raise BadRequest(f"the index cannot evaluate this query: {exc.message}") from exc
        raise IndexUnavailable(f"Elasticsearch index {action} failed: {exc}") from exc
    except (ApiError, TransportError) as exc:
        raise IndexUnavailable(f"Elasticsearch index {action} failed: {exc}") from exc


def _check_items(response: Mapping[str, Any], *, missing_ok: bool = False) -> None:
    for item in response["items"]:
        (result,) = item.values()
        if "error" in result and not (missing_ok and result.get("status") == 404):
            raise IndexUnavailable(f"Elasticsearch bulk item failed: {result['error']}")


def _keys(aggregation: Mapping[str, Any]) -> list[str]:
    if aggregation.get("sum_other_doc_count"):
        raise IndexUnavailable("Elasticsearch aggregation truncated: too many distinct values")
    return [str(bucket["key"]) for bucket in aggregation["buckets"]]


def _terms(field: str, size: int, **sub: JsonDict) -> JsonDict:
    terms: JsonDict = {"terms": {"field": field, "size": max(1, size)}}
    return {**terms, "aggs": sub} if sub else terms


_STUDY_AGGS: Final = {
    "series": _terms("series_uid", _MAX_SERIES),
    "modalities": _terms("modality", _MAX_TERMS),
    "classes": _terms("sop_class_uid", _MAX_TERMS),
}


@dataclass
class _Touched:
    """The studies and series of one site a write changes: UID → the latest instance's
    attributes (``None``: an instance left it, keep its stored attributes); series also
    map to their Study Instance UID."""

    studies: dict[str, JsonDict | None] = field(default_factory=dict)
    series: dict[str, tuple[str, JsonDict | None]] = field(default_factory=dict)


class ElasticsearchIndex:
    """The index in three Elasticsearch/OpenSearch indices named after ``prefix``."""

    def __init__(
        self,
        url: str,
        *,
        prefix: str = "pacsflow",
        refresh: bool = True,
        api_key: str | None = None,
        basic_auth: tuple[str, str] | None = None,
        verify_certs: bool = True,
        ca_certs: str | None = None,
    ) -> None:
        self._url = url
        self._bodies = index_bodies(prefix)
        self._instances, self._studies, self._series = self._bodies
        self._index_of = {
            Level.STUDY: self._studies,
            Level.SERIES: self._series,
            Level.INSTANCE: self._instances,
        }
        self._refresh: bool | str = "wait_for" if refresh else False
        self._feed = ElasticsearchChangeFeed(f"{prefix}-changefeed", self._refresh)
        self._options: JsonDict = {
            **{"node_class": _PlainJsonNode, "request_timeout": _TIMEOUT},
            **{"max_retries": _RETRIES, "retry_on_timeout": True, "verify_certs": verify_certs},
            **{"api_key": api_key, "basic_auth": basic_auth},
            **({"ca_certs": ca_certs} if ca_certs is not None else {}),
        }
        self._client: AsyncElasticsearch | None = None

    @property
    def _es(self) -> AsyncElasticsearch:
        if self._client is None:
            raise IndexUnavailable("the index is not started")
        return self._client

    async def start(self) -> None:
        """Connect and create the three indices with their mappings (idempotent).

        Indices created by an older version get the ``terms`` field added, so writes succeed;
        their documents written before lack terms until their instances are indexed again.
        """
        if self._client is None:
            self._client = AsyncElasticsearch(self._url, **self._options)
        for name, body in self._bodies.items():
            with _unavailable("creation"):
                try:
                    await self._es.indices.create(index=name, **body)
                except BadRequestError as exc:
                    if exc.error != "resource_already_exists_exception":
                        raise
                    terms = {TERMS_FIELD: dict(_TERMS_MAPPING)}
                    await self._es.indices.put_mapping(index=name, properties=terms)
        await self._feed.create(self._es)

    async def close(self) -> None:
        """Close the client's connections."""
        if self._client is not None:
            await self._client.close()
            self._client = None

    async def check(self) -> None:
        """Count nothing in the three indices (bounded, not retried).

        A ``match_none`` count reaches a copy of every shard, needs only the ``read`` privilege
        pacsflow has anyway (cluster health would need ``monitor``), and fails when an index is
        missing or has a shard without a copy (red).
        """
        probe = self._es.options(request_timeout=CHECK_TIMEOUT, max_retries=0)
        with _unavailable("check"):
            answer = await probe.count(index=list(self._bodies), query={"match_none": {}})
        shards = answer.body.get("_shards", {})
        if shards.get("failed"):
            raise IndexUnavailable(f"Elasticsearch index check: {shards['failed']} shards failed")

    async def upsert_instances(
        self, documents: Sequence[InstanceDocument], changes: Sequence[Change] = ()
    ) -> None:
        """Index a batch; then recompute the studies and series it touched; then append the
        changes to the feed.

        A document with a known SOP Instance UID replaces the entry, which may move to another
        study or series: the ones it left are recomputed too (or deleted when left empty).
        """
        if documents:
            await self._upsert(documents)
        if changes:
            await self._feed.append(self._es, changes)

    async def _upsert(self, documents: Sequence[InstanceDocument]) -> None:
        ids = {doc_id(d.site, d.sop_uid): None for d in documents}
        lookups = [{"_index": self._instances, "_id": i, "_source": _WHERE} for i in ids]
        with _unavailable("upsert"):
            found = await self._es.mget(docs=lookups)
        touched: dict[str, _Touched] = {}
        for hit in found["docs"]:
            if "error" in hit:
                raise IndexUnavailable(f"Elasticsearch index lookup failed: {hit['error']}")
            if hit.get("found"):
                source = hit["_source"]
                before = touched.setdefault(source["site"], _Touched())
                before.studies.setdefault(source["study_uid"], None)
                before.series.setdefault(source["series_uid"], (source["study_uid"], None))
        operations: list[JsonDict] = []
        for d in documents:
            after = touched.setdefault(d.site, _Touched())
            after.studies[d.study_uid] = d.attributes
            after.series[d.series_uid] = (d.study_uid, d.attributes)
            target = {"_index": self._instances, "_id": doc_id(d.site, d.sop_uid)}
            operations += [{"index": target}, instance_source(d)]
        with _unavailable("upsert"):
            # wait_for: the aggregation of _recompute must see these instances
            answer = await self._es.bulk(operations=operations, refresh="wait_for")
            _check_items(answer.body)
        for site, entities in touched.items():
            await self._recompute(site, entities)

    async def _recompute(self, site: str, touched: _Touched) -> None:
        """Rewrite the study and series documents of ``touched`` from their instances.

        One aggregation over the instances index gives the derived attributes; a study or
        series without instances is deleted.
        """
        kept = [(self._studies, uid) for uid, a in touched.studies.items() if a is None]
        kept += [(self._series, uid) for uid, (_, a) in touched.series.items() if a is None]
        stored = await self._attributes(site, kept)
        studies, series = sorted(touched.studies), sorted(touched.series)
        aggs = {
            "studies": {
                "filter": {"terms": {"study_uid": studies}},
                "aggs": {"by": _terms("study_uid", len(studies), **_STUDY_AGGS)},
            },
            "series": {
                "filter": {"terms": {"series_uid": series}},
                "aggs": {"by": _terms("series_uid", len(series))},
            },
        }
        either = [{"terms": {"study_uid": studies}}, {"terms": {"series_uid": series}}]
        query = {
            "bool": {
                "filter": [{"term": {"site": site}}],
                "should": either,
                "minimum_should_match": 1,
            }
        }
        with _unavailable("update"):
            found = await self._es.search(index=self._instances, size=0, query=query, aggs=aggs)
        present = {b["key"]: b for b in found["aggregations"]["studies"]["by"]["buckets"]}
        counts = {
            b["key"]: b["doc_count"] for b in found["aggregations"]["series"]["by"]["buckets"]
        }
        _keys(found["aggregations"]["studies"]["by"])  # raises when truncated
        _keys(found["aggregations"]["series"]["by"])
        operations: list[JsonDict] = []
        for uid, (study_uid, attributes) in sorted(touched.series.items()):
            target = {"_index": self._series, "_id": doc_id(site, uid)}
            if uid not in counts:
                operations.append({"delete": target})
                continue
            base = (
                stored.get((self._series, uid), {})
                if attributes is None
                else level_attributes(attributes, "series")
            )
            merged = dict(sorted({**base, **series_derived(counts[uid])}.items()))
            source = level_source(Level.SERIES, site, study_uid, uid, merged)
            operations += [{"index": target}, source]
        for uid, attributes in sorted(touched.studies.items()):
            target = {"_index": self._studies, "_id": doc_id(site, uid)}
            if (bucket := present.get(uid)) is None:
                operations.append({"delete": target})
                continue
            derived = study_derived(
                len(_keys(bucket["series"])),
                bucket["doc_count"],
                _keys(bucket["modalities"]),
                _keys(bucket["classes"]),
            )
            base = (
                stored.get((self._studies, uid), {})
                if attributes is None
                else level_attributes(attributes, "study")
            )
            merged = dict(sorted({**base, **derived}.items()))
            operations += [{"index": target}, level_source(Level.STUDY, site, uid, uid, merged)]
        with _unavailable("update"):
            answer = await self._es.bulk(operations=operations, refresh=self._refresh)
            _check_items(answer.body, missing_ok=True)

    async def get_instance(self, site: str, sop_uid: str) -> InstanceDocument | None:
        """The entry of one SOP Instance UID, or ``None``."""
        with _unavailable("read"):
            hit = await self._es.options(ignore_status=404).get(
                index=self._instances, id=doc_id(site, sop_uid)
            )
        source = hit.get("_source") if hit.get("found") else None
        if source is None or (source["site"], source["sop_uid"]) != (site, sop_uid):
            return None
        return instance_from_source(source)

    async def get_instance_ref(self, site: str, sop_uid: str) -> InstanceRef | None:
        """Where one SOP Instance UID is stored (its attributes are not fetched), or ``None``."""
        with _unavailable("read"):
            hit = await self._es.options(ignore_status=404).get(
                index=self._instances,
                id=doc_id(site, sop_uid),
                source_includes=["site", *_REF_FIELDS],
            )
        source = hit.get("_source") if hit.get("found") else None
        if source is None or (source["site"], source["sop_uid"]) != (site, sop_uid):
            return None
        return InstanceRef(*(source[f] for f in _REF_FIELDS))

    async def get_instances(
        self, site: str, sop_uids: Sequence[str]
    ) -> dict[str, InstanceDocument]:
        """The entries of several SOP Instance UIDs, by UID (one multi-get)."""
        wanted = list(dict.fromkeys(sop_uids))
        if not wanted:
            return {}
        lookups = [{"_index": self._instances, "_id": doc_id(site, uid)} for uid in wanted]
        with _unavailable("read"):
            found = await self._es.mget(docs=lookups)
        out: dict[str, InstanceDocument] = {}
        for hit in found["docs"]:
            if "error" in hit:
                raise IndexUnavailable(f"Elasticsearch index lookup failed: {hit['error']}")
            source = hit.get("_source") if hit.get("found") else None
            if source is not None and source["site"] == site and source["sop_uid"] in wanted:
                out[source["sop_uid"]] = instance_from_source(source)
        return out

    async def delete_instances(
        self, site: str, sop_uids: Sequence[str], cause: DeletionCause | None = None
    ) -> None:
        """Append the ``delete`` changes of the entries held, then remove them (one bulk
        request); their studies and series are recomputed or deleted when left empty.

        The changes go first: their origins are the same when the deletion is redelivered, so
        an interrupted deletion is fed once, and a feed reader may meet a ``delete`` entry a
        moment before searches stop finding the instance (no transaction spans both).
        """
        entries = await self.get_instances(site, sop_uids)
        if not entries:
            return
        why = cause or DeletionCause.unnamed()
        gone = [
            deletion(why, site, e.study_uid, e.series_uid, uid, e.sop_class_uid)
            for uid, e in entries.items()
        ]
        await self._feed.append(self._es, gone)
        touched = _Touched()
        operations: list[JsonDict] = []
        for uid, entry in entries.items():
            touched.studies[entry.study_uid] = None
            touched.series[entry.series_uid] = (entry.study_uid, None)
            operations.append({"delete": {"_index": self._instances, "_id": doc_id(site, uid)}})
        with _unavailable("delete"):
            # wait_for: the aggregation of _recompute must no longer see these instances
            answer = await self._es.bulk(operations=operations, refresh="wait_for")
            _check_items(answer.body, missing_ok=True)
        await self._recompute(site, touched)

    async def totals(self) -> IndexTotals:
        """Entities per level (counts) and the bytes of the instances (a sum aggregation)."""
        with _unavailable("totals"):
            studies = await self._es.count(index=self._studies)
            series = await self._es.count(index=self._series)
            found = await self._es.search(
                index=self._instances,
                size=0,
                track_total_hits=True,
                aggs={"bytes": {"sum": {"field": "size"}}},
            )
        instances = int(found["hits"]["total"]["value"])
        size = int(found["aggregations"]["bytes"]["value"] or 0)
        return IndexTotals(int(studies["count"]), int(series["count"]), instances, size)

    async def read_changes(self, site: str, after: int = 0, limit: int = 100) -> list[FeedEntry]:
        """Entries of the site's feed above ``after``, in order (``es_changefeed``)."""
        return await self._feed.read(self._es, site, after, limit)

    async def latest_change(self, site: str) -> FeedEntry | None:
        """The site's entry with the highest sequence, or ``None``."""
        return await self._feed.latest(self._es, site)

    async def list_instances(
        self, site: str, study_uid: str, series_uid: str | None = None
    ) -> list[InstanceRef]:
        """Every instance of a study or series, by Series then SOP Instance UID."""
        filters: list[JsonDict] = [{"term": {"site": site}}, {"term": {"study_uid": study_uid}}]
        if series_uid is not None:
            filters.append({"term": {"series_uid": series_uid}})
        fields = list(_REF_FIELDS)
        request: JsonDict = {
            "query": {"bool": {"filter": filters}},
            "sort": [{"series_uid": "asc"}, {"sop_uid": "asc"}],
            "source": {"includes": fields},
        }
        refs: list[InstanceRef] = []
        while True:
            with _unavailable("search"):
                found = await self._es.search(index=self._instances, **request, size=_WINDOW)
            page = found["hits"]["hits"]
            refs += [InstanceRef(*(hit["_source"][f] for f in fields)) for hit in page]
            if len(page) < _WINDOW:
                return refs
            request["search_after"] = page[-1]["sort"]

    async def list_middle_instances(
        self, site: str, study_uid: str, series_uid: str | None = None
    ) -> list[InstanceRef]:
        """The middle instance of each series, by Series UID (picked from ``list_instances``)."""
        by_series: dict[str, list[InstanceRef]] = {}
        for ref in await self.list_instances(site, study_uid, series_uid):
            by_series.setdefault(ref.series_uid, []).append(ref)
        return [members[len(members) // 2] for members in by_series.values()]

    async def scan(
        self,
        site: str,
        level: Level,
        after: str = "",
        limit: int = 1000,
        studies: Sequence[str] = (),
    ) -> list[IndexedEntity]:
        """Entities of ``level`` after the UID ``after``, by UID (``search_after`` on it); of
        ``studies`` only when given."""
        check_scan_studies(studies)
        key = _SCAN_KEYS[level]
        filters: list[JsonDict] = [{"term": {"site": site}}]
        if studies:
            filters.append({"terms": {"study_uid": list(studies)}})
        request: JsonDict = {
            "query": {"bool": {"filter": filters}},
            "sort": [{key: "asc"}],
            "source": {"excludes": [TERMS_FIELD]},
            "size": limit,
            **({"search_after": [after]} if after else {}),
        }
        with _unavailable("scan"):
            found = await self._es.search(index=self._index_of[level], **request)
        sources = [hit["_source"] for hit in found["hits"]["hits"]]
        if level is Level.INSTANCE:
            documents = [instance_from_source(source) for source in sources]
            return [
                IndexedEntity(d.sop_uid, d.study_uid, d.series_uid, d.attributes, d)
                for d in documents
            ]
        return [
            IndexedEntity(s[key], s["study_uid"], s.get("series_uid", ""), s["attributes"])
            for s in sources
        ]

    async def search(self, site: str, query: Query) -> SearchPage:
        """One page of the entities matching ``query`` and their number (PS3.18 10.6).

        Relational conditions first select the UIDs of the matching parents (at most
        ``MAX_PARENT_UIDS``, else ``BadRequest``). As the SQLite adapter's, records of series
        and instances carry the attributes of their study (and series) under their own.
        """
        parent_uids: dict[Level, list[str]] = {}
        for level in parent_levels(query):
            conditions = [c for c in query.conditions if c.level is level]
            parent_uids[level] = await self._parent_uids(site, level, conditions, query)
            if not parent_uids[level]:
                return SearchPage([], 0)
        body = search_body(site, query, parent_uids)
        hits, total = await self._page(self._index_of[query.level], body)
        sources = [hit["_source"] for hit in hits]
        if query.level is Level.STUDY:
            return SearchPage([source["attributes"] for source in sources], total)
        wanted = [(self._studies, source["study_uid"]) for source in sources]
        if query.level is Level.INSTANCE:
            wanted += [(self._series, source["series_uid"]) for source in sources]
        parents = await self._attributes(site, wanted)
        records = []
        for source in sources:
            record = dict(parents.get((self._studies, source["study_uid"]), {}))
            record.update(parents.get((self._series, source.get("series_uid", "")), {}))
            record.update(source["attributes"])  # parents first: the entity's own attributes win
            records.append(record)
        return SearchPage(records, total)

    async def _parent_uids(
        self, site: str, level: Level, conditions: Sequence[Condition], query: Query
    ) -> list[str]:
        """The UIDs of the ``level`` entities matching the relational ``conditions``."""
        request: JsonDict = {
            "query": parent_query(
                site, level, conditions, study_uid=query.study_uid, series_uid=query.series_uid
            ),
            "sort": sort(level),
            "track_total_hits": True,
        }
        uids: list[str] = []
        while True:
            with _unavailable("search"):
                found = await self._es.search(
                    index=self._index_of[level], **request, size=_WINDOW, source=False
                )
            if request["track_total_hits"]:
                if (total := found["hits"]["total"]["value"]) > MAX_PARENT_UIDS:
                    names = ", ".join(c.parameter for c in conditions)
                    raise BadRequest(
                        f"query parameters {names}: {total} {level} entities match, more than"
                        f" the {MAX_PARENT_UIDS} a search for {query.level} entities can take;"
                        " narrow the query"
                    )
                request["track_total_hits"] = False
            page = found["hits"]["hits"]
            uids += [str(hit["sort"][0]) for hit in page]
            if len(page) < _WINDOW:
                return uids
            request["search_after"] = page[-1]["sort"]

    async def _page(self, index: str, body: JsonDict) -> tuple[list[JsonDict], int]:
        """The hits of one page and the number of all matches.

        By from/size within the result window, else by ``search_after`` on the sort values,
        skipping the first ``from`` hits without their sources.
        """
        offset, limit = body["from"], body["size"]
        request: JsonDict = {"query": body["query"], "sort": body["sort"]}
        source: JsonDict = {"includes": ["attributes", "study_uid", "series_uid"]}  # no terms
        with _unavailable("search"):
            if offset + limit <= _WINDOW:
                found = await self._es.search(
                    index=index,
                    **request,
                    from_=offset,
                    size=limit,
                    source=source,
                    track_total_hits=True,
                )
                return list(found["hits"]["hits"]), int(found["hits"]["total"]["value"])
            hits: list[JsonDict] = []
            skip, total = offset, None
            while len(hits) < limit:
                size = min(_WINDOW, skip or limit - len(hits))
                found = await self._es.search(
                    index=index,
                    **request,
                    size=size,
                    source=False if skip else source,
                    track_total_hits=total is None,
                )
                if total is None:
                    total = int(found["hits"]["total"]["value"])
                    if offset >= total:
                        break
                page = found["hits"]["hits"]
                if skip:
                    skip -= len(page)
                else:
                    hits += page
                if len(page) < size:
                    break
                request["search_after"] = page[-1]["sort"]
        return hits, total or 0

    async def _attributes(
        self, site: str, wanted: Sequence[tuple[str, str]]
    ) -> dict[tuple[str, str], JsonDict]:
        """(index, UID) → the attributes of those documents (the ones found), one request."""
        distinct = list(dict.fromkeys(wanted))
        if not distinct:
            return {}
        lookups = [
            {"_index": index, "_id": doc_id(site, uid), "_source": ["attributes"]}
            for index, uid in distinct
        ]
        with _unavailable("search"):
            found = await self._es.mget(docs=lookups)
        attributes: dict[tuple[str, str], JsonDict] = {}
        for key, hit in zip(distinct, found["docs"], strict=True):
            if "error" in hit:
                raise IndexUnavailable(f"Elasticsearch lookup failed: {hit['error']}")
            if hit.get("found"):
                attributes[key] = hit["_source"].get("attributes", {})
        return attributes
