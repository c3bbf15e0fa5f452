"""SQLite adapter of the index port (embedded mode); contract in ``pacsflow.ports.index``.

One connection in a dedicated worker thread (SQLite objects stay on the thread that made them),
WAL journal, planner statistics kept by ``pacsflow.adapters.sqlite_statistics``. Instances keep
their attributes whole as JSON; study and series rows keep the level attributes of their latest
instance plus the derived attributes of PS3.18 10.6.3, kept current on every write. Each
entity's match terms (``pacsflow.query.terms``) live in a ``WITHOUT ROWID`` table per level
keyed (term, id); searches are ``pacsflow.query.sql``. The change feed is appended in the
transaction of the write it records (``pacsflow.adapters.sqlite_changefeed``).
"""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, Final, TypeVar

import orjson

from pacsflow.adapters import sqlite_changefeed as feed
from pacsflow.adapters.sqlite_statistics import ANALYZE_FLOOR, PlannerStatistics
from pacsflow.changefeed.entries import Change, DeletionCause, FeedEntry, deletion
from pacsflow.dicom.levels import level_attributes, series_derived, study_derived
from pacsflow.errors import BadRequest, IndexFull, IndexUnavailable
from pacsflow.ports.index import (
    IndexedEntity,
    IndexTotals,
    InstanceDocument,
    InstanceRef,
    check_scan_studies,
)
from pacsflow.query.model import Level, Query, SearchPage
from pacsflow.query.sql import TERMS, to_sql
from pacsflow.query.terms import entity_terms, first_value

__all__ = ["SCHEMA_VERSION", "SqliteIndex"]

T = TypeVar("T")
JsonDict = dict[str, Any]

SCHEMA_VERSION: Final = 2
# Upper bound of ``check``: a database thread busy for longer than this counts as not answering.
CHECK_TIMEOUT: Final = 2.0
_SCHEMA = """
CREATE TABLE IF NOT EXISTS instances (
    id INTEGER PRIMARY KEY, site TEXT NOT NULL, sop_uid TEXT NOT NULL, study_uid TEXT NOT NULL,
    series_uid TEXT NOT NULL, sop_class_uid TEXT NOT NULL, transfer_syntax TEXT NOT NULL,
    modality TEXT NOT NULL DEFAULT '', object_key TEXT NOT NULL, size INTEGER NOT NULL,
    sha256 TEXT NOT NULL, attributes BLOB NOT NULL, UNIQUE (site, sop_uid)
);
CREATE INDEX IF NOT EXISTS instances_study ON instances (site, study_uid, sop_uid);
CREATE INDEX IF NOT EXISTS instances_series ON instances (site, series_uid, sop_uid);
CREATE TABLE IF NOT EXISTS studies (
    id INTEGER PRIMARY KEY, site TEXT NOT NULL, study_uid TEXT NOT NULL,
    attributes BLOB NOT NULL, UNIQUE (site, study_uid)
);
CREATE TABLE IF NOT EXISTS series (
    id INTEGER PRIMARY KEY, site TEXT NOT NULL, series_uid TEXT NOT NULL,
    study_uid TEXT NOT NULL, attributes BLOB NOT NULL, UNIQUE (site, series_uid)
);
CREATE INDEX IF NOT EXISTS series_study ON series (site, study_uid, series_uid);
CREATE TABLE IF NOT EXISTS study_terms (term TEXT, id INTEGER, PRIMARY KEY (term, id))
    WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS series_terms (term TEXT, id INTEGER, PRIMARY KEY (term, id))
    WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS instance_terms (term TEXT, id INTEGER, PRIMARY KEY (term, id))
    WITHOUT ROWID;
"""
# SQLite's limits a statement can reach (a search too large for them is the client's error).
_QUERY_LIMITS: Final = (
    "too complex",  # LIKE or GLOB pattern too complex
    "too many terms",  # in compound SELECT
    "too large",  # Expression tree is too large
    "too many SQL variables",
    "stack overflow",  # parser stack overflow
    "too big",  # string or blob too big
)
_REF_COLUMNS: Final = "study_uid, series_uid, sop_uid, transfer_syntax, size, sha256"
_COLUMNS: Final = (
    "study_uid, series_uid, sop_class_uid, transfer_syntax, object_key, size, sha256, attributes"
)
_SCAN: Final = {
    Level.STUDY: "SELECT study_uid, attributes FROM studies"
    " WHERE site=? AND study_uid>? ORDER BY study_uid LIMIT ?",
    Level.SERIES: "SELECT series_uid, study_uid, attributes FROM series"
    " WHERE site=? AND series_uid>? ORDER BY series_uid LIMIT ?",
    Level.INSTANCE: f"SELECT sop_uid, {_COLUMNS} FROM instances"
    " WHERE site=? AND sop_uid>? ORDER BY sop_uid LIMIT ?",
}


