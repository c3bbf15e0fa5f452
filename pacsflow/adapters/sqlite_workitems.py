"""SQLite adapter of the workitem store port (embedded mode); contract in ``ports.workitems``.

One file in the data directory (``workitems.sqlite``), WAL journal, one connection on a
dedicated thread; every write is one ``BEGIN IMMEDIATE`` transaction, so several processes on
the same file are serialized by SQLite itself. A workitem is a row with an integer ``version``
that each write increments; ``replace`` and ``delete`` update only the row still at the
expected version (optimistic concurrency, as the Elasticsearch adapter's sequence numbers).
Match terms (``pacsflow.query.terms`` at ``Level.WORKITEM``) are kept in ``workitem_terms``
exactly as the index keeps those of studies, so searches are ``pacsflow.query.sql``.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path
from typing import Any, Final

import orjson

from pacsflow.adapters.embedded_bus import _transaction  # BEGIN IMMEDIATE ... COMMIT
from pacsflow.adapters.sqlite_file import SqliteStore
from pacsflow.ports.workitems import (
    Globals,
    StoredWorkitem,
    VersionConflict,
    WorkitemExists,
)
from pacsflow.query.model import Level, Query, SearchPage
from pacsflow.query.sql import to_sql
from pacsflow.query.terms import entity_terms

__all__ = ["SqliteWorkitemStore"]

_SCHEMA: Final = """
CREATE TABLE IF NOT EXISTS workitems (
    id INTEGER PRIMARY KEY, site TEXT NOT NULL, workitem_uid TEXT NOT NULL,
    version INTEGER NOT NULL, state TEXT NOT NULL, transaction_uid TEXT,
    attributes BLOB NOT NULL, subscribers BLOB NOT NULL, locked INTEGER NOT NULL,
    event_seq INTEGER NOT NULL, outbox BLOB NOT NULL, outbox_since REAL,
    created REAL NOT NULL, finished REAL, UNIQUE (site, workitem_uid)
);
CREATE INDEX IF NOT EXISTS workitems_outbox ON workitems (site, outbox_since)
    WHERE outbox_since IS NOT NULL;
CREATE INDEX IF NOT EXISTS workitems_finished ON workitems (site, finished)
    WHERE finished IS NOT NULL;
