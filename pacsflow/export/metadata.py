"""Export the metadata the index holds as Parquet: one table per level, partitioned by date.

Every study, series and instance of a site is read through the index port's keyset scan
(``Index.scan``), the same on SQLite and Elasticsearch, and written to
``OUT/{studies,series,instances}/year=…/month=…/part-N.parquet`` (Hive layout, which DuckDB,
pandas, Spark and Polars read), with ``OUT/_export.json`` describing the run. A new export
of a table replaces the previous one whole, once it is complete.

The manifest records the change feed's latest sequence when the export started: an
incremental export (``pacsflow.export.incremental``, ``--since last``) applies the changes
fed after it.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import time
from collections.abc import AsyncIterator, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import orjson
import pyarrow.parquet as pq

from pacsflow.export.columns import column_for
from pacsflow.export.tables import Granularity, TableSpec, attribute_columns
from pacsflow.export.writer import DatasetWriter
from pacsflow.ports.index import Index, IndexedEntity
from pacsflow.query.model import Level

__all__ = [
    "FORMAT_VERSION",
    "MANIFEST",
    "ExportOptions",
    "ExportResult",
    "export_metadata",
    "full_scan",
    "study_date",
    "write_manifest",
]

MANIFEST = "_export.json"
FORMAT_VERSION = 1


@dataclass(frozen=True, slots=True)
class ExportOptions:
    """What to export: levels, attributes (``None``: all) and the partition granularity."""

    levels: tuple[Level, ...] = (Level.STUDY, Level.SERIES, Level.INSTANCE)
    tags: frozenset[str] | None = None
    granularity: Granularity = "month"
    page: int = 1000


@dataclass(slots=True)
class ExportResult:
    """Rows and columns written per table, and how long it took."""

    rows: dict[str, int] = field(default_factory=dict)
    columns: dict[str, list[str]] = field(default_factory=dict)
    tags: dict[str, list[str]] = field(default_factory=dict)  # of the attribute columns
    seconds: float = 0.0

    def add(self, spec: TableSpec, rows: int) -> None:
        """Record the table ``spec`` describes, of ``rows`` rows."""
        self.rows[spec.name] = rows
        self.columns[spec.name] = spec.schema.names
        self.tags[spec.name] = [column.tag for column in spec.columns]

    def tables(self) -> dict[str, dict[str, Any]]:
        """The manifest's ``tables``: rows, columns and attribute tags of each."""
        return {
            name: {"rows": rows, "columns": self.columns[name], "tags": self.tags[name]}
            for name, rows in self.rows.items()
        }


async def full_scan(
    index: Index, site: str, level: Level, page: int, studies: Sequence[str] = ()
) -> AsyncIterator[list[IndexedEntity]]:
    """Every entity of ``level`` (of ``studies`` only, when given), one page at a time, by UID."""
    after = ""
    while True:
        entities = await index.scan(site, level, after, page, studies=studies)
        if entities:
            yield entities
            after = entities[-1].uid
        if len(entities) < page:
            return


def study_date(attributes: dict[str, Any]) -> date | None:
    column = column_for("00080020")
    assert column is not None
    value = column.value(attributes)
    return value if isinstance(value, date) else None


async def _study_dates(index: Index, site: str, page: int) -> dict[str, date | None]:
    dates: dict[str, date | None] = {}
    async for entities in full_scan(index, site, Level.STUDY, page):
        dates.update((e.uid, study_date(e.attributes)) for e in entities)
    return dates


async def _tags_present(index: Index, site: str, level: Level, page: int) -> set[str]:
    tags: set[str] = set()
    async for entities in full_scan(index, site, level, page):
        for entity in entities:
            tags.update(entity.attributes)
    return tags


async def _write_table(
    index: Index,
    site: str,
    spec: TableSpec,
    directory: Path,
    study_dates: dict[str, date | None],
    page: int,
) -> int:
    rows = 0
    async with DatasetWriter(directory, spec.schema, spec.partition_schema) as writer:
        async for entities in full_scan(index, site, spec.level, page):
            await writer.write(spec.batch(entities, study_dates))
            rows += len(entities)
    if rows == 0:  # readers need a file to know the columns
        await asyncio.to_thread(_empty_table, directory, spec)
    return rows


def _empty_table(directory: Path, spec: TableSpec) -> None:
    directory.mkdir(parents=True, exist_ok=True)
    pq.write_table(spec.schema.empty_table(), directory / "part-0.parquet")


async def export_metadata(
    index: Index, site: str, out: Path, options: ExportOptions
) -> ExportResult:
    """Write the tables of ``options.levels`` under ``out`` and the manifest."""
    started = time.monotonic()
    staging = out / f".export-{os.getpid()}-{int(time.time())}"
    result = ExportResult()
    latest = await index.latest_change(site)  # before the scan: no change is missed
    try:
        study_dates = await _study_dates(index, site, options.page)
        for level in options.levels:
            tags: Iterable[str] = (
                options.tags
                if options.tags is not None
                else await _tags_present(index, site, level, options.page)
            )
            columns = attribute_columns(tags, level, chosen=options.tags is not None)
            spec = TableSpec(level, columns, options.granularity)
            rows = await _write_table(
                index, site, spec, staging / spec.name, study_dates, options.page
            )
            result.add(spec, rows)
        result.seconds = time.monotonic() - started
        manifest = {
            "format": FORMAT_VERSION,
            "exported_at": datetime.now(UTC).isoformat(timespec="seconds"),
            "site": site,
            "sequence": latest.sequence if latest is not None else 0,
            "partitioned_by": f"StudyDate ({options.granularity})",
            "tables": result.tables(),
        }
        await asyncio.to_thread(_publish, staging, out, manifest)
    finally:
        await asyncio.to_thread(shutil.rmtree, staging, True)
    return result


def _publish(staging: Path, out: Path, manifest: dict[str, Any]) -> None:
    """Put each complete table of ``staging`` in place of the one in ``out``; the manifest."""
    for name in manifest["tables"]:
        target = out / name
        if target.exists():
            old = target.with_name(f".{name}.old-{os.getpid()}")
            target.rename(old)
            (staging / name).rename(target)
            shutil.rmtree(old)
        else:
            (staging / name).rename(target)
    write_manifest(out, manifest)


def write_manifest(out: Path, manifest: dict[str, Any]) -> None:
    """``out/_export.json``, written aside and renamed into place."""
    aside = out / f".{MANIFEST}.{os.getpid()}"
    aside.write_bytes(orjson.dumps(manifest, option=orjson.OPT_INDENT_2))
    os.replace(aside, out / MANIFEST)
