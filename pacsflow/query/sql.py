"""Translate a :class:`~pacsflow.query.model.Query` to SQLite SQL, a pure function (golden-tested).

The schema is the SQLite index adapter's: entity tables ``studies``, ``series`` and
``instances`` (``id``, ``site``, UIDs, ``attributes``) and one term table per level
(``study_terms``, ``series_terms``, ``instance_terms``: ``term``, ``id``); the SQLite workitem
store keeps workitems the same way (``workitems`` keyed ``workitem_uid``, ``workitem_terms``).
A predicate becomes the set of entity ids whose terms satisfy it; conditions on a level above
the one searched (relational queries, PS3.18 10.6.1) select the UIDs of the matching parents.

A page is chosen before any attributes are read (a deferred join): ``page`` selects the ids and
UIDs of one page from the UID indexes, sorted, then the entity rows of only those ids are read
with their parents. Sorting every match of an unselective search (``/instances?Modality=CT``)
then sorts index entries, not rows with their attribute blobs. Plans depend on the statistics
the adapter keeps with ``ANALYZE`` (``pacsflow.adapters.sqlite_index``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

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

__all__ = ["SqlQuery", "glob_prefix", "to_sql"]

TABLES: Final = {
    Level.STUDY: "studies",
    Level.SERIES: "series",
    Level.INSTANCE: "instances",
    Level.WORKITEM: "workitems",
}
TERMS: Final = {
    Level.STUDY: "study_terms",
    Level.SERIES: "series_terms",
    Level.INSTANCE: "instance_terms",
    Level.WORKITEM: "workitem_terms",
}
UID_COLUMN: Final = {
    Level.STUDY: "study_uid",
    Level.SERIES: "series_uid",
    Level.INSTANCE: "sop_uid",
    Level.WORKITEM: "workitem_uid",
}
_ROWS: Final = {
    Level.STUDY: "SELECT e.attributes FROM page JOIN studies e ON e.id = page.id",
    Level.WORKITEM: "SELECT e.attributes FROM page JOIN workitems e ON e.id = page.id",
    Level.SERIES: (
        "SELECT e.attributes, p.attributes FROM page JOIN series e ON e.id = page.id"
        " JOIN studies p ON p.site = e.site AND p.study_uid = e.study_uid"
    ),
    Level.INSTANCE: (
        "SELECT e.attributes, r.attributes, p.attributes"
        " FROM page JOIN instances e ON e.id = page.id"
        " JOIN series r ON r.site = e.site AND r.series_uid = e.series_uid"
        " JOIN studies p ON p.site = e.site AND p.study_uid = e.study_uid"
    ),
}


@dataclass(frozen=True, slots=True)
class SqlQuery:
    """The page query and the count query, with their parameters."""

    select: str
    select_params: tuple[str | int, ...]
    count: str
    count_params: tuple[str | int, ...]


def glob_prefix(pattern: str) -> str:
    """The literal text before the first wildcard of a glob pattern."""
    ends = [i for i in (pattern.find("*"), pattern.find("?")) if i >= 0]
    return pattern[: min(ends)] if ends else pattern


def _escape_glob(pattern: str) -> str:
    """SQLite GLOB pattern: ``*`` and ``?`` stay wildcards, ``[`` is made literal."""
    return pattern.replace("[", "[[]")


def _flat_terms(predicate: Any_) -> tuple[str, ...] | None:
    """The terms of an ``Any_`` of only ``Term``/``Terms`` (one IN list), else ``None``."""
    values: list[str] = []
    for part in predicate.predicates:
        if isinstance(part, Term):
            values.append(part.value)
        elif isinstance(part, Terms):
            values.extend(part.values)
        else:
            return None
    return tuple(values)


def _ids(predicate: Predicate, level: Level, params: list[str | int]) -> str:
    """A SELECT of the ids of the entities at ``level`` whose terms satisfy ``predicate``."""
    table = TERMS[level]
    if isinstance(predicate, Any_):
        flat = _flat_terms(predicate)
        if flat is not None:
            predicate = Terms(flat)
    if isinstance(predicate, Term):
        params.append(predicate.value)
        return f"SELECT id FROM {table} WHERE term = ?"
    if isinstance(predicate, Terms):
        params.extend(predicate.values)
        return f"SELECT id FROM {table} WHERE term IN ({','.join('?' * len(predicate.values))})"
    if isinstance(predicate, Glob):
        prefix = glob_prefix(predicate.pattern)
        params.extend((prefix, prefix + "\U0010ffff", _escape_glob(predicate.pattern)))
        return f"SELECT id FROM {table} WHERE term >= ? AND term < ? AND term GLOB ?"
    if isinstance(predicate, Range):
        params.extend((predicate.low, predicate.high))
        return f"SELECT id FROM {table} WHERE term BETWEEN ? AND ?"
    if isinstance(predicate, Not):
        inner = _ids(predicate.predicate, level, params)
        return f"SELECT id FROM {TABLES[level]} EXCEPT SELECT id FROM ({inner})"
    operator = " INTERSECT " if isinstance(predicate, All) else " UNION "
    parts = [f"SELECT id FROM ({_ids(p, level, params)})" for p in predicate.predicates]
    return operator.join(parts)


def _condition(condition: Condition, level: Level, site: str, params: list[str | int]) -> str:
    predicate, negate = condition.predicate, False
    if isinstance(predicate, Not):
        predicate, negate = predicate.predicate, True
    if condition.level is level:
        ids = _ids(predicate, level, params)
        return f"e.id {'NOT IN' if negate else 'IN'} ({ids})"
    column = UID_COLUMN[condition.level]
    params.append(site)
    ids = _ids(predicate, condition.level, params)
    return (
        f"e.{column} {'NOT IN' if negate else 'IN'} (SELECT p.{column} FROM"
        f" {TABLES[condition.level]} p WHERE p.site = ? AND p.id IN ({ids}))"
    )


def to_sql(site: str, query: Query) -> SqlQuery:
    """The SQL of one page of ``query`` in the stable order of its level, and of its count."""
    level = query.level
    params: list[str | int] = [site]
    where = ["e.site = ?"]
    if query.study_uid is not None:
        where.append("e.study_uid = ?")
        params.append(query.study_uid)
    if query.series_uid is not None:
        where.append("e.series_uid = ?")
        params.append(query.series_uid)
    for condition in query.conditions:
        where.append(_condition(condition, level, site, params))
    clause = " AND ".join(where)
    uid = UID_COLUMN[level]
    select = (
        f"WITH page AS (SELECT e.id, e.{uid} AS uid FROM {TABLES[level]} e WHERE {clause}"
        f" ORDER BY e.{uid} LIMIT ? OFFSET ?) {_ROWS[level]} ORDER BY page.uid"
    )
    count = f"SELECT COUNT(*) FROM {TABLES[level]} e WHERE {clause}"
    return SqlQuery(select, (*params, query.limit, query.offset), count, tuple(params))
