"""Embedded adapter of the bus port: a durable, partitioned log in one SQLite journal.

Written by hand because no maintained library offers Kafka semantics (partitions, consumer
groups, committed offsets) on a local file; it is a handful of SQL statements. One dedicated
thread owns the connection (WAL, ``synchronous=FULL``: a returned publish survives a kill).
Several processes may share a journal (HTTP workers and processors of ``pacsflow serve``): a
fetch is woken by a publish of any of them (``pacsflow.adapters.bus_wakeups``) and otherwise
polls the file. A new journal has ``DEFAULT_PARTITIONS`` partitions, so that processors can
split them (``subscribe(partitions=...)``).
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import json
import sqlite3
import zlib
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from functools import partial
from pathlib import Path
from typing import TypeVar

from pacsflow.adapters.bus_wakeups import Wakeups
from pacsflow.errors import BusFull, BusUnavailable
from pacsflow.ports.bus import Headers, Message, Positions, StartPosition

__all__ = ["EmbeddedBus", "EmbeddedSubscription"]

_T = TypeVar("_T")
_POLL_SECONDS = 0.5
# Partitions of a journal created without an explicit number (fixed once it exists).
DEFAULT_PARTITIONS = 8
# Upper bound of ``check``: a journal thread busy for longer than this counts as not answering.
CHECK_TIMEOUT = 2.0
# Retention: after this many commits a subscription prunes what every group has passed.
PRUNE_EVERY_COMMITS = 256
# Retention of topics without committing groups: the newest messages kept per partition.
RETAIN_MESSAGES = 100_000
_SCHEMA = (
    "CREATE TABLE IF NOT EXISTS meta (name TEXT PRIMARY KEY, value INTEGER NOT NULL)",
    """CREATE TABLE IF NOT EXISTS heads (
        topic TEXT NOT NULL, partition INTEGER NOT NULL, next_offset INTEGER NOT NULL,
        PRIMARY KEY (topic, partition))""",
    """CREATE TABLE IF NOT EXISTS messages (
        topic TEXT NOT NULL, partition INTEGER NOT NULL, "offset" INTEGER NOT NULL,
        key BLOB NOT NULL, value BLOB NOT NULL, headers TEXT NOT NULL,
        PRIMARY KEY (topic, partition, "offset"))""",
    """CREATE TABLE IF NOT EXISTS commits (
        grp TEXT NOT NULL, topic TEXT NOT NULL, partition INTEGER NOT NULL,
        "offset" INTEGER NOT NULL, PRIMARY KEY (grp, topic, partition))""",
    "CREATE TABLE IF NOT EXISTS listeners (name BLOB PRIMARY KEY)",
)
_Row = tuple[int, bytes, bytes, str]  # partition, key, value, encoded headers


@contextlib.contextmanager
def _transaction(conn: sqlite3.Connection) -> Iterator[None]:
    """Run the block in one write transaction, rolled back on any error."""
    conn.execute("BEGIN IMMEDIATE")
    try:
        yield
        conn.execute("COMMIT")
    except BaseException:
        if conn.in_transaction:
            conn.execute("ROLLBACK")
        raise


def _encode_headers(headers: Headers) -> str:
    """Headers as JSON: ``[[name, base64 value], ...]``."""
    return json.dumps([[name, base64.b64encode(value).decode("ascii")] for name, value in headers])


def _decode_headers(text: str) -> Headers:
    """Inverse of ``_encode_headers``."""
    return tuple((str(name), base64.b64decode(value)) for name, value in json.loads(text))


class EmbeddedBus:
    """The bus port on one SQLite file; ``partitions`` is fixed when the file is created
    (``None``: what the file has, ``DEFAULT_PARTITIONS`` for a new one)."""

    def __init__(
        self, path: Path, partitions: int | None = None, retain_messages: int = RETAIN_MESSAGES
    ) -> None:
        if partitions is not None and partitions < 1:
            raise ValueError(f"partitions must be at least 1, not {partitions}")
        self._path = path
        self._requested = partitions
        self._partitions = partitions or DEFAULT_PARTITIONS
        self._wakeups = Wakeups(self._woken)
        self._retain = retain_messages
        self._published: dict[str, int] = {}
        self._executor: ThreadPoolExecutor | None = None
        self._conn: sqlite3.Connection | None = None
        self._start_lock = asyncio.Lock()
        self._signals: dict[str, asyncio.Event] = {}

    def partition_of(self, key: bytes) -> int:
        """The partition of ``key``: stable across processes and runs."""
        return zlib.crc32(key) % self._partitions

    async def start(self) -> None:
        """Open the journal and create its tables (idempotent)."""
        async with self._start_lock:
            if self._conn is not None:
                return
            executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="embedded-bus")
            name = self._wakeups.open()
            try:
                conn = await asyncio.get_running_loop().run_in_executor(executor, self._open, name)
            except (sqlite3.Error, OSError) as exc:
                executor.shutdown(wait=False)
                self._wakeups.close()
                raise BusUnavailable(f"cannot open the bus journal {self._path}: {exc}") from exc
            except BaseException:
                executor.shutdown(wait=False)
                self._wakeups.close()
                raise
            self._executor, self._conn = executor, conn

    def _open(self, wakeup: bytes | None) -> sqlite3.Connection:
        """Connect, switch to WAL and full sync, create the schema, register the wake-up
        socket (worker thread)."""
        self._path.parent.mkdir(parents=True, exist_ok=True)
        conn = sqlite3.connect(self._path, timeout=30.0, isolation_level=None)
        try:
            (mode,) = conn.execute("PRAGMA journal_mode=WAL").fetchone()
            if mode != "wal":
                raise BusUnavailable(f"the bus journal {self._path} cannot use WAL ({mode})")
            conn.execute("PRAGMA synchronous=FULL")
            with _transaction(conn):
                for statement in _SCHEMA:
                    conn.execute(statement)
                conn.execute(
                    "INSERT OR IGNORE INTO meta VALUES ('partitions', ?)", (self._partitions,)
                )
                (stored,) = conn.execute(
                    "SELECT value FROM meta WHERE name = 'partitions'"
                ).fetchone()
                if wakeup is not None:
                    conn.execute("INSERT OR IGNORE INTO listeners VALUES (?)", (wakeup,))
            if self._requested is not None and stored != self._requested:
                raise BusUnavailable(
                    f"the bus journal {self._path} has {stored} partitions, not {self._requested}"
                )
            self._partitions = int(stored)
        except BaseException:
            conn.close()
            raise
        return conn

    async def close(self) -> None:
        """Close the journal after the queued work; waiting fetches fail (idempotent)."""
        async with self._start_lock:
            conn, executor = self._conn, self._executor
            if conn is None or executor is None:
                return
            self._conn = self._executor = None
            name = self._wakeups.name
            self._wakeups.close()

            def close() -> None:
                if name is not None:
                    with contextlib.suppress(sqlite3.Error):
                        conn.execute("DELETE FROM listeners WHERE name = ?", (name,))
                conn.close()

            try:
                await asyncio.get_running_loop().run_in_executor(executor, close)
            finally:
                executor.shutdown(wait=False)
                for signal in self._signals.values():
                    signal.set()
                self._signals.clear()

    async def check(self) -> None:
        """Read the journal's metadata (bounded); ``BusUnavailable`` when it does not answer."""
        sql = "SELECT value FROM meta WHERE name = 'partitions'"
        try:
            await asyncio.wait_for(
                self._run(lambda conn: conn.execute(sql).fetchone()), CHECK_TIMEOUT
            )
        except TimeoutError as exc:
            raise BusUnavailable(
                f"the embedded bus {self._path} did not answer within {CHECK_TIMEOUT} s"
            ) from exc

    async def _run(self, work: Callable[[sqlite3.Connection], _T]) -> _T:
        """Run ``work`` on the journal's thread; wrap SQLite errors."""
        conn, executor = self._conn, self._executor
        if conn is None or executor is None:
            raise BusUnavailable(f"the embedded bus {self._path} is not started")
        try:
            return await asyncio.get_running_loop().run_in_executor(executor, work, conn)
        except sqlite3.Error as exc:
            if getattr(exc, "sqlite_errorcode", None) == sqlite3.SQLITE_FULL:
                raise BusFull(f"the embedded bus's journal is out of space: {exc}") from exc
            raise BusUnavailable(f"the embedded bus {self._path} failed: {exc}") from exc

    def _signal(self, topic: str) -> asyncio.Event:
        """The event the next publish on ``topic`` sets."""
        return self._signals.setdefault(topic, asyncio.Event())

    async def publish(self, topic: str, key: bytes, value: bytes, headers: Headers = ()) -> None:
        """Append one message; return once it is durable."""
        await self.publish_batch(topic, [(key, value, headers)])

    async def publish_batch(
        self, topic: str, items: Sequence[tuple[bytes, bytes, Headers]]
    ) -> None:
        """Append several messages in one transaction; return once all are durable."""
        if not items:
            return
        rows = [(self.partition_of(k), k, v, _encode_headers(h)) for k, v, h in items]
        listeners = await self._run(lambda conn: _append(conn, topic, rows))
        self._woken(topic)
        gone = self._wakeups.notify(listeners, topic)
        if gone:  # processes that died without closing the journal
            await self._run(lambda conn: _forget(conn, gone))
        count = self._published.get(topic, 0) + 1
        self._published[topic] = count
        if count % PRUNE_EVERY_COMMITS == 0:
            await self.prune(topic)  # retention of topics no group commits on (events)

    def _woken(self, topic: str) -> None:
        """A publish on ``topic`` (here or in another process): wake its fetches."""
        signal = self._signals.pop(topic, None)
        if signal is not None:
            signal.set()

    async def subscribe(
        self,
        topic: str,
        group: str,
        *,
        start: StartPosition = "committed",
        partitions: Sequence[int] | None = None,
    ) -> EmbeddedSubscription:
        """Open a subscription of ``group`` to ``topic`` (to some of its ``partitions``) at
        its committed offsets or the end."""
        if start == "committed":
            sql = 'SELECT partition, "offset" FROM commits WHERE grp = ? AND topic = ?'
            args: tuple[str, ...] = (group, topic)
        elif start == "latest":
            sql, args = "SELECT partition, next_offset FROM heads WHERE topic = ?", (topic,)
        else:
            raise ValueError(f"unknown start position {start!r}")
        found = dict(await self._run(lambda conn: conn.execute(sql, args).fetchall()))
        chosen = range(self._partitions) if partitions is None else sorted(set(partitions))
        positions = {p: int(found.get(p, 0)) for p in chosen if 0 <= p < self._partitions}
        return EmbeddedSubscription(self, topic, group, positions)

    async def positions(self, topic: str, group: str) -> Positions:
        """Per partition: ``group``'s committed offset (0 when none) and the next offset."""

        def read(conn: sqlite3.Connection) -> Positions:
            heads = dict(
                conn.execute("SELECT partition, next_offset FROM heads WHERE topic = ?", (topic,))
            )
            commits = dict(
                conn.execute(
                    'SELECT partition, "offset" FROM commits WHERE grp = ? AND topic = ?',
                    (group, topic),
                )
            )
            return {
                p: (int(commits.get(p, 0)), int(heads.get(p, 0))) for p in range(self._partitions)
            }

        return await self._run(read)

    async def prune(self, topic: str) -> int:
        """Delete what every committing group has passed; return how many.

        On a topic no group ever committed on (``events``, ``dead-letter``), keep the last
        ``retain_messages`` of each partition, like a size-based retention.
        """
        return await self._run(lambda conn: _prune(conn, topic, self._partitions, self._retain))


