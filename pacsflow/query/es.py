"""Translate a :class:`~pacsflow.query.model.Query` to the Elasticsearch/OpenSearch query DSL.

Pure functions, golden-tested in ``tests/unit/test_es_query.py``; they mirror
``pacsflow.query.sql`` (the reference semantics) for the Elasticsearch index adapter. Matching
follows PS3.18 10.6 (Search Transaction) and PS3.4 C.2.2.2 (attribute matching), evaluated on
the match terms of ``pacsflow.query.terms``: every document of the three indices (studies,
series, instances) keeps the terms of its entity in the keyword field ``terms`` and its UIDs in
the keyword fields ``site``, ``study_uid``, ``series_uid`` (and ``sop_uid`` for instances); the
workitems index of the Elasticsearch workitem store keeps ``site``, ``workitem_uid`` and
``terms`` the same way.

A predicate is a query on ``terms``: :class:`Term` a ``term`` query, :class:`Terms` a ``terms``
query, :class:`Glob` a ``wildcard`` query (``*`` and ``?`` stay wildcards, ``\\`` is escaped;
the pattern is already case-normalized, so no ``case_insensitive``), :class:`Range` a ``range``
query (``gte``/``lte``: keywords compare bytewise as UTF-8, like the SQLite ``BINARY``
collation), :class:`Not` a ``bool``/``must_not``, :class:`All` a ``bool``/``filter`` and
:class:`Any_` a ``bool``/``should`` with ``minimum_should_match`` 1.

Conditions on a level above the one searched (relational queries, PS3.18 10.6.1) cannot be a
join in Elasticsearch: the adapter first runs :func:`parent_query` on the index of that level
to fetch the UIDs of the matching parents (``study_uid`` for study-level conditions,
``series_uid`` for series-level ones), then gives them to :func:`level_query` as a ``terms``
filter. At most :data:`MAX_PARENT_UIDS` parents may match (``index.max_terms_count``, the
largest ``terms`` query Elasticsearch accepts by default); above that the adapter answers
``BadRequest`` asking the client to narrow the query.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any, Final

from pacsflow.query.model import (
    All,
    Any_,
    Condition,
    Glob,
    Level,
    Not,
    Predicate,
    Query,
    Range,
    Term,
    Terms,
)

__all__ = [
    "MAX_PARENT_UIDS",
    "TERMS_FIELD",
    "UID_FIELD",
    "level_query",
    "parent_levels",
    "parent_query",
    "predicate_query",
    "search_body",
    "sort",
]

JsonDict = dict[str, Any]

TERMS_FIELD: Final = "terms"
UID_FIELD: Final = {
    Level.STUDY: "study_uid",
    Level.SERIES: "series_uid",
    Level.INSTANCE: "sop_uid",
    Level.WORKITEM: "workitem_uid",
}
# Parent UIDs a relational query may select: Elasticsearch's default index.max_terms_count.
MAX_PARENT_UIDS: Final = 65_536


def _wildcard(pattern: str) -> str:
    """A glob pattern as a wildcard query value: ``*`` and ``?`` stay, ``\\`` is made literal."""
    return pattern.replace("\\", "\\\\")


def _term_values(predicates: Iterable[Predicate]) -> list[str] | None:
    """The values of predicates that are all Term/Terms (one ``terms`` query), else ``None``."""
    values: list[str] = []
    for predicate in predicates:
        if isinstance(predicate, Term):
            values.append(predicate.value)
        elif isinstance(predicate, Terms):
            values.extend(predicate.values)
        else:
            return None
    return values


def predicate_query(predicate: Predicate) -> JsonDict:
    """The query matching the documents whose ``terms`` satisfy ``predicate``."""
    if isinstance(predicate, Term):
        return {"term": {TERMS_FIELD: predicate.value}}
    if isinstance(predicate, Terms):
        return {"terms": {TERMS_FIELD: list(predicate.values)}}
    if isinstance(predicate, Glob):
        return {"wildcard": {TERMS_FIELD: {"value": _wildcard(predicate.pattern)}}}
    if isinstance(predicate, Range):
        return {"range": {TERMS_FIELD: {"gte": predicate.low, "lte": predicate.high}}}
    if isinstance(predicate, Not):
        return {"bool": {"must_not": [predicate_query(predicate.predicate)]}}
    if isinstance(predicate, All):
        return {"bool": {"filter": [predicate_query(p) for p in predicate.predicates]}}
    if not isinstance(predicate, Any_):
        raise TypeError(f"not a predicate: {predicate!r}")
    values = _term_values(predicate.predicates)
    if values:  # as pacsflow.query.sql: one IN (...) of Term/Terms
        return predicate_query(Terms(tuple(values)) if len(values) > 1 else Term(values[0]))
    should = [predicate_query(p) for p in predicate.predicates]
    return {"bool": {"should": should, "minimum_should_match": 1}}


def _bool(filters: list[JsonDict], must_not: list[JsonDict]) -> JsonDict:
    body: JsonDict = {"filter": filters}
    if must_not:
        body["must_not"] = must_not
    return {"bool": body}


def _add(condition: Condition, filters: list[JsonDict], must_not: list[JsonDict]) -> None:
    """A condition's query: a top-level ``Not`` goes to ``must_not`` (as NOT IN in SQL)."""
    if isinstance(condition.predicate, Not):
        must_not.append(predicate_query(condition.predicate.predicate))
    else:
        filters.append(predicate_query(condition.predicate))