_TOTALS: Final = (
    "SELECT (SELECT COUNT(*) FROM studies), (SELECT COUNT(*) FROM series), COUNT(*),"
    " COALESCE(SUM(size), 0) FROM instances"
)


class SqliteIndex:
    """The index in one SQLite file."""

    def __init__(self, path: Path, analyze_floor: int = ANALYZE_FLOOR) -> None:
        self._path = path
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="sqlite-index")
        self._db: sqlite3.Connection | None = None
        self._closed = False
        self._statistics = PlannerStatistics(analyze_floor)

    async def _run(self, fn: Callable[[sqlite3.Connection], T], *, query: bool = False) -> T:
        def call() -> T:
            if self._db is None:
                raise IndexUnavailable("the index is not started")
            try:
                return fn(self._db)
            except sqlite3.Error as exc:
                if getattr(exc, "sqlite_errorcode", None) == sqlite3.SQLITE_FULL:
                    raise IndexFull(f"the SQLite index is out of space: {exc}") from exc
                if query and any(limit in str(exc) for limit in _QUERY_LIMITS):
                    raise BadRequest(f"the index cannot evaluate this query: {exc}") from exc
                raise IndexUnavailable(f"SQLite index error: {exc}") from exc

        if self._closed:  # its thread is gone too
            raise IndexUnavailable(f"the SQLite index {self._path} is closed")
        return await asyncio.get_running_loop().run_in_executor(self._executor, call)

    async def start(self) -> None:
        """Open the database, create the schema, migrate an older one (idempotent)."""

        def open_db() -> None:
            self._path.parent.mkdir(parents=True, exist_ok=True)
            db = sqlite3.connect(self._path, isolation_level=None, check_same_thread=False)
            db.execute("PRAGMA journal_mode=WAL")
            db.execute("PRAGMA synchronous=FULL")
            db.execute("PRAGMA cache_size=-65536")  # 64 MiB of page cache
            _migrate(db)
            self._statistics.open(db)
            self._db = db

        try:
            await asyncio.get_running_loop().run_in_executor(self._executor, open_db)
        except sqlite3.Error as exc:
            raise IndexUnavailable(f"cannot open the SQLite index: {exc}") from exc

    async def close(self) -> None:
        """Close the database (idempotent)."""
        if self._closed:
            return

        def close_db() -> None:
            if self._db is not None:
                self._db.close()
                self._db = None

        await asyncio.get_running_loop().run_in_executor(self._executor, close_db)
        self._closed = True
        self._executor.shutdown(wait=True)

    async def check(self) -> None:
        """``select 1`` on the database (bounded); ``IndexUnavailable`` when it does not answer."""
        try:
            await asyncio.wait_for(
                self._run(lambda db: db.execute("SELECT 1").fetchone()), CHECK_TIMEOUT
            )
        except TimeoutError as exc:
            raise IndexUnavailable(
                f"the SQLite index {self._path} did not answer within {CHECK_TIMEOUT} s"
            ) from exc

    async def upsert_instances(
        self, documents: Sequence[InstanceDocument], changes: Sequence[Change] = ()
    ) -> None:
        """Index a batch and append its changes in one transaction; replaced entries may move
        between studies."""
        if documents or changes:
            await self._run(
                lambda db: self._statistics.changed(db, _upsert(db, documents, changes))
            )

    async def get_instance(self, site: str, sop_uid: str) -> InstanceDocument | None:
        """The entry of one SOP Instance UID, or ``None``."""
        return (await self.get_instances(site, [sop_uid])).get(sop_uid)

    async def get_instances(
        self, site: str, sop_uids: Sequence[str]
    ) -> dict[str, InstanceDocument]:
        """The entries of several SOP Instance UIDs, by UID (one query per 500)."""
        wanted = list(dict.fromkeys(sop_uids))

        def get(db: sqlite3.Connection) -> dict[str, InstanceDocument]:
            found: dict[str, InstanceDocument] = {}
            for start in range(0, len(wanted), 500):
                chunk = wanted[start : start + 500]
                marks = ",".join("?" * len(chunk))
                for row in db.execute(
                    f"SELECT sop_uid, {_COLUMNS} FROM instances"
                    f" WHERE site=? AND sop_uid IN ({marks})",
                    (site, *chunk),
                ):
                    sop_uid, study, series, sop_class, syntax, key, size, sha256, attributes = row
                    found[sop_uid] = InstanceDocument(
                        site, study, series, sop_uid, sop_class, syntax, key, size, sha256,
                        orjson.loads(attributes),
                    )  # fmt: skip
            return found

        return await self._run(get) if wanted else {}

    async def get_instance_ref(self, site: str, sop_uid: str) -> InstanceRef | None:
        """Where one SOP Instance UID is stored (its attributes are not read), or ``None``."""

        def get(db: sqlite3.Connection) -> InstanceRef | None:
            row = db.execute(
                f"SELECT {_REF_COLUMNS} FROM instances WHERE site=? AND sop_uid=?", (site, sop_uid)
            ).fetchone()
            return None if row is None else InstanceRef(*row)

        return await self._run(get)

    async def delete_instances(
        self, site: str, sop_uids: Sequence[str], cause: DeletionCause | None = None
    ) -> None:
        """Remove entries and append their ``delete`` changes in one transaction; their
        studies and series are recounted or removed when left empty."""
        why = cause or DeletionCause.unnamed()

        def delete(db: sqlite3.Connection) -> None:
            studies: dict[str, JsonDict | None] = {}
            series: dict[str, tuple[str, JsonDict | None]] = {}
            changes: list[Change] = []
            with _transaction(db):
                for sop_uid in dict.fromkeys(sop_uids):
                    row = db.execute(
                        "SELECT id, study_uid, series_uid, attributes, sop_class_uid"
                        " FROM instances WHERE site=? AND sop_uid=?",
                        (site, sop_uid),
                    ).fetchone()
                    if row is None:
                        continue
                    _set_terms(db, Level.INSTANCE, row[0], orjson.loads(row[3]), {})
                    db.execute("DELETE FROM instances WHERE id=?", (row[0],))
                    studies[row[1]] = None
                    series[row[2]] = (row[1], None)
                    changes.append(deletion(why, site, row[1], row[2], sop_uid, row[4]))
                if changes:
                    _refresh(db, site, studies, series)
                    feed.append_changes(db, changes)
            if changes:
                self._statistics.changed(db, -len(changes))

        if sop_uids:
            await self._run(delete)

    async def totals(self) -> IndexTotals:
        """Entities per level and the bytes of the instances, over all sites (three scans of
        the tables' B-trees: for ``/metrics``, which asks at most once a minute)."""
        row = await self._run(lambda db: db.execute(_TOTALS).fetchone())
        return IndexTotals(*(int(value) for value in row))

    async def read_changes(self, site: str, after: int = 0, limit: int = 100) -> list[FeedEntry]:
        """Entries of the site's feed above ``after``, in order (the primary key's B-tree)."""

        return await self._run(lambda db: feed.read_changes(db, site, after, limit))

    async def latest_change(self, site: str) -> FeedEntry | None:
        """The site's entry with the highest sequence, or ``None``."""
        return await self._run(lambda db: feed.latest_change(db, site))

    async def list_instances(
        self, site: str, study_uid: str, series_uid: str | None = None
    ) -> list[InstanceRef]:
        """Every instance of a study or series, by Series then SOP Instance UID."""
        sql = f"SELECT {_REF_COLUMNS} FROM instances WHERE site=? AND study_uid=?"
        params: tuple[str, ...] = (site, study_uid)
        if series_uid is not None:
            sql += " AND series_uid=?"
            params += (series_uid,)
        sql += " ORDER BY series_uid, sop_uid"

        def list_(db: sqlite3.Connection) -> list[InstanceRef]:
            return [InstanceRef(*row) for row in db.execute(sql, params)]

        return await self._run(list_)

    async def list_middle_instances(
        self, site: str, study_uid: str, series_uid: str | None = None
    ) -> list[InstanceRef]:
        """The middle instance of each series, by Series UID: ranked on the UID indexes, then
        one row read per series (not every instance of the study)."""
        where = "site=? AND study_uid=?" + (" AND series_uid=?" if series_uid is not None else "")
        params = (site, study_uid) + ((series_uid,) if series_uid is not None else ())
        sql = (
            f"WITH ranked AS (SELECT sop_uid, ROW_NUMBER() OVER w - 1 AS n,"
            f" COUNT(*) OVER (PARTITION BY series_uid) AS c FROM instances WHERE {where}"
            f" WINDOW w AS (PARTITION BY series_uid ORDER BY sop_uid))"
            f" SELECT {_REF_COLUMNS} FROM instances WHERE site=? AND sop_uid IN"
            f" (SELECT sop_uid FROM ranked WHERE n = c / 2) ORDER BY series_uid"
        )

        def middle(db: sqlite3.Connection) -> list[InstanceRef]:
            return [InstanceRef(*row) for row in db.execute(sql, (*params, site))]

        return await self._run(middle)

    async def search(self, site: str, query: Query) -> SearchPage:
        """One page of the entities matching ``query`` and their number (PS3.18 10.6)."""
        sql = to_sql(site, query)

        def search(db: sqlite3.Connection) -> SearchPage:
            rows = db.execute(sql.select, sql.select_params).fetchall()
            records = []
            for row in rows:
                record: JsonDict = {}
                for blob in reversed(row):  # parents first: the entity's own attributes win
                    record.update(orjson.loads(blob))
                records.append(record)
            if len(records) < query.limit and (records or query.offset == 0):
                total = query.offset + len(records)
            else:
                total = db.execute(sql.count, sql.count_params).fetchone()[0]
            return SearchPage(records, total)

        return await self._run(search, query=True)

    async def scan(
        self,
        site: str,
        level: Level,
        after: str = "",
        limit: int = 1000,
        studies: Sequence[str] = (),
    ) -> list[IndexedEntity]:
        """Entities of ``level`` after the UID ``after``, by UID (the UNIQUE keys' B-trees);
        of ``studies`` only when given."""
        check_scan_studies(studies)
        sql = _SCAN[level]
        if studies:
            where = f" AND study_uid IN ({','.join('?' * len(studies))}) ORDER BY"
            sql = sql.replace(" ORDER BY", where, 1)
        parameters = (site, after, *studies, limit)

        def scan(db: sqlite3.Connection) -> list[IndexedEntity]:
            rows = db.execute(sql, parameters).fetchall()
            if level is Level.STUDY:
                return [IndexedEntity(r[0], r[0], "", orjson.loads(r[1])) for r in rows]
            if level is Level.SERIES:
                return [IndexedEntity(r[0], r[1], r[0], orjson.loads(r[2])) for r in rows]
            entities = []
            for sop, study, series, sop_class, syntax, key, size, sha256, blob in rows:
                attributes = orjson.loads(blob)
                document = InstanceDocument(
                    site, study, series, sop, sop_class, syntax, key, size, sha256, attributes
                )
                entities.append(IndexedEntity(sop, study, series, attributes, document))
            return entities

        return await self._run(scan)


