"""SQLite adapter of the index port (embedded mode); contract in ``pacsflow.ports.index``.

One connection in a dedicated worker thread (SQLite objects stay on the thread that made them),
WAL journal. Instances keep their attributes whole as JSON; study and series rows keep the
level attributes of their latest instance; derived counts are computed at search time.
"""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, TypeVar

import orjson

from pacsflow.dicom.levels import level_attributes, series_derived, study_derived
from pacsflow.errors import IndexUnavailable
from pacsflow.ports.index import InstanceDocument, SeriesRecord, StudyRecord

__all__ = ["SqliteIndex"]

T = TypeVar("T")

_SCHEMA = """
CREATE TABLE IF NOT EXISTS instances (
    site TEXT NOT NULL, sop_uid TEXT NOT NULL, study_uid TEXT NOT NULL,
    series_uid TEXT NOT NULL, sop_class_uid TEXT NOT NULL, transfer_syntax TEXT NOT NULL,
    modality TEXT NOT NULL DEFAULT '', object_key TEXT NOT NULL, size INTEGER NOT NULL,
    sha256 TEXT NOT NULL, attributes BLOB NOT NULL,
    PRIMARY KEY (site, sop_uid)
);
CREATE INDEX IF NOT EXISTS instances_study ON instances (site, study_uid);
CREATE INDEX IF NOT EXISTS instances_series ON instances (site, series_uid);
CREATE TABLE IF NOT EXISTS studies (
    site TEXT NOT NULL, study_uid TEXT NOT NULL, attributes BLOB NOT NULL,
    PRIMARY KEY (site, study_uid)
);
CREATE TABLE IF NOT EXISTS series (
    site TEXT NOT NULL, series_uid TEXT NOT NULL, study_uid TEXT NOT NULL,
    attributes BLOB NOT NULL, PRIMARY KEY (site, series_uid)
);
CREATE INDEX IF NOT EXISTS series_study ON series (site, study_uid);
"""


class SqliteIndex:
    """The index in one SQLite file."""

    def __init__(self, path: Path) -> None:
        self._path = path
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="sqlite-index")
        self._db: sqlite3.Connection | None = None

    async def _run(self, fn: Callable[[sqlite3.Connection], T]) -> T:
        def call() -> T:
            if self._db is None:
                raise IndexUnavailable("the index is not started")
            try:
                return fn(self._db)
            except sqlite3.Error as exc:
                raise IndexUnavailable(f"SQLite index error: {exc}") from exc

        return await asyncio.get_running_loop().run_in_executor(self._executor, call)

    async def start(self) -> None:
        """Open the database and create the schema (idempotent)."""

        def open_db() -> None:
            self._path.parent.mkdir(parents=True, exist_ok=True)
            db = sqlite3.connect(self._path, isolation_level=None, check_same_thread=False)
            db.execute("PRAGMA journal_mode=WAL")
            db.execute("PRAGMA synchronous=FULL")
            db.executescript(_SCHEMA)
            self._db = db

        try:
            await asyncio.get_running_loop().run_in_executor(self._executor, open_db)
        except sqlite3.Error as exc:
            raise IndexUnavailable(f"cannot open the SQLite index: {exc}") from exc

    async def close(self) -> None:
        """Close the database."""

        def close_db() -> None:
            if self._db is not None:
                self._db.close()
                self._db = None

        await asyncio.get_running_loop().run_in_executor(self._executor, close_db)
        self._executor.shutdown(wait=True)

    async def upsert_instances(self, documents: Sequence[InstanceDocument]) -> None:
        """Index a batch in one transaction; replaced entries may move between studies."""
        if documents:
            await self._run(lambda db: _upsert(db, documents))

    async def get_instance(self, site: str, sop_uid: str) -> InstanceDocument | None:
        """The entry of one SOP Instance UID, or ``None``."""

        def get(db: sqlite3.Connection) -> InstanceDocument | None:
            row = db.execute(
                "SELECT study_uid, series_uid, sop_class_uid, transfer_syntax, object_key,"
                " size, sha256, attributes FROM instances WHERE site=? AND sop_uid=?",
                (site, sop_uid),
            ).fetchone()
            if row is None:
                return None
            return InstanceDocument(
                site,
                row[0],
                row[1],
                sop_uid,
                row[2],
                row[3],
                row[4],
                row[5],
                row[6],
                orjson.loads(row[7]),
            )

        return await self._run(get)

    async def delete_instance(self, site: str, sop_uid: str) -> None:
        """Remove an entry and the study/series rows it leaves empty."""

        def delete(db: sqlite3.Connection) -> None:
            with _transaction(db):
                row = db.execute(
                    "SELECT study_uid, series_uid FROM instances WHERE site=? AND sop_uid=?",
                    (site, sop_uid),
                ).fetchone()
                if row is not None:
                    db.execute("DELETE FROM instances WHERE site=? AND sop_uid=?", (site, sop_uid))
                    _drop_empty(db, site, {row[0]}, {row[1]})

        await self._run(delete)

    async def search_studies(self, site: str, limit: int, offset: int) -> list[StudyRecord]:
        """Studies in Study Instance UID order with their derived attributes."""

        def search(db: sqlite3.Connection) -> list[StudyRecord]:
            rows = db.execute(
                "SELECT s.study_uid, s.attributes, COUNT(DISTINCT i.series_uid), COUNT(*),"
                " GROUP_CONCAT(DISTINCT i.modality), GROUP_CONCAT(DISTINCT i.sop_class_uid)"
                " FROM studies s JOIN instances i ON i.site = s.site AND i.study_uid = s.study_uid"
                " WHERE s.site = ? GROUP BY s.study_uid ORDER BY s.study_uid LIMIT ? OFFSET ?",
                (site, limit, offset),
            ).fetchall()
            records = []
            for study_uid, attrs, n_series, n_instances, modalities, classes in rows:
                attributes: dict[str, Any] = orjson.loads(attrs)
                attributes.update(
                    study_derived(n_series, n_instances, _split(modalities), _split(classes))
                )
                records.append(StudyRecord(site, study_uid, attributes))
            return records

        return await self._run(search)

    async def search_series(self, site: str, study_uid: str) -> list[SeriesRecord]:
        """Series of a study in Series Instance UID order with their instance counts."""

        def search(db: sqlite3.Connection) -> list[SeriesRecord]:
            rows = db.execute(
                "SELECT s.series_uid, s.attributes, COUNT(*) FROM series s JOIN instances i"
                " ON i.site = s.site AND i.series_uid = s.series_uid"
                " WHERE s.site = ? AND s.study_uid = ? GROUP BY s.series_uid"
                " ORDER BY s.series_uid",
                (site, study_uid),
            ).fetchall()
            records = []
            for series_uid, attrs, count in rows:
                attributes: dict[str, Any] = orjson.loads(attrs)
                attributes.update(series_derived(count))
                records.append(SeriesRecord(site, study_uid, series_uid, attributes))
            return records

        return await self._run(search)


