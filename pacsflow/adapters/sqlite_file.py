"""One SQLite file owned by one thread: what the embedded stores of the data directory share.

WAL journal and ``synchronous=FULL`` (a write that returned survives a crash), one connection
used only from a dedicated thread, the schema created at start, SQLite errors wrapped as
``IndexUnavailable`` where they enter, ``check`` a bounded ``select 1``.
"""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Final, TypeVar

from pacsflow.errors import IndexUnavailable

__all__ = ["CHECK_TIMEOUT", "SqliteFile", "SqliteStore"]

T = TypeVar("T")

CHECK_TIMEOUT: Final = 2.0


class SqliteFile:
    """A SQLite database file, its schema and the thread that uses its connection."""

    def __init__(self, path: Path, schema: str, what: str) -> None:
        self.path = path
        self._schema = schema
        self._what = what  # "the workitem store": how messages name it
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix=f"sqlite-{path.stem}")
        self._db: sqlite3.Connection | None = None
        self._closed = False

    async def run(self, fn: Callable[[sqlite3.Connection], T]) -> T:
        """Run ``fn`` with the connection on the file's thread."""

        def call() -> T:
            if self._db is None:
                raise IndexUnavailable(f"{self._what} {self.path} is not started")
            try:
                return fn(self._db)
            except sqlite3.Error as exc:
                raise IndexUnavailable(f"{self._what} {self.path}: SQLite error: {exc}") from exc

        if self._closed:
            raise IndexUnavailable(f"{self._what} {self.path} is closed")
        return await asyncio.get_running_loop().run_in_executor(self._executor, call)

    async def start(self) -> None:
        """Open the file and create the schema (idempotent)."""

        def open_db() -> None:
            if self._db is not None:
                return
            self.path.parent.mkdir(parents=True, exist_ok=True)
            db = sqlite3.connect(
                self.path, isolation_level=None, check_same_thread=False, timeout=30.0
            )
            db.execute("PRAGMA journal_mode=WAL")
            db.execute("PRAGMA synchronous=FULL")
            db.executescript(self._schema)
            self._db = db

        try:
            await asyncio.get_running_loop().run_in_executor(self._executor, open_db)
        except sqlite3.Error as exc:
            raise IndexUnavailable(f"cannot open {self._what} {self.path}: {exc}") from exc

    async def close(self) -> None:
        """Close the file and end its thread (idempotent)."""
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
        """``select 1`` (bounded); ``IndexUnavailable`` when the file does not answer."""
        try:
            await asyncio.wait_for(
                self.run(lambda db: db.execute("SELECT 1").fetchone()), CHECK_TIMEOUT
            )
        except TimeoutError as exc:
            raise IndexUnavailable(f"{self._what} {self.path} did not answer") from exc


class SqliteStore:
    """A store kept in one ``SqliteFile``: its start, close and check are the file's."""

    def __init__(self, path: Path, schema: str, what: str) -> None:
        self._file = SqliteFile(path, schema, what)
        self._run = self._file.run

    async def start(self) -> None:
        """Open the file and create the schema (idempotent)."""
        await self._file.start()

    async def close(self) -> None:
        """Close the file (idempotent)."""
        await self._file.close()

    async def check(self) -> None:
        """``select 1`` (bounded); ``IndexUnavailable`` when the store does not answer."""
        await self._file.check()