class _transaction:
    """BEGIN IMMEDIATE ... COMMIT, rolled back on error (autocommit connection)."""

    def __init__(self, db: sqlite3.Connection) -> None:
        self.db = db

    def __enter__(self) -> None:
        self.db.execute("BEGIN IMMEDIATE")

    def __exit__(self, exc_type: object, exc: object, tb: object) -> None:
        self.db.execute("COMMIT" if exc_type is None else "ROLLBACK")


def _set_terms(
    db: sqlite3.Connection, level: Level, id_: int, old: JsonDict, new: JsonDict
) -> None:
    """Replace the terms of an entity computed from ``old`` attributes by those of ``new``."""
    before = set(entity_terms(old, level)) if old else set()
    after = set(entity_terms(new, level)) if new else set()
    table = TERMS[level]
    db.executemany(f"DELETE FROM {table} WHERE term=? AND id=?", [(t, id_) for t in before - after])
    db.executemany(
        f"INSERT OR IGNORE INTO {table} VALUES (?,?)", [(t, id_) for t in after - before]
    )


def _upsert(
    db: sqlite3.Connection, documents: Sequence[InstanceDocument], changes: Sequence[Change] = ()
) -> int:
    """Index a batch and append its changes in one transaction; the number of instances that
    were not indexed before."""
    inserted = 0
    with _transaction(db):
        feed.append_changes(db, changes)
        touched: dict[
            str, tuple[dict[str, JsonDict | None], dict[str, tuple[str, JsonDict | None]]]
        ]
        touched = {}
        for doc in documents:
            studies, series = touched.setdefault(doc.site, ({}, {}))
            old = db.execute(
                "SELECT id, study_uid, series_uid, attributes FROM instances"
                " WHERE site=? AND sop_uid=?",
                (doc.site, doc.sop_uid),
            ).fetchone()
            row = (
                doc.study_uid, doc.series_uid, doc.sop_class_uid, doc.transfer_syntax,
                first_value(doc.attributes, "00080060"), doc.object_key, doc.size, doc.sha256,
                orjson.dumps(doc.attributes),
            )  # fmt: skip
            if old is None:
                id_ = db.execute(
                    "INSERT INTO instances (study_uid, series_uid, sop_class_uid, transfer_syntax,"
                    " modality, object_key, size, sha256, attributes, site, sop_uid)"
                    " VALUES (?,?,?,?,?,?,?,?,?,?,?)",
                    (*row, doc.site, doc.sop_uid),
                ).lastrowid
                old_attributes: JsonDict = {}
                inserted += 1
            else:
                id_, old_attributes = old[0], orjson.loads(old[3])
                db.execute(
                    "UPDATE instances SET study_uid=?, series_uid=?, sop_class_uid=?,"
                    " transfer_syntax=?, modality=?, object_key=?, size=?, sha256=?, attributes=?"
                    " WHERE id=?",
                    (*row, id_),
                )
                studies.setdefault(old[1], None)
                series.setdefault(old[2], (old[1], None))
            assert id_ is not None
            _set_terms(db, Level.INSTANCE, id_, old_attributes, doc.attributes)
            studies[doc.study_uid] = doc.attributes
            series[doc.series_uid] = (doc.study_uid, doc.attributes)
        for site, (studies, series) in touched.items():
            _refresh(db, site, studies, series)
    return inserted


