"""The tables of an export: studies, series and instances, their columns and record batches.

Each table has its level's UIDs (and those of the levels above) first, then one column per
attribute (``pacsflow.export.columns``), then the partition columns ``year``, ``month`` and
``day`` of the study's StudyDate, down to the chosen granularity; a study without a valid
StudyDate is in partition 0 (a null partition value is not readable by every reader). The
instances table adds what the archive stored: ``TransferSyntaxUID``, ``size_bytes`` and
``sha256`` of the object as received.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import date
from typing import Any, Final, Literal

import pyarrow as pa

from pacsflow.export.columns import Column, column_for
from pacsflow.ports.index import IndexedEntity
from pacsflow.query.attributes import attribute_level
from pacsflow.query.model import Level

__all__ = [
    "PARTITIONS",
    "TABLE_NAMES",
    "Granularity",
    "TableSpec",
    "attribute_columns",
    "partition_of",
]

Granularity = Literal["year", "month", "day"]
PARTITIONS: Final[dict[str, tuple[str, ...]]] = {
    "year": ("year",),
    "month": ("year", "month"),
    "day": ("year", "month", "day"),
}
TABLE_NAMES: Final = {Level.STUDY: "studies", Level.SERIES: "series", Level.INSTANCE: "instances"}
_UIDS: Final = {
    Level.STUDY: ("StudyInstanceUID",),
    Level.SERIES: ("SeriesInstanceUID", "StudyInstanceUID"),
    Level.INSTANCE: ("SOPInstanceUID", "SeriesInstanceUID", "StudyInstanceUID", "SOPClassUID"),
}
_FIXED_TAGS: Final = frozenset({"0020000D", "0020000E", "00080018", "00080016"})
_STORED: Final = (
    ("TransferSyntaxUID", pa.string()),
    ("size_bytes", pa.int64()),
    ("sha256", pa.string()),
)
# Left out of "all" (they may still be chosen): per-frame functional groups can hold
# thousands of items per instance.
_NOT_IN_ALL: Final = frozenset({"52009229", "52009230"})


def partition_of(day: date | None, granularity: Granularity) -> tuple[int, ...]:
    """The partition values of a study of StudyDate ``day`` (0 for a study without one)."""
    parts = {"year": 0, "month": 0, "day": 0}
    if day is not None:
        parts = {"year": day.year, "month": day.month, "day": day.day}
    return tuple(parts[name] for name in PARTITIONS[granularity])


def attribute_columns(tags: Iterable[str], level: Level, *, chosen: bool) -> tuple[Column, ...]:
    """The columns of ``tags`` that belong in the table of ``level``, in tag order."""
    columns = []
    for tag in sorted(set(tags) - _FIXED_TAGS):
        if not chosen and tag in _NOT_IN_ALL:
            continue
        if level is Level.INSTANCE and attribute_level(tag) is not Level.INSTANCE:
            continue  # an instance carries its study's and series' attributes too
        if chosen and attribute_level(tag) is not level:
            continue
        if (column := column_for(tag)) is not None:
            columns.append(column)
    return tuple(columns)


@dataclass(frozen=True, slots=True)
class TableSpec:
    """The table of one level: its attribute columns and partition granularity."""

    level: Level
    columns: tuple[Column, ...]
    granularity: Granularity

    @property
    def name(self) -> str:
        """``studies``, ``series`` or ``instances``."""
        return TABLE_NAMES[self.level]

    @property
    def partition_schema(self) -> pa.Schema:
        """The partition columns."""
        return pa.schema([(name, pa.int32()) for name in PARTITIONS[self.granularity]])

    @property
    def schema(self) -> pa.Schema:
        """Every column of the table, partition columns last."""
        fields = [pa.field(name, pa.string(), nullable=False) for name in _UIDS[self.level]]
        if self.level is Level.INSTANCE:
            fields += [pa.field(name, kind) for name, kind in _STORED]
        fields += [pa.field(c.name, c.type) for c in self.columns]
        return pa.schema(fields + list(self.partition_schema))

    def batch(
        self, entities: Sequence[IndexedEntity], study_dates: Mapping[str, date | None]
    ) -> pa.RecordBatch:
        """The rows of ``entities``; ``study_dates`` gives each study's StudyDate."""
        data: list[list[Any]] = [[e.uid for e in entities]]
        if self.level is not Level.STUDY:
            if self.level is Level.INSTANCE:
                data.append([e.series_uid for e in entities])
            data.append([e.study_uid for e in entities])
        if self.level is Level.INSTANCE:
            documents = [e.document for e in entities]
            if any(d is None for d in documents):
                raise ValueError("an instance entity without its index document")
            data.append([d.sop_class_uid if d else "" for d in documents])
            data.append([d.transfer_syntax if d else None for d in documents])
            data.append([d.size if d else None for d in documents])
            data.append([d.sha256 if d else None for d in documents])
        data += [[c.value(e.attributes) for e in entities] for c in self.columns]
        keys = [partition_of(study_dates.get(e.study_uid), self.granularity) for e in entities]
        data += [[key[i] for key in keys] for i in range(len(PARTITIONS[self.granularity]))]
        schema = self.schema
        arrays = [pa.array(column, f.type) for column, f in zip(data, schema, strict=True)]
        return pa.RecordBatch.from_arrays(arrays, schema=schema)
