"""Elasticsearch and OpenSearch adapter of the index port (pipeline mode); see ``ports.index``.

Three indices: ``{prefix}-instances``, ``{prefix}-studies`` and ``{prefix}-series``, documents
keyed ``{site}|{uid}``. Each keeps its DICOM JSON whole in ``attributes``, an object that is
stored but not indexed, beside a few keyword/date fields for queries. Study and series documents
take the level attributes of the latest instance written, as the SQLite adapter does; the
derived attributes of PS3.18 10.6.3 are aggregated from the instances index at search time.
The ``modalities`` field of a study document (ModalitiesInStudy, for QIDO) is kept current on
write: merged with the batch, re-aggregated for the studies an instance left or changed in.
The pipeline serializes writes of one study (the ingest topic is keyed by Study Instance UID).

Written by hand: ``_PlainJsonNode``. The official client sends
``application/vnd.elasticsearch+json; compatible-with=9``, which OpenSearch (and osmem, its
test stand-in) refuse with 406, and rejects replies without ``X-Elastic-Product``, which
OpenSearch omits. The node sends plain ``application/json``; this is how pacsflow supports
OpenSearch with the same client.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import asdict, fields
from datetime import datetime
from typing import Any, Final

from elastic_transport import AiohttpHttpNode, HttpHeaders
from elastic_transport._node import NodeApiResponse  # not re-exported at the top level
from elastic_transport.client_utils import DEFAULT, DefaultType
from elasticsearch import ApiError, AsyncElasticsearch, BadRequestError, TransportError

from pacsflow.dicom.levels import level_attributes, series_derived, study_derived
from pacsflow.errors import IndexUnavailable
from pacsflow.ports.index import InstanceDocument, SeriesRecord, StudyRecord

__all__ = [
    "ElasticsearchIndex",
    "index_bodies",
    "instance_from_source",
    "instance_source",
    "series_source",
    "study_source",
]

JsonDict = dict[str, Any]

_TIMEOUT: Final = 10.0  # seconds per request
_RETRIES: Final = 2  # on connection errors, timeouts, 429 and 502-504
_WINDOW: Final = 10_000  # index.max_result_window: from + size beyond it needs search_after
_MAX_SERIES: Final = 10_000  # series buckets per study in one aggregation
_MAX_TERMS: Final = 1_000  # modality and SOP Class buckets per study
_COMPAT: Final = re.compile(r"application/vnd\.elasticsearch\+([\w.-]+); ?compatible-with=\d+")
_WHERE: Final = ["site", "sop_uid", "study_uid", "series_uid", "modality"]


# ---- mappings and documents: pure functions, golden-tested in tests/unit/test_es_mappings.py


def index_bodies(prefix: str) -> dict[str, JsonDict]:
    """Index name → settings and mappings of the three indices under ``prefix``."""

    def body(fields: JsonDict, **extra: JsonDict) -> JsonDict:
        properties = {**fields, "attributes": {"type": "object", "enabled": False}}
        return {**extra, "mappings": {"dynamic": "strict", "properties": properties}}

    def keywords(*names: str) -> JsonDict:
        return {name: {"type": "keyword"} for name in names}

    lowercase = {"pacsflow_lowercase": {"type": "custom", "filter": ["lowercase"]}}
    return {
        f"{prefix}-instances": body(
            {
                **keywords("site", "study_uid", "series_uid", "sop_uid", "sop_class_uid"),
                **keywords("transfer_syntax", "modality", "object_key", "sha256"),
                "size": {"type": "long"},
            }
        ),
        f"{prefix}-studies": body(
            {
                **keywords("site", "study_uid", "patient_id", "accession_number", "modalities"),
                "patient_name": {"type": "keyword", "normalizer": "pacsflow_lowercase"},
                "study_date": {"type": "date", "format": "yyyyMMdd"},
                # TM as seconds after midnight: range matching of times (PS3.4 C.2.2.2.5)
                "study_time": {"type": "double"},
            },
            settings={"analysis": {"normalizer": lowercase}},
        ),
        f"{prefix}-series": body(keywords("site", "study_uid", "series_uid", "modality")),
    }


def doc_id(site: str, uid: str) -> str:
    """The document id of a UID within a site."""
    return f"{site}|{uid}"


def _values(attributes: JsonDict, tag: str) -> list[Any]:
    element = attributes.get(tag)
    return list(element.get("Value") or []) if isinstance(element, dict) else []


def _first(attributes: JsonDict, tag: str) -> str:
    values = _values(attributes, tag)
    return str(values[0]) if values and isinstance(values[0], str | int | float) else ""


def _is_date(value: str) -> bool:
    try:
        datetime.strptime(value, "%Y%m%d")
    except ValueError:
        return False
    return len(value) == 8 and value.isdigit()


def instance_source(doc: InstanceDocument) -> JsonDict:
    """The instances-index document of an instance."""
    source = asdict(doc)
    if modality := _first(doc.attributes, "00080060"):
        source["modality"] = modality
    return source


def instance_from_source(source: JsonDict) -> InstanceDocument:
    """The instance an instances-index document holds."""
    return InstanceDocument(**{f.name: source[f.name] for f in fields(InstanceDocument)})


def study_source(doc: InstanceDocument, modalities: Iterable[str]) -> JsonDict:
    """The studies-index document an instance writes (PS3.18 10.6.3 study level)."""
    attributes = level_attributes(doc.attributes, "study")
    source: JsonDict = {
        "site": doc.site,
        "study_uid": doc.study_uid,
        "modalities": sorted({m for m in modalities if m}),
        "attributes": attributes,
    }
    names = [n.get("Alphabetic") for n in _values(attributes, "00100010") if isinstance(n, dict)]
    if names := [n for n in names if isinstance(n, str) and n]:
        source["patient_name"] = names
    for field, tag in (("patient_id", "00100020"), ("accession_number", "00080050")):
        if value := _first(attributes, tag):
            source[field] = value
    if _is_date(date := _first(attributes, "00080020")):
        source["study_date"] = date
    if (seconds := tm_seconds(_first(attributes, "00080030"))) is not None:
        source["study_time"] = seconds
    return source


def tm_seconds(value: str) -> float | None:
    """Seconds after midnight of a TM value ``HH[MM[SS[.F{1,6}]]]`` (PS3.5 6.2), or None."""
    value = value.strip()
    whole, _, fraction = value.partition(".")
    if not whole.isdigit() or len(whole) not in (2, 4, 6) or (fraction and not fraction.isdigit()):
        return None
    hours, minutes, seconds = int(whole[:2]), int(whole[2:4] or 0), int(whole[4:6] or 0)
    if hours > 23 or minutes > 59 or seconds > 60 or len(fraction) > 6:
        return None
    return (
        hours * 3600
        + minutes * 60
        + seconds
        + (int(fraction) / 10 ** len(fraction) if fraction else 0)
    )


def series_source(doc: InstanceDocument) -> JsonDict:
    """The series-index document an instance writes (PS3.18 10.6.3 series level)."""
    source: JsonDict = {
        "site": doc.site,
        "study_uid": doc.study_uid,
        "series_uid": doc.series_uid,
        "attributes": level_attributes(doc.attributes, "series"),
    }
    if modality := _first(doc.attributes, "00080060"):
        source["modality"] = modality
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
        self._refresh: bool | str = "wait_for" if refresh else False
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
        """Connect and create the three indices with their mappings (idempotent)."""
        if self._client is None:
            self._client = AsyncElasticsearch(self._url, **self._options)
        for name, body in self._bodies.items():
            with _unavailable("creation"):
                try:
                    await self._es.indices.create(index=name, **body)
                except BadRequestError as exc:
                    if exc.error != "resource_already_exists_exception":
                        raise

    async def close(self) -> None:
        """Close the client's connections."""
        if self._client is not None:
            await self._client.close()
            self._client = None

    async def upsert_instances(self, documents: Sequence[InstanceDocument]) -> None:
        """Index a batch in one bulk request; replaced entries may move between studies."""
        if not documents:
            return
        sops = {doc_id(d.site, d.sop_uid): None for d in documents}
        studies = {doc_id(d.site, d.study_uid): None for d in documents}
        lookups = [{"_index": self._instances, "_id": i, "_source": _WHERE} for i in sops]
        lookups += [{"_index": self._studies, "_id": i, "_source": ["modalities"]} for i in studies]
        with _unavailable("upsert"):
            found = await self._es.mget(docs=lookups)
        where: dict[str, tuple[str, str, str]] = {}  # sop doc id → (study, series, modality)
        modalities: dict[str, set[str]] = {i: set() for i in studies}
        for hit in found["docs"]:
            if "error" in hit:
                raise IndexUnavailable(f"Elasticsearch index lookup failed: {hit['error']}")
            if hit.get("found") and hit["_index"] == self._instances:
                s = hit["_source"]
                where[hit["_id"]] = (s["study_uid"], s["series_uid"], s.get("modality", ""))
            elif hit.get("found"):
                modalities[hit["_id"]].update(hit["_source"].get("modalities", []))
        touched: dict[str, tuple[set[str], set[str]]] = {}  # site → studies, series left
        for d in documents:
            modality = _first(d.attributes, "00080060")
            modalities[doc_id(d.site, d.study_uid)].add(modality)
            before = where.get(key := doc_id(d.site, d.sop_uid))
            if before is not None and before != (d.study_uid, d.series_uid, modality):
                touched.setdefault(d.site, (set(), set()))[0].add(before[0])
                touched[d.site][1].add(before[1])
            where[key] = (d.study_uid, d.series_uid, modality)
        operations: list[JsonDict] = []
        for d in documents:
            operations += [
                {"index": {"_index": self._instances, "_id": doc_id(d.site, d.sop_uid)}},
                instance_source(d),
                {"index": {"_index": self._studies, "_id": doc_id(d.site, d.study_uid)}},
                study_source(d, modalities[doc_id(d.site, d.study_uid)]),
                {"index": {"_index": self._series, "_id": doc_id(d.site, d.series_uid)}},
                series_source(d),
            ]
        refresh = "wait_for" if touched else self._refresh  # _reconcile searches these writes
        with _unavailable("upsert"):
            _check_items((await self._es.bulk(operations=operations, refresh=refresh)).body)
        for site, (left_studies, left_series) in touched.items():
            await self._reconcile(site, left_studies, left_series)

    async def _reconcile(self, site: str, studies: set[str], series: set[str]) -> None:
        """Recompute study modalities; drop study and series documents left without instances."""
        by_study = _terms("study_uid", len(studies), modalities=_terms("modality", _MAX_TERMS))
        aggs = {
            "studies": {
                "filter": {"terms": {"study_uid": sorted(studies)}},
                "aggs": {"by": by_study},
            },
            "series": {
                "filter": {"terms": {"series_uid": sorted(series)}},
                "aggs": {"by": _terms("series_uid", len(series))},
            },
        }
        query = {"term": {"site": site}}
        with _unavailable("update"):
            found = await self._es.search(index=self._instances, size=0, query=query, aggs=aggs)
            present = {b["key"]: b for b in found["aggregations"]["studies"]["by"]["buckets"]}
            kept_series = set(_keys(found["aggregations"]["series"]["by"]))
            operations: list[JsonDict] = []
            for uid in sorted(studies):
                target = {"_index": self._studies, "_id": doc_id(site, uid)}
                if uid in present:
                    modalities = sorted(_keys(present[uid]["modalities"]))
                    operations += [{"update": target}, {"doc": {"modalities": modalities}}]
                else:
                    operations.append({"delete": target})
            for uid in sorted(series - kept_series):
                operations.append({"delete": {"_index": self._series, "_id": doc_id(site, uid)}})
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

    async def delete_instance(self, site: str, sop_uid: str) -> None:
        """Remove an entry and the study/series documents it leaves empty."""
        entry = await self.get_instance(site, sop_uid)
        if entry is None:
            return
        with _unavailable("delete"):
            await self._es.options(ignore_status=404).delete(
                index=self._instances, id=doc_id(site, sop_uid), refresh="wait_for"
            )
        await self._reconcile(site, {entry.study_uid}, {entry.series_uid})

    async def _sorted_hits(
        self, index: str, query: JsonDict, field: str, offset: int, limit: int | None
    ) -> list[JsonDict]:
        """Hits in ``field`` order, by from/size within the result window, else search_after."""
        request: JsonDict = {"index": index, "query": query, "sort": [{field: "asc"}]}
        with _unavailable("search"):
            if limit is not None and offset + limit <= _WINDOW:
                found = await self._es.search(**request, from_=offset, size=limit)
                return list(found["hits"]["hits"])
            hits: list[JsonDict] = []
            skip = offset
            while limit is None or len(hits) < limit:
                size = min(_WINDOW, skip or (_WINDOW if limit is None else limit - len(hits)))
                found = await self._es.search(**request, size=size, source=not skip)
                page = found["hits"]["hits"]
                if skip:
                    skip -= len(page)
                else:
                    hits += page
                if len(page) < size:
                    break
                request["search_after"] = page[-1]["sort"]
            return hits

    async def _count(self, site: str, field: str, uids: list[str], aggs: JsonDict) -> JsonDict:
        """Instances whose ``field`` is one of ``uids``, bucketed by ``field``: key → bucket."""
        query = {"bool": {"filter": [{"term": {"site": site}}, {"terms": {field: uids}}]}}
        by = _terms(field, len(uids), **aggs)
        with _unavailable("search"):
            found = await self._es.search(
                index=self._instances, size=0, query=query, aggs={"by": by}
            )
        return {b["key"]: b for b in found["aggregations"]["by"]["buckets"]}

    async def search_studies(self, site: str, limit: int, offset: int) -> list[StudyRecord]:
        """Studies in Study Instance UID order with their derived attributes (PS3.18 10.6.3)."""
        query = {"term": {"site": site}}
        hits = await self._sorted_hits(self._studies, query, "study_uid", offset, limit)
        uids = [h["_source"]["study_uid"] for h in hits]
        buckets = await self._count(site, "study_uid", uids, _STUDY_AGGS) if uids else {}
        records = []
        for uid, hit in zip(uids, hits, strict=True):
            if (bucket := buckets.get(uid)) is not None:  # else left empty by an interrupted write
                counts = (len(_keys(bucket["series"])), bucket["doc_count"])
                kinds = (_keys(bucket["modalities"]), _keys(bucket["classes"]))
                attributes = {**hit["_source"]["attributes"], **study_derived(*counts, *kinds)}
                records.append(StudyRecord(site, uid, attributes))
        return records

    async def search_series(self, site: str, study_uid: str) -> list[SeriesRecord]:
        """Series of a study in Series Instance UID order with instance counts (PS3.18 10.6.3)."""
        query = {"bool": {"filter": [{"term": {"site": site}}, {"term": {"study_uid": study_uid}}]}}
        hits = await self._sorted_hits(self._series, query, "series_uid", 0, None)
        uids = [h["_source"]["series_uid"] for h in hits]
        buckets = await self._count(site, "series_uid", uids, {}) if uids else {}
        records = []
        for uid, hit in zip(uids, hits, strict=True):
            if (bucket := buckets.get(uid)) is not None:
                attributes = {**hit["_source"]["attributes"], **series_derived(bucket["doc_count"])}
                records.append(SeriesRecord(site, study_uid, uid, attributes))
        return records
