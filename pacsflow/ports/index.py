"""The index port: what the archive holds, searchable at study, series and instance level.

Adapters: SQLite (``pacsflow.adapters.sqlite_index``) and, in pipeline mode, Elasticsearch.
The contract (``tests/contract/test_index.py``) holds for both:

* ``upsert_instances`` is idempotent and keyed by (site, SOP Instance UID): indexing the same
  document twice leaves one entry; a document with a known SOP Instance UID replaces the entry,
  even when it moves to another study or series.
* Study and series records carry the derived attributes of PS3.18 10.6.3
  (NumberOfStudyRelatedSeries/Instances, NumberOfSeriesRelatedInstances, ModalitiesInStudy,
  SOPClassesInStudy), computed from the instances indexed at the time of the search.
* Sites never see each other's entries.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

__all__ = ["Index", "InstanceDocument", "SeriesRecord", "StudyRecord"]

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
class StudyRecord:
    """A study: its study-level attributes (DICOM JSON) including the derived ones."""

    site: str
    study_uid: str
    attributes: JsonDict


@dataclass(frozen=True, slots=True)
class SeriesRecord:
    """A series: its series-level attributes (DICOM JSON) including the derived ones."""

    site: str
    study_uid: str
    series_uid: str
    attributes: JsonDict


class Index(Protocol):
    """Searchable catalogue of stored instances; see the module docstring for the contract."""

    async def start(self) -> None:
        """Connect and create schemas or templates (idempotent)."""
        ...

    async def close(self) -> None:
        """Release resources."""
        ...

    async def upsert_instances(self, documents: Sequence[InstanceDocument]) -> None:
        """Index or replace instances (a batch); visible to searches once this returns."""
        ...

    async def get_instance(self, site: str, sop_uid: str) -> InstanceDocument | None:
        """The entry of one SOP Instance UID, or ``None``."""
        ...

    async def delete_instance(self, site: str, sop_uid: str) -> None:
        """Remove an entry (idempotent)."""
        ...

    async def search_studies(self, site: str, limit: int, offset: int) -> list[StudyRecord]:
        """Studies of a site in a stable order (Study Instance UID), paged."""
        ...

    async def search_series(self, site: str, study_uid: str) -> list[SeriesRecord]:
        """Series of one study in a stable order (Series Instance UID)."""
        ...