class EmbeddedSubscription:
    """One consumer's view of a topic; remembers what it fetched, commits per partition."""

    def __init__(self, bus: EmbeddedBus, topic: str, group: str, positions: dict[int, int]):
        self._bus = bus
        self._topic = topic
        self._group = group
        self._positions = positions
        self._lock = asyncio.Lock()
        self._closed = False
        self._commits = 0

    # ``timeout`` is the port's signature: how long to wait for a message, not a cancel scope.
    async def fetch(self, max_messages: int = 100, timeout: float = 1.0) -> list[Message]:
        """Wait up to ``timeout`` seconds for messages; return at most ``max_messages``."""
        if max_messages < 1:
            raise ValueError(f"max_messages must be at least 1, not {max_messages}")
        loop = asyncio.get_running_loop()
        deadline = loop.time() + max(timeout, 0.0)
        async with self._lock:
            while True:
                if self._closed:
                    raise BusUnavailable(f"the subscription of {self._group} is closed")
                signal = self._bus._signal(self._topic)
                positions = dict(self._positions)
                read = partial(_read, topic=self._topic, positions=positions, limit=max_messages)
                messages = await self._bus._run(read)
                if messages:
                    for message in messages:
                        self._positions[message.partition] = message.offset + 1
                    return messages
                remaining = deadline - loop.time()
                if remaining <= 0:
                    return []
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(signal.wait(), min(remaining, _POLL_SECONDS))

    async def commit(self, messages: Sequence[Message]) -> None:
        """Store, per partition, the offset after the last of ``messages``; never backwards."""
        ends: dict[int, int] = {}
        for message in messages:
            if message.topic != self._topic or message.partition not in self._positions:
                raise ValueError(f"{message.topic}/{message.partition} is not of this subscription")
            ends[message.partition] = max(ends.get(message.partition, 0), message.offset + 1)
        if not ends:
            return
        if self._closed:
            raise BusUnavailable(f"the subscription of {self._group} is closed")
        rows = [(self._group, self._topic, p, end) for p, end in ends.items()]
        await self._bus._run(lambda conn: _commit(conn, rows))
        for partition, end in ends.items():
            self._positions[partition] = max(self._positions[partition], end)
        self._commits += 1
        if self._commits % PRUNE_EVERY_COMMITS == 0:
            await self._bus.prune(self._topic)  # retention: drop what every group has passed

    async def close(self) -> None:
        """Release the subscription; uncommitted messages will be delivered again (idempotent)."""
        self._closed = True


