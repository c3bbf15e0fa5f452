"""The QIDO-RS query as a domain model (PS3.18 10.6.1, PS3.4 C.2.2.2).

A request is parsed once (``pacsflow.query.parse``) into a :class:`Query`: the level searched,
the scope given by the path, the matching conditions, the return keys and the paging. Each
condition is a predicate over the *match terms* of one entity (``pacsflow.query.terms``), so
that every index adapter evaluates exactly the same rule: the SQLite adapter through
``pacsflow.query.sql`` and the Elasticsearch adapter through ``pacsflow.query.es``, both pure
translators with golden tests.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from typing import Any

__all__ = [
    "STUDY_ROOT_LEVELS",
    "All",
    "Any_",
    "Condition",
    "Glob",
    "Level",
    "Not",
    "Predicate",
    "Query",
    "Range",
    "SearchPage",
    "Term",
    "Terms",
]

JsonDict = dict[str, Any]


class Level(StrEnum):
    """The query/retrieve levels of the Study Root information model (PS3.4 C.6.2).

    ``WORKITEM`` is the one level of the Unified Procedure Step information model (PS3.4
    CC.2.8, searched by PS3.18 11.9): every attribute of a workitem is at that level.
    """

    STUDY = "study"
    SERIES = "series"
    INSTANCE = "instance"
    WORKITEM = "workitem"

    @property
    def depth(self) -> int:
        """0 for study (and workitem, a model of one level), 1 for series, 2 for instance."""
        return _DEPTH[self]


_DEPTH = {Level.STUDY: 0, Level.SERIES: 1, Level.INSTANCE: 2, Level.WORKITEM: 0}
STUDY_ROOT_LEVELS = (Level.STUDY, Level.SERIES, Level.INSTANCE)


@dataclass(frozen=True, slots=True)
class Term:
    """The entity has this match term."""

    value: str


@dataclass(frozen=True, slots=True)
class Terms:
    """The entity has one of these match terms (List of UID Matching, several values)."""

    values: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class Glob:
    """The entity has a match term matching ``pattern``: ``*`` any run, ``?`` one character."""

    pattern: str


@dataclass(frozen=True, slots=True)
class Range:
    """The entity has a match term ``t`` with ``low <= t <= high`` (bytewise, UTF-8)."""

    low: str
    high: str


@dataclass(frozen=True, slots=True)
class Not:
    """The predicate does not hold (Empty Value Matching: no non-empty value)."""

    predicate: Predicate


@dataclass(frozen=True, slots=True)
class All:
    """Every predicate holds."""

    predicates: tuple[Predicate, ...]


@dataclass(frozen=True, slots=True)
class Any_:
    """At least one predicate holds."""

    predicates: tuple[Predicate, ...]


Predicate = Term | Terms | Glob | Range | Not | All | Any_


@dataclass(frozen=True, slots=True)
class Condition:
    """One matching key of the request: a predicate over the terms of an entity at ``level``.

    ``level`` may be above the level searched (relational queries: ``/series?PatientID=…``).
    ``parameter`` is the query parameter as the client wrote it, for messages.
    """

    level: Level
    parameter: str
    predicate: Predicate


@dataclass(frozen=True, slots=True)
class Query:
    """A Search Transaction request (PS3.18 10.6.1) after parsing and validation."""

    level: Level
    study_uid: str | None = None
    series_uid: str | None = None
    conditions: tuple[Condition, ...] = ()
    return_tags: frozenset[str] = frozenset()
    include_all: bool = False
    fuzzy: bool = False
    limit: int = 100
    offset: int = 0


@dataclass(frozen=True, slots=True)
class SearchPage:
    """One page of matches, in the stable order of the level, and the number of all matches.

    Each record is the DICOM JSON of the entity: its own level attributes, those of the levels
    above it, and the derived attributes of PS3.18 Table 10.6.3-3/-4.
    """

    records: list[JsonDict]
    total: int