class _transaction:
    """BEGIN IMMEDIATE ... COMMIT, rolled back on error (autocommit connection)."""

    def __init__(self, db: sqlite3.Connection) -> None:
        self.db = db

    def __enter__(self) -> None:
        self.db.execute("BEGIN IMMEDIATE")

    def __exit__(self, exc_type: object, exc: object, tb: object) -> None:
        self.db.execute("COMMIT" if exc_type is None else "ROLLBACK")


def _split(value: str | None) -> list[str]:
    return [v for v in (value or "").split(",") if v]


def _modality(attributes: dict[str, Any]) -> str:
    values = attributes.get("00080060", {}).get("Value") or [""]
    return str(values[0])


def _upsert(db: sqlite3.Connection, documents: Sequence[InstanceDocument]) -> None:
    with _transaction(db):
        touched_studies: dict[str, set[str]] = {}
        touched_series: dict[str, set[str]] = {}
        for doc in documents:
            old = db.execute(
                "SELECT study_uid, series_uid FROM instances WHERE site=? AND sop_uid=?",
                (doc.site, doc.sop_uid),
            ).fetchone()
            if old is not None:
                touched_studies.setdefault(doc.site, set()).add(old[0])
                touched_series.setdefault(doc.site, set()).add(old[1])
            db.execute(
                "INSERT OR REPLACE INTO instances VALUES (?,?,?,?,?,?,?,?,?,?,?)",
                (
                    doc.site,
                    doc.sop_uid,
                    doc.study_uid,
                    doc.series_uid,
                    doc.sop_class_uid,
                    doc.transfer_syntax,
                    _modality(doc.attributes),
                    doc.object_key,
                    doc.size,
                    doc.sha256,
                    orjson.dumps(doc.attributes),
                ),
            )
            db.execute(
                "INSERT OR REPLACE INTO studies VALUES (?,?,?)",
                (doc.site, doc.study_uid, orjson.dumps(level_attributes(doc.attributes, "study"))),
            )
            db.execute(
                "INSERT OR REPLACE INTO series VALUES (?,?,?,?)",
                (
                    doc.site,
                    doc.series_uid,
                    doc.study_uid,
                    orjson.dumps(level_attributes(doc.attributes, "series")),
                ),
            )
        for site, studies in touched_studies.items():
            _drop_empty(db, site, studies, touched_series.get(site, set()))


def _drop_empty(db: sqlite3.Connection, site: str, studies: set[str], series: set[str]) -> None:
    for study_uid in studies:
        db.execute(
            "DELETE FROM studies WHERE site=? AND study_uid=? AND NOT EXISTS"
            " (SELECT 1 FROM instances WHERE site=? AND study_uid=?)",
            (site, study_uid, site, study_uid),
        )
    for series_uid in series:
        db.execute(
            "DELETE FROM series WHERE site=? AND series_uid=? AND NOT EXISTS"
            " (SELECT 1 FROM instances WHERE site=? AND series_uid=?)",
            (site, series_uid, site, series_uid),
        )
