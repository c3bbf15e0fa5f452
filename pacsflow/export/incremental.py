"""An incremental export: apply what the change feed lists after a sequence to an export.

``pacsflow export OUT --since N`` (or ``--since last``: the sequence ``OUT/_export.json``
recorded) reads the site's change feed after ``N`` (``Index.read_changes``), takes the
studies it names, and rewrites only the partitions of each table those studies were in
before (the rows of the export on disk) or are in now (their StudyDate in the index): the
rows of the other studies of such a partition are kept, those of the changed studies are
replaced by what the index holds of them now, and a deleted study's rows are dropped. The
tables keep the columns of the export they update (a new attribute needs a full export).

Each partition is written aside and renamed into place; the manifest, with the new sequence,
is written last, so an export cut short is completed by the same command run again (a
rewrite is idempotent). Changes fed while it runs are applied now or by the next run.
"""

from __future__ import annotations

import asyncio
import os
import time
from collections.abc import AsyncIterator, Iterable
from dataclasses import dataclass
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any, Final

import orjson
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from pacsflow.export.columns import column_for
from pacsflow.export.metadata import (
    FORMAT_VERSION,
    MANIFEST,
    ExportResult,
    full_scan,
    study_date,
    write_manifest,
)
from pacsflow.export.tables import PARTITIONS, TABLE_NAMES, Granularity, TableSpec, partition_of
from pacsflow.ports.index import SCAN_STUDIES, Index, IndexedEntity
from pacsflow.query.attributes import resolve
from pacsflow.query.model import Level

__all__ = ["IncrementalResult", "NotIncremental", "export_changes", "read_manifest"]

_LEVELS: Final = {name: level for level, name in TABLE_NAMES.items()}
_FEED_PAGE: Final = 1000
_PAGE: Final = 1000  # entities a scan reads at once
_FIXED: Final = frozenset(
    {
        "StudyInstanceUID",
        "SeriesInstanceUID",
        "SOPInstanceUID",
        "SOPClassUID",
        "TransferSyntaxUID",
        "size_bytes",
        "sha256",
        "year",
        "month",
        "day",
    }
)

Partition = tuple[int, ...]


class NotIncremental(Exception):
    """``OUT`` holds no export this one can update; the message says why."""


@dataclass(slots=True)
class IncrementalResult(ExportResult):
    """What an incremental export did: the feed read and the partitions rewritten."""

    since: int = 0
    sequence: int = 0
    changes: int = 0
    studies: int = 0
    partitions: int = 0


def read_manifest(out: Path, site: str) -> dict[str, Any]:
    """The manifest of the export in ``out``, checked against ``site``; ``NotIncremental``."""
    try:
        manifest = orjson.loads((out / MANIFEST).read_bytes())
    except (OSError, orjson.JSONDecodeError) as exc:
        raise NotIncremental(f"no export to update in {out} ({MANIFEST}: {exc})") from exc
    if not isinstance(manifest, dict) or manifest.get("format") != FORMAT_VERSION:
        raise NotIncremental(f"{out / MANIFEST} is not an export manifest of this version")
    if manifest.get("site") != site:
        raise NotIncremental(f"the export in {out} is of site {manifest.get('site')!r}")
    return manifest


def _granularity(manifest: dict[str, Any]) -> Granularity:
    text = str(manifest.get("partitioned_by", ""))
    for granularity in ("year", "month", "day"):
        if text == f"StudyDate ({granularity})":
            return granularity
    raise NotIncremental(f"unknown partitioning {text!r} in the manifest")


def _spec(name: str, entry: dict[str, Any], granularity: Granularity) -> TableSpec:
    """The table ``name`` with the attribute columns its manifest ``entry`` lists (by tag;
    by keyword in a manifest without tags)."""
    tags = entry.get("tags")
    if tags is None:
        attributes = [resolve(k) for k in entry["columns"] if k not in _FIXED]
        tags = [a.tag if a is not None else "" for a in attributes]
    columns = [column_for(str(tag)) for tag in tags]
    if name not in _LEVELS or any(column is None for column in columns):
        raise NotIncremental(f"the columns of table {name} are not those of an export")
    spec = TableSpec(_LEVELS[name], tuple(c for c in columns if c is not None), granularity)
    if spec.schema.names != entry["columns"]:
        raise NotIncremental(f"the columns of table {name} are not those of an export")
    return spec


async def _changed_studies(index: Index, site: str, since: int) -> tuple[set[str], int, int]:
    """The studies the feed names after ``since``, the last sequence read, the entries read."""
    studies: set[str] = set()
    after, read = since, 0
    while entries := await index.read_changes(site, after, _FEED_PAGE):
        studies.update(e.change.study_uid for e in entries if e.change.study_uid)  # not NPI
        after = entries[-1].sequence
        read += len(entries)
    return studies, after, read


async def _entities(
    index: Index, site: str, level: Level, studies: Iterable[str]
) -> AsyncIterator[list[IndexedEntity]]:
    """The entities of ``level`` of ``studies``, a page at a time."""
    chosen = sorted(studies)
    for first in range(0, len(chosen), SCAN_STUDIES):
        group = chosen[first : first + SCAN_STUDIES]
        async for page in full_scan(index, site, level, _PAGE, studies=group):
            yield page


def _directory(table: Path, partition: Partition, granularity: Granularity) -> Path:
    names = PARTITIONS[granularity]
    return table.joinpath(*(f"{n}={v}" for n, v in zip(names, partition, strict=True)))