def _refresh(
    db: sqlite3.Connection,
    site: str,
    studies: dict[str, JsonDict | None],
    series: dict[str, tuple[str, JsonDict | None]],
) -> None:
    """Recompute study and series rows from their instances (``None``: keep the attributes)."""
    for series_uid, (study_uid, attributes) in series.items():
        (count,) = db.execute(
            "SELECT COUNT(*) FROM instances WHERE site=? AND series_uid=?", (site, series_uid)
        ).fetchone()
        level = None if attributes is None else level_attributes(attributes, "series")
        _store(db, Level.SERIES, site, series_uid, study_uid, level, series_derived(count), count)
    for study_uid, attributes in studies.items():
        n_series, n_instances, modalities, classes = db.execute(
            "SELECT COUNT(DISTINCT series_uid), COUNT(*), GROUP_CONCAT(DISTINCT modality),"
            " GROUP_CONCAT(DISTINCT sop_class_uid) FROM instances WHERE site=? AND study_uid=?",
            (site, study_uid),
        ).fetchone()
        level = None if attributes is None else level_attributes(attributes, "study")
        derived = study_derived(n_series, n_instances, _split(modalities), _split(classes))
        _store(db, Level.STUDY, site, study_uid, study_uid, level, derived, n_instances)


def _store(
    db: sqlite3.Connection,
    level: Level,
    site: str,
    uid: str,
    study_uid: str,
    attributes: JsonDict | None,
    derived: JsonDict,
    count: int,
) -> None:
    """Write (or with ``count`` 0 delete) a study or series row and its terms."""
    table, column = ("studies", "study_uid") if level is Level.STUDY else ("series", "series_uid")
    row = db.execute(
        f"SELECT id, attributes FROM {table} WHERE site=? AND {column}=?", (site, uid)
    ).fetchone()
    old: JsonDict = orjson.loads(row[1]) if row is not None else {}
    if count == 0:
        if row is not None:
            _set_terms(db, level, row[0], old, {})
            db.execute(f"DELETE FROM {table} WHERE id=?", (row[0],))
        return
    base = old if attributes is None else attributes
    new = dict(sorted({**base, **derived}.items()))
    blob = orjson.dumps(new)
    if row is None:
        if level is Level.STUDY:
            cursor = db.execute(
                "INSERT INTO studies (site, study_uid, attributes) VALUES (?,?,?)",
                (site, uid, blob),
            )
        else:
            cursor = db.execute(
                "INSERT INTO series (site, series_uid, study_uid, attributes) VALUES (?,?,?,?)",
                (site, uid, study_uid, blob),
            )
        assert cursor.lastrowid is not None
        _set_terms(db, level, cursor.lastrowid, {}, new)
    else:
        if level is Level.SERIES:
            db.execute("UPDATE series SET study_uid=? WHERE id=?", (study_uid, row[0]))
        db.execute(f"UPDATE {table} SET attributes=? WHERE id=?", (blob, row[0]))
        _set_terms(db, level, row[0], old, new)


