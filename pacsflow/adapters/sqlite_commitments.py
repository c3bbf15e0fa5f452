"""SQLite adapter of the commitment store port (embedded mode); contract in ``ports.commitments``.

One file in the data directory (``commitments.sqlite``, a ``SqliteFile``: a result given to a
client survives a crash). A record is one row keyed by (site, Transaction UID); ``finish``
updates only a row still ``working``, so the first result written stays, whichever process
wrote it.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path
from typing import Any, Final

import orjson

from pacsflow.adapters.sqlite_file import SqliteStore
from pacsflow.ports.commitments import JsonDict, StoredCommitment, TransactionInUse

__all__ = ["SqliteCommitmentStore"]

_SCHEMA: Final = """
CREATE TABLE IF NOT EXISTS commitments (
    site TEXT NOT NULL, transaction_uid TEXT NOT NULL, state TEXT NOT NULL,
    created REAL NOT NULL, finished REAL, request BLOB NOT NULL, barrier BLOB NOT NULL,
    result BLOB, PRIMARY KEY (site, transaction_uid)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS commitments_finished ON commitments (site, finished)
    WHERE finished IS NOT NULL;
"""
_COLUMNS: Final = "site, transaction_uid, state, created, finished, request, barrier, result"


def _record(row: tuple[Any, ...]) -> StoredCommitment:
    site, uid, state, created, finished, request, barrier, result = row
    return StoredCommitment(
        site=site,
        transaction_uid=uid,
        request=orjson.loads(request),
        created=created,
        barrier={int(p): int(o) for p, o in orjson.loads(barrier).items()},
        state="done" if state == "done" else "working",
        result=orjson.loads(result) if result is not None else None,
        finished=finished,
    )


class SqliteCommitmentStore(SqliteStore):
    """The commitment store in one SQLite file."""

    def __init__(self, path: Path) -> None:
        super().__init__(path, _SCHEMA, "the commitment store")

    async def create(self, item: StoredCommitment) -> None:
        """Insert a new row; ``TransactionInUse`` when the (site, UID) row exists."""
        values = (
            item.site,
            item.transaction_uid,
            item.state,
            item.created,
            item.finished,
            orjson.dumps(item.request),
            orjson.dumps({str(p): o for p, o in item.barrier.items()}),
            orjson.dumps(item.result) if item.result is not None else None,
        )

        def create(db: sqlite3.Connection) -> None:
            try:
                db.execute(f"INSERT INTO commitments ({_COLUMNS}) VALUES (?,?,?,?,?,?,?,?)", values)
            except sqlite3.IntegrityError:
                raise TransactionInUse(
                    f"Transaction UID {item.transaction_uid} is already in use"
                ) from None

        await self._run(create)

    async def get(self, site: str, transaction_uid: str) -> StoredCommitment | None:
        """The row of the UID, or ``None``."""
        sql = f"SELECT {_COLUMNS} FROM commitments WHERE site = ? AND transaction_uid = ?"
        row = await self._run(lambda db: db.execute(sql, (site, transaction_uid)).fetchone())
        return None if row is None else _record(row)

    async def finish(
        self, site: str, transaction_uid: str, result: JsonDict, finished: float
    ) -> StoredCommitment:
        """Set the result of a row still working; return the row as stored after."""
        update = (
            "UPDATE commitments SET state = 'done', result = ?, finished = ?"
            " WHERE site = ? AND transaction_uid = ? AND state = 'working'"
        )
        select = f"SELECT {_COLUMNS} FROM commitments WHERE site = ? AND transaction_uid = ?"

        def finish(db: sqlite3.Connection) -> tuple[Any, ...] | None:
            db.execute(update, (orjson.dumps(result), finished, site, transaction_uid))
            row: tuple[Any, ...] | None = db.execute(select, (site, transaction_uid)).fetchone()
            return row

        row = await self._run(finish)
        if row is None:
            raise KeyError(transaction_uid)
        return _record(row)

    async def purge(self, site: str, finished_before: float) -> int:
        """Delete the done rows of ``site`` finished before ``finished_before``."""
        sql = "DELETE FROM commitments WHERE site = ? AND state = 'done' AND finished < ?"
        return await self._run(lambda db: db.execute(sql, (site, finished_before)).rowcount)