def _append(conn: sqlite3.Connection, topic: str, rows: list[_Row]) -> list[bytes]:
    """Insert ``rows`` at the heads of their partitions, in one transaction; return the
    wake-up sockets of the processes sharing the journal."""
    with _transaction(conn):
        heads: dict[int, int] = dict(
            conn.execute("SELECT partition, next_offset FROM heads WHERE topic = ?", (topic,))
        )
        for partition, key, value, headers in rows:
            offset = heads.get(partition, 0)
            heads[partition] = offset + 1
            conn.execute(
                "INSERT INTO messages VALUES (?, ?, ?, ?, ?, ?)",
                (topic, partition, offset, key, value, headers),
            )
        conn.executemany(
            "INSERT INTO heads VALUES (?, ?, ?) ON CONFLICT (topic, partition)"
            " DO UPDATE SET next_offset = excluded.next_offset",
            [(topic, partition, head) for partition, head in heads.items()],
        )
    return [bytes(name) for (name,) in conn.execute("SELECT name FROM listeners")]


def _forget(conn: sqlite3.Connection, names: list[bytes]) -> None:
    """Unregister wake-up sockets nobody listens on any more."""
    conn.executemany("DELETE FROM listeners WHERE name = ?", [(n,) for n in names])


def _read(
    conn: sqlite3.Connection, topic: str, positions: dict[int, int], limit: int
) -> list[Message]:
    """The first ``limit`` messages at or after ``positions``, in publication order."""
    found: list[tuple[int, Message]] = []
    for partition, position in positions.items():
        for rowid, offset, key, value, headers in conn.execute(
            'SELECT rowid, "offset", key, value, headers FROM messages'
            ' WHERE topic = ? AND partition = ? AND "offset" >= ? ORDER BY "offset" LIMIT ?',
            (topic, partition, position, limit),
        ):
            message = Message(topic, key, value, partition, offset, _decode_headers(headers))
            found.append((rowid, message))
    found.sort(key=lambda item: item[0])
    return [message for _, message in found[:limit]]