def _split(value: str | None) -> list[str]:
    return [v for v in (value or "").split(",") if v]


def _migrate(db: sqlite3.Connection) -> None:
    """Create the schema; an index of an older schema is rebuilt from its instance rows."""
    (version,) = db.execute("PRAGMA user_version").fetchone()
    tables = {r[0] for r in db.execute("SELECT name FROM sqlite_master WHERE type='table'")}
    old_rows: Iterable[tuple[Any, ...]] = []
    if version < SCHEMA_VERSION and "instances" in tables:
        old_rows = db.execute(
            "SELECT site, study_uid, series_uid, sop_uid, sop_class_uid, transfer_syntax,"
            " object_key, size, sha256, attributes FROM instances"
        ).fetchall()
        with _transaction(db):
            for name in ("instances", "studies", "series"):
                db.execute(f"DROP TABLE IF EXISTS {name}")
    db.executescript(_SCHEMA + feed.SCHEMA)
    documents = [
        InstanceDocument(r[0], r[1], r[2], r[3], r[4], r[5], r[6], r[7], r[8], orjson.loads(r[9]))
        for r in old_rows
    ]
    for start in range(0, len(documents), 1000):
        _upsert(db, documents[start : start + 1000])
    db.execute(f"PRAGMA user_version={SCHEMA_VERSION}")