def _scope(level: Level, study_uid: str | None, series_uid: str | None) -> list[JsonDict]:
    """The UID filters of the path (``/studies/{study}/series/{series}/...``) at ``level``."""
    filters: list[JsonDict] = []
    if study_uid is not None:
        filters.append({"term": {"study_uid": study_uid}})
    if series_uid is not None and level is not Level.STUDY:
        filters.append({"term": {"series_uid": series_uid}})
    return filters


def parent_levels(query: Query) -> tuple[Level, ...]:
    """The levels above the searched one that have conditions (relational), top down."""
    levels = {c.level for c in query.conditions if c.level.depth < query.level.depth}
    return tuple(sorted(levels, key=lambda level: level.depth))


def parent_query(
    site: str,
    level: Level,
    conditions: Sequence[Condition],
    *,
    study_uid: str | None = None,
    series_uid: str | None = None,
) -> JsonDict:
    """The query of the ``level`` entities satisfying the ``conditions`` at that level.

    Run on the index of ``level`` sorted by :func:`sort`; the UIDs of its hits (at most
    :data:`MAX_PARENT_UIDS`) go to :func:`level_query`. ``study_uid``/``series_uid`` are the
    scope of the search: a parent outside it cannot have a child in it, so the parent set
    stays small for searches within a study (a series belongs to one study).
    """
    filters: list[JsonDict] = [{"term": {"site": site}}, *_scope(level, study_uid, series_uid)]
    must_not: list[JsonDict] = []
    for condition in conditions:
        if condition.level is not level:
            raise ValueError(f"a {condition.level}-level condition in a {level} parent query")
        _add(condition, filters, must_not)
    return _bool(filters, must_not)


def level_query(
    site: str, query: Query, parent_uids: Mapping[Level, Sequence[str]] | None = None
) -> JsonDict:
    """The query of the entities of ``query.level`` matching ``query``.

    ``parent_uids`` holds, for each level of :func:`parent_levels`, the UIDs the
    :func:`parent_query` of that level found; conditions at those levels become a ``terms``
    filter on the level's UID field.
    """
    parent_uids = parent_uids or {}
    level = query.level
    filters: list[JsonDict] = [
        {"term": {"site": site}},
        *_scope(level, query.study_uid, query.series_uid),
    ]
    must_not: list[JsonDict] = []
    for parent in parent_levels(query):
        if parent not in parent_uids:
            raise ValueError(f"the UIDs of the matching {parent} entities are missing")
        filters.append({"terms": {UID_FIELD[parent]: sorted(parent_uids[parent])}})
    for condition in query.conditions:
        if condition.level is level:
            _add(condition, filters, must_not)
        elif condition.level.depth > level.depth:
            raise ValueError(f"a {condition.level}-level condition in a {level} search")
    return _bool(filters, must_not)


def sort(level: Level) -> list[JsonDict]:
    """The stable order of a level: by its UID (unique within a site)."""
    return [{UID_FIELD[level]: "asc"}]


def search_body(
    site: str, query: Query, parent_uids: Mapping[Level, Sequence[str]] | None = None
) -> JsonDict:
    """The search request of one page of ``query`` and of the number of all its matches.

    ``from`` + ``size`` must stay within ``index.max_result_window`` (10,000 by default);
    beyond it the adapter pages with ``search_after`` on the :func:`sort` values.
    """
    return {
        "query": level_query(site, query, parent_uids),
        "sort": sort(query.level),
        "from": query.offset,
        "size": query.limit,
        "track_total_hits": True,
    }