CREATE TABLE IF NOT EXISTS workitem_terms (term TEXT, id INTEGER, PRIMARY KEY (term, id))
    WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS workitem_subscribers (
    site TEXT NOT NULL, ae TEXT NOT NULL, workitem_uid TEXT NOT NULL,
    PRIMARY KEY (site, ae, workitem_uid)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS workitem_tombstones (
    site TEXT NOT NULL, workitem_uid TEXT NOT NULL, deleted REAL NOT NULL,
    PRIMARY KEY (site, workitem_uid)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS workitem_globals (
    site TEXT PRIMARY KEY, version INTEGER NOT NULL, subscriptions BLOB NOT NULL
);
"""
_COLUMNS: Final = (
    "site, workitem_uid, version, state, transaction_uid, attributes, subscribers, locked,"
    " event_seq, outbox, outbox_since, created, finished"
)
_VALUES: Final = (
    "state = ?, transaction_uid = ?, attributes = ?, subscribers = ?, locked = ?,"
    " event_seq = ?, outbox = ?, outbox_since = ?, created = ?, finished = ?"
)


def _values(item: StoredWorkitem) -> tuple[Any, ...]:
    """The columns after ``version``, in ``_VALUES`` order."""
    return (
        item.state,
        item.transaction_uid,
        orjson.dumps(item.attributes),
        orjson.dumps(dict(item.subscribers)),
        int(item.locked),
        item.event_seq,
        orjson.dumps(list(item.outbox)),
        item.outbox_since,
        item.created,
        item.finished,
    )


def _item(row: tuple[Any, ...]) -> StoredWorkitem:
    site, uid, version, state, tuid, attributes, subscribers, _, seq, outbox, since = row[:11]
    created, finished = row[11:]
    return StoredWorkitem(
        site=site,
        uid=uid,
        attributes=orjson.loads(attributes),
        state=state,
        transaction_uid=tuid,
        subscribers=orjson.loads(subscribers),
        event_seq=seq,
        outbox=tuple(orjson.loads(outbox)),
        created=created,
        finished=finished,
        outbox_since=since,
        version=str(version),
    )


def _index(db: sqlite3.Connection, item: StoredWorkitem, row_id: int) -> None:
    """(Re)write the terms and the subscriber rows of a workitem."""
    db.execute("DELETE FROM workitem_terms WHERE id = ?", (row_id,))
    terms = entity_terms(item.attributes, Level.WORKITEM)
    db.executemany("INSERT INTO workitem_terms VALUES (?, ?)", [(t, row_id) for t in terms])
    db.execute(
        "DELETE FROM workitem_subscribers WHERE site = ? AND workitem_uid = ?",
        (item.site, item.uid),
    )
    db.executemany(
        "INSERT INTO workitem_subscribers VALUES (?, ?, ?)",
        [(item.site, ae, item.uid) for ae in item.subscribers],
    )


class SqliteWorkitemStore(SqliteStore):
    """The workitem store in one SQLite file."""

    def __init__(self, path: Path) -> None:
        super().__init__(path, _SCHEMA, "the workitem store")

    async def get(self, site: str, uid: str) -> StoredWorkitem | None:
        """The latest version of a workitem, or ``None``."""
        sql = f"SELECT {_COLUMNS} FROM workitems WHERE site = ? AND workitem_uid = ?"
        row = await self._run(lambda db: db.execute(sql, (site, uid)).fetchone())
        return None if row is None else _item(row)

    async def deleted(self, site: str, uid: str) -> bool:
        """Whether the UID has a tombstone."""
        sql = "SELECT 1 FROM workitem_tombstones WHERE site = ? AND workitem_uid = ?"
        return await self._run(lambda db: db.execute(sql, (site, uid)).fetchone()) is not None

    async def create(self, item: StoredWorkitem) -> str:
        """Insert a new workitem at version 1."""

        def create(db: sqlite3.Connection) -> str:
            with _transaction(db):
                gone = db.execute(
                    "SELECT 1 FROM workitem_tombstones WHERE site = ? AND workitem_uid = ?",
                    (item.site, item.uid),
                ).fetchone()
                if gone is not None:
                    raise WorkitemExists(item.uid)
                try:
                    cursor = db.execute(
                        f"INSERT INTO workitems ({_COLUMNS}) VALUES ({', '.join('?' * 13)})",
                        (item.site, item.uid, 1, *_values(item)),
                    )
                except sqlite3.IntegrityError:
                    raise WorkitemExists(item.uid) from None
                _index(db, item, int(cursor.lastrowid or 0))
            return "1"

        return await self._run(create)

    async def replace(self, item: StoredWorkitem, expected: str) -> str:
        """Update the row still at version ``expected``; ``VersionConflict`` otherwise."""

        def replace(db: sqlite3.Connection) -> str:
            with _transaction(db):
                row = db.execute(
                    "SELECT id, attributes, subscribers FROM workitems"
                    " WHERE site = ? AND workitem_uid = ? AND version = ?",
                    (item.site, item.uid, int(expected or 0)),
                ).fetchone()
                if row is None:
                    raise VersionConflict(item.uid)
                values = _values(item)
                db.execute(
                    f"UPDATE workitems SET version = version + 1, {_VALUES} WHERE id = ?",
                    (*values, row[0]),
                )
                if (row[1], row[2]) != values[2:4]:
                    _index(db, item, row[0])
            return str(int(expected) + 1)

        return await self._run(replace)

    async def delete(self, item: StoredWorkitem, expected: str) -> None:
        """Delete the row still at version ``expected`` and leave a tombstone."""

        def delete(db: sqlite3.Connection) -> None:
            with _transaction(db):
                row = db.execute(
                    "SELECT id FROM workitems WHERE site = ? AND workitem_uid = ? AND version = ?",
                    (item.site, item.uid, int(expected or 0)),
                ).fetchone()
                if row is None:
                    raise VersionConflict(item.uid)
                db.execute("DELETE FROM workitems WHERE id = ?", row)
                db.execute("DELETE FROM workitem_terms WHERE id = ?", row)
                db.execute(
                    "DELETE FROM workitem_subscribers WHERE site = ? AND workitem_uid = ?",
                    (item.site, item.uid),
                )
                db.execute(
                    "INSERT OR REPLACE INTO workitem_tombstones VALUES (?, ?, ?)",
                    (item.site, item.uid, item.finished or 0.0),
                )

        await self._run(delete)

    async def search(self, site: str, query: Query) -> SearchPage:
        """One page of ``query`` (``pacsflow.query.sql``) and the number of all matches."""
        if query.level is not Level.WORKITEM:
            raise ValueError(f"a {query.level} query on the workitem store")
        sql = to_sql(site, query)

        def search(db: sqlite3.Connection) -> SearchPage:
            (total,) = db.execute(sql.count, sql.count_params).fetchone()
            rows = db.execute(sql.select, sql.select_params).fetchall()
            return SearchPage([orjson.loads(attributes) for (attributes,) in rows], total)

        return await self._run(search)

    async def scan(
        self,
        site: str,
        *,
        subscriber: str | None = None,
        outbox_before: float | None = None,
        finished_before: float | None = None,
        after: str = "",
        limit: int = 100,
    ) -> list[StoredWorkitem]:
        """Workitems by UID after ``after`` meeting every criterion given (see the port)."""
        where = ["site = ?", "workitem_uid > ?"]
        params: list[str | float] = [site, after]
        if subscriber is not None:
            where.append(
                "workitem_uid IN (SELECT workitem_uid FROM workitem_subscribers"
                " WHERE site = ? AND ae = ?)"
            )
            params += [site, subscriber]
        if outbox_before is not None:
            where.append("outbox_since IS NOT NULL AND outbox_since < ?")
            params.append(outbox_before)
        if finished_before is not None:
            where.append("finished IS NOT NULL AND finished < ? AND locked = 0")
            params.append(finished_before)
        sql = (
            f"SELECT {_COLUMNS} FROM workitems WHERE {' AND '.join(where)}"
            " ORDER BY workitem_uid LIMIT ?"
        )
        rows = await self._run(lambda db: db.execute(sql, (*params, limit)).fetchall())
        return [_item(row) for row in rows]

    async def subscriber_aes(self, site: str) -> set[str]:
        """Every AE title subscribed to a workitem of ``site``."""
        sql = "SELECT DISTINCT ae FROM workitem_subscribers WHERE site = ?"
        rows = await self._run(lambda db: db.execute(sql, (site,)).fetchall())
        return {ae for (ae,) in rows}

    async def get_globals(self, site: str) -> Globals:
        """The global subscriptions of ``site``."""
        sql = "SELECT version, subscriptions FROM workitem_globals WHERE site = ?"
        row = await self._run(lambda db: db.execute(sql, (site,)).fetchone())
        if row is None:
            return Globals(site)
        return Globals.from_document(site, orjson.loads(row[1]), str(row[0]))

    async def put_globals(self, globals_: Globals, expected: str) -> str:
        """Write the global subscriptions at version ``expected`` (``""``: none yet)."""
        document = orjson.dumps(globals_.to_document())

        def put(db: sqlite3.Connection) -> str:
            with _transaction(db):
                if not expected:
                    try:
                        db.execute(
                            "INSERT INTO workitem_globals VALUES (?, 1, ?)",
                            (globals_.site, document),
                        )
                    except sqlite3.IntegrityError:
                        raise VersionConflict(globals_.site) from None
                    return "1"
                changed = db.execute(
                    "UPDATE workitem_globals SET version = version + 1, subscriptions = ?"
                    " WHERE site = ? AND version = ?",
                    (document, globals_.site, int(expected)),
                ).rowcount
                if not changed:
                    raise VersionConflict(globals_.site)
            return str(int(expected) + 1)

        return await self._run(put)