def _commit(conn: sqlite3.Connection, rows: list[tuple[str, str, int, int]]) -> None:
    """Upsert committed offsets, keeping the larger one.

    Without an fsync of its own (``synchronous=NORMAL``): a crash of the process loses nothing
    (the WAL is in the page cache), and a power cut can only lose a suffix of the WAL, i.e.
    this commit and what followed it, never a publish before it; a lost commit means
    redelivery, which every consumer handles. The next durable publish syncs it anyway.
    """
    conn.execute("PRAGMA synchronous=NORMAL")
    try:
        with _transaction(conn):
            conn.executemany(
                "INSERT INTO commits VALUES (?, ?, ?, ?) ON CONFLICT (grp, topic, partition)"
                ' DO UPDATE SET "offset" = max("offset", excluded."offset")',
                rows,
            )
    finally:
        conn.execute("PRAGMA synchronous=FULL")


def _prune(conn: sqlite3.Connection, topic: str, partitions: int, retain: int) -> int:
    """Delete, per partition, messages below the lowest committed offset of every group."""
    with _transaction(conn):
        rows = conn.execute(
            'SELECT grp, partition, "offset" FROM commits WHERE topic = ?', (topic,)
        ).fetchall()
        committed = {(group, partition): offset for group, partition, offset in rows}
        groups = {group for group, _, _ in rows}
        heads = dict(
            conn.execute("SELECT partition, next_offset FROM heads WHERE topic = ?", (topic,))
        )
        deleted = 0
        for partition in range(partitions):
            if groups:
                floor = min(committed.get((g, partition), 0) for g in groups)
            else:
                floor = int(heads.get(partition, 0)) - retain
            if floor > 0:
                deleted += conn.execute(
                    'DELETE FROM messages WHERE topic = ? AND partition = ? AND "offset" < ?',
                    (topic, partition, floor),
                ).rowcount
        return deleted
