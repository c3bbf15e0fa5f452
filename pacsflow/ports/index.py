"""The index port: what the archive holds, searchable at study, series and instance level.

Adapters: SQLite (``pacsflow.adapters.sqlite_index``) and, in pipeline mode, Elasticsearch.
The contract (``tests/contract/test_index.py``) holds for both:

* ``upsert_instances`` is idempotent and keyed by (site, SOP Instance UID): indexing the same
  document twice leaves one entry; a document with a known SOP Instance UID replaces the entry,
  even when it moves to another study or series.
* ``search`` answers a QIDO-RS query (``pacsflow.query.model.Query``): study and series
  records carry the derived attributes of PS3.18 10.6.3 (NumberOfStudyRelatedSeries/Instances,
  NumberOfSeriesRelatedInstances, ModalitiesInStudy, SOPClassesInStudy) of the instances
  indexed, and every matching rule gives the same result on every adapter
  (``tests/contract/test_query.py``).
* Sites never see each other's entries.
* ``check`` returns within a few seconds: quietly while the index answers, with
  ``IndexUnavailable`` otherwise.
* ``scan`` walks every study, series or instance of a site by UID (a keyset scan for exports):
  pages neither overlap nor skip an entity that stays in the index while it runs.
* The change feed (``pacsflow.changefeed``): ``upsert_instances`` appends its ``changes``, and
  ``delete_instances`` a ``delete`` change per entry it removes, with the same write as the
  entries; each site's feed numbers its entries 1, 2, 3... in the order they were appended,
  keeps one entry per origin (a change appended again is ignored), and ``read_changes`` never
  returns an entry before one it has not returned yet: a reader that resumes after the last
  sequence it read misses nothing. Sequence numbers survive restarts.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Final, Protocol

from pacsflow.changefeed.entries import Change, DeletionCause, FeedEntry
from pacsflow.query.model import Level, Query, SearchPage

__all__ = [
    "SCAN_STUDIES",
    "Index",
    "IndexTotals",
    "IndexedEntity",
    "InstanceDocument",
    "InstanceRef",
    "check_scan_studies",
]

SCAN_STUDIES: Final = 500  # the most study UIDs one ``Index.scan`` may be restricted to


def check_scan_studies(studies: Sequence[str]) -> None:
    """``ValueError`` for a scan restricted to more than ``SCAN_STUDIES`` studies."""
    if len(studies) > SCAN_STUDIES:
        raise ValueError(f"a scan restricted to more than {SCAN_STUDIES} studies")


JsonDict = dict[str, Any]


@dataclass(frozen=True, slots=True)
class InstanceDocument:
    """One indexed instance: where it is stored and its attributes as DICOM JSON."""

    site: str
    study_uid: str
    series_uid: str
    sop_uid: str
    sop_class_uid: str
    transfer_syntax: str
    object_key: str
    size: int
    sha256: str
    attributes: JsonDict = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class InstanceRef:
    """Where one instance of a study or series is: enough to read its stored objects."""

    study_uid: str
    series_uid: str
    sop_uid: str
    transfer_syntax: str
    size: int
    sha256: str


@dataclass(frozen=True, slots=True)
class IndexTotals:
    """How much an index holds, over all sites (the ``/metrics`` of docs/operations.md)."""

    studies: int
    series: int
    instances: int
    bytes: int  # the sum of the instances' Part 10 sizes: the bulk of the object store


@dataclass(frozen=True, slots=True)
class IndexedEntity:
    """A study, series or instance as the index keeps it: one item of ``Index.scan``.

    ``attributes`` are those a search returns for the entity itself: the level attributes and
    the derived ones (PS3.18 10.6.3) for a study or series, every attribute for an instance.
    """

    uid: str  # the entity's own UID: the order and the cursor of a scan
    study_uid: str
    series_uid: str  # "" for a study
    attributes: JsonDict
    document: InstanceDocument | None = None  # instances: the whole entry


class Index(Protocol):
    """Searchable catalogue of stored instances; see the module docstring for the contract."""

    async def start(self) -> None:
        """Connect and create schemas or templates (idempotent)."""
        ...

    async def close(self) -> None:
        """Release resources."""
        ...

    async def totals(self) -> IndexTotals:
        """The studies, series and instances indexed over all sites, and the bytes of the
        instances' Part 10 objects."""
        ...

    async def check(self) -> None:
        """Ask the index whether it answers (a cheap call, bounded in time); readiness probes.

        Raises ``IndexUnavailable`` when it does not, or when the index is not started.
        """
        ...

    async def upsert_instances(
        self, documents: Sequence[InstanceDocument], changes: Sequence[Change] = ()
    ) -> None:
        """Index or replace instances (a batch) and append ``changes`` to the feed, in one
        write; both visible to searches and feed readers once this returns."""
        ...

    async def get_instance(self, site: str, sop_uid: str) -> InstanceDocument | None:
        """The entry of one SOP Instance UID, or ``None``."""
        ...

    async def get_instance_ref(self, site: str, sop_uid: str) -> InstanceRef | None:
        """Where one SOP Instance UID is stored, without reading its attributes, or ``None``."""
        ...

    async def get_instances(
        self, site: str, sop_uids: Sequence[str]
    ) -> dict[str, InstanceDocument]:
        """The entries of several SOP Instance UIDs at once, by UID (unknown ones left out)."""
        ...

    async def delete_instances(
        self, site: str, sop_uids: Sequence[str], cause: DeletionCause | None = None
    ) -> None:
        """Remove entries and append a ``delete`` change for each one removed, with ``cause``'s
        origin and reason (idempotent: unknown UIDs are left out and nothing is appended for
        them); visible once this returns."""
        ...

    async def read_changes(self, site: str, after: int = 0, limit: int = 100) -> list[FeedEntry]:
        """Up to ``limit`` entries of the site's feed with a sequence above ``after``, in order."""
        ...

    async def latest_change(self, site: str) -> FeedEntry | None:
        """The entry with the highest sequence of the site's feed, or ``None`` while empty."""
        ...

    async def list_instances(
        self, site: str, study_uid: str, series_uid: str | None = None
    ) -> list[InstanceRef]:
        """Every instance of a study (or of one of its series), by Series then SOP Instance UID."""
        ...

    async def list_middle_instances(
        self, site: str, study_uid: str, series_uid: str | None = None
    ) -> list[InstanceRef]:
        """The middle instance of each series of a study (or of one series), by Series UID:
        of ``n`` instances in SOP Instance UID order, the one at ``n // 2`` (counted from 0)."""
        ...

    async def search(self, site: str, query: Query) -> SearchPage:
        """One page of the entities of a site matching ``query`` and how many match in all.

        Matching evaluates each condition on the match terms of ``pacsflow.query.terms``;
        records come in the stable order of the level (by UID) so pages never overlap.
        """
        ...

    async def scan(
        self,
        site: str,
        level: Level,
        after: str = "",
        limit: int = 1000,
        studies: Sequence[str] = (),
    ) -> list[IndexedEntity]:
        """Up to ``limit`` entities of ``level`` whose UID sorts after ``after``, by UID; of
        the studies ``studies`` only when given (at most ``SCAN_STUDIES`` of them).

        UIDs compare bytewise; the last UID of a page is the ``after`` of the next one.
        """
        ...