def _partitions_holding(table: Path, studies: set[str], granularity: Granularity) -> set[Partition]:
    """The partitions of the table on disk with rows of ``studies`` (read by one column)."""
    wanted = pa.array(sorted(studies), pa.string())
    found: set[Partition] = set()
    depth = len(PARTITIONS[granularity])
    for path in table.rglob("*.parquet"):
        relative = path.relative_to(table).parts[:-1]
        if len(relative) != depth:
            continue  # the root file of an empty table
        uids = pq.ParquetFile(path).read(columns=["StudyInstanceUID"]).column(0)
        if pc.any(pc.is_in(uids, value_set=wanted)).as_py():
            found.add(tuple(int(part.split("=", 1)[1]) for part in relative))
    return found


def _rewrite(directory: Path, studies: set[str], rows: pa.Table | None, schema: pa.Schema) -> None:
    """Replace the partition in ``directory``: its rows of other studies, then ``rows``."""
    kept: list[pa.Table] = []
    old = sorted(directory.glob("*.parquet")) if directory.is_dir() else []
    wanted = pa.array(sorted(studies), pa.string())
    for path in old:
        table = pq.ParquetFile(path).read().select(schema.names)
        kept.append(table.filter(pc.invert(pc.is_in(table["StudyInstanceUID"], value_set=wanted))))
    if rows is not None:
        kept.append(rows.select(schema.names))
    merged = pa.concat_tables(kept) if kept else schema.empty_table()
    if merged.num_rows == 0:
        for path in old:
            path.unlink()
        if directory.is_dir():
            directory.rmdir()
        return
    directory.mkdir(parents=True, exist_ok=True)
    aside = directory / f".part-{os.getpid()}.parquet"
    pq.write_table(merged, aside, row_group_size=65_536)
    os.replace(aside, directory / "part-0.parquet")
    for path in old:
        if path.name != "part-0.parquet":
            path.unlink()


def _file_schema(spec: TableSpec) -> pa.Schema:
    partitions = set(PARTITIONS[spec.granularity])
    return pa.schema([f for f in spec.schema if f.name not in partitions])


def _rows(table: Path) -> int:
    return sum(pq.read_metadata(p).num_rows for p in table.rglob("*.parquet"))


async def _update_table(
    index: Index,
    site: str,
    spec: TableSpec,
    table: Path,
    studies: set[str],
    dates: dict[str, date | None],
) -> int:
    """Rewrite the partitions of ``table`` that ``studies`` were or are in; how many."""
    granularity = spec.granularity
    before = await asyncio.to_thread(_partitions_holding, table, studies, granularity)
    batches: dict[Partition, list[pa.RecordBatch]] = {}
    async for entities in _entities(index, site, spec.level, studies):
        by_partition: dict[Partition, list[IndexedEntity]] = {}
        for entity in entities:
            key = partition_of(dates.get(entity.study_uid), granularity)
            by_partition.setdefault(key, []).append(entity)
        for key, members in by_partition.items():
            batches.setdefault(key, []).append(spec.batch(members, dates))
    return await asyncio.to_thread(_apply, table, spec, studies, before, batches)


def _apply(
    table: Path,
    spec: TableSpec,
    studies: set[str],
    before: set[Partition],
    batches: dict[Partition, list[pa.RecordBatch]],
) -> int:
    """Rewrite the partitions ``before`` and those of ``batches``; how many."""
    schema = _file_schema(spec)
    root_file = table / "part-0.parquet"  # an empty table's only file
    if batches and root_file.exists():
        root_file.unlink()
    for partition in before | set(batches):
        written = batches.get(partition)
        rows = pa.Table.from_batches(written).select(schema.names) if written else None
        _rewrite(_directory(table, partition, spec.granularity), studies, rows, schema)
    if not any(table.rglob("*.parquet")):  # readers need a file to know the columns
        table.mkdir(parents=True, exist_ok=True)
        pq.write_table(spec.schema.empty_table(), root_file)
    return len(before | set(batches))


async def export_changes(
    index: Index, site: str, out: Path, since: int | None
) -> IncrementalResult:
    """Apply the feed after ``since`` (None: the manifest's sequence) to the export in ``out``."""
    started = time.monotonic()
    manifest = read_manifest(out, site)
    if since is None:
        if not isinstance(manifest.get("sequence"), int):
            raise NotIncremental(f"the export in {out} records no change-feed sequence")
        since = int(manifest["sequence"])
    granularity = _granularity(manifest)
    tables: dict[str, dict[str, Any]] = manifest.get("tables", {})
    specs = [_spec(name, entry, granularity) for name, entry in tables.items()]
    latest = await index.latest_change(site)
    if since > (latest.sequence if latest is not None else 0):
        raise NotIncremental(
            f"the change feed ends before sequence {since} (a new feed after a reindex?):"
            " run a full export"
        )
    studies, sequence, read = await _changed_studies(index, site, since)
    result = IncrementalResult(since=since, sequence=sequence, changes=read, studies=len(studies))
    if studies:
        dates: dict[str, date | None] = {}
        async for entities in _entities(index, site, Level.STUDY, studies):
            dates.update((e.uid, study_date(e.attributes)) for e in entities)
        for spec in specs:
            table = out / spec.name
            result.partitions += await _update_table(index, site, spec, table, studies, dates)
    for spec in specs:
        result.add(spec, await asyncio.to_thread(_rows, out / spec.name))
    result.seconds = time.monotonic() - started
    manifest.update(
        exported_at=datetime.now(UTC).isoformat(timespec="seconds"),
        sequence=sequence,
        tables=result.tables(),
        incremental={
            "since": since,
            "changes": read,
            "studies": len(studies),
            "partitions": result.partitions,
        },
    )
    await asyncio.to_thread(write_manifest, out, manifest)
    return result
