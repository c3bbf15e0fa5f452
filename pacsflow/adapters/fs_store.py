"""The embedded object store: a directory tree on local disk (``file:///…``).

Written by hand because no maintained library publishes files atomically and durably
(temporary file, fsync, ``os.replace``, fsync of the directory) behind an asyncio API;
``aiofiles`` only moves single calls to threads. Each process has its own temporary directory
(``.tmp/{pid}``); ``start`` removes those of dead processes, so several processes (HTTP
workers, processors) share one root.

Group commit: ``write_batch`` writes every new file, fsyncs them all at once from a pool of
threads (the file system folds concurrent fsyncs into few journal commits), renames them into
place and fsyncs each directory it changed once; ``sync`` does the same for objects a
``writer(durable=False)`` published. An fsync costs about as much for one file as for thirty
written together, so a batch pays it once instead of once per file.
"""

from __future__ import annotations

import asyncio
import builtins
import errno
import os
import shutil
import threading
import uuid
from collections.abc import AsyncIterator, Iterable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import asynccontextmanager, contextmanager, suppress
from pathlib import Path
from stat import S_ISREG
from typing import BinaryIO

from pacsflow.adapters.spooling import BUFFER_BYTES, BufferedWriter, check_key, shielded
from pacsflow.errors import ObjectNotFound, ObjectStoreFull, ObjectStoreUnavailable
from pacsflow.ports.objects import ObjectInfo, ObjectWriter

__all__ = ["FileSystemObjectStore"]

_TMP = ".tmp"
_READ_ONLY = 0o444
_MISSING = (FileNotFoundError, NotADirectoryError, IsADirectoryError)
_FULL = frozenset({errno.ENOSPC, errno.EDQUOT})  # no space on the disk, or no quota left
# Upper bound of ``check``: a disk (or network file system) slower than this is not answering.
CHECK_TIMEOUT = 2.0
# Threads that fsync at once in a group commit (they wait on the disk, not on the CPU).
SYNC_THREADS = 32


@contextmanager
def _translate(key: str, *, reading: bool) -> Iterator[None]:
    """Turn OSError into the port's errors; a missing file is ObjectNotFound only on reads."""
    try:
        yield
    except OSError as exc:
        if reading and isinstance(exc, _MISSING):
            raise ObjectNotFound(key) from exc
        if exc.errno in _FULL:
            raise ObjectStoreFull(f"the object store is out of space: {exc.strerror}") from exc
        raise ObjectStoreUnavailable(f"object store failed on {key!r}: {exc}") from exc


def _fsync_path(path: Path) -> None:
    """fsync a file or directory (its entries) by name."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _open_at(
    path: Path, start: int, end: int | None, chunk_size: int
) -> tuple[BinaryIO, int, bytes]:
    """Open, find where the range stops and read its first chunk: one worker-thread hop, so a
    small object streams in one (objects never change once written)."""
    file = path.open("rb")
    try:
        size = os.fstat(file.fileno()).st_size
        stop = size if end is None else min(end, size)
        file.seek(start)
        return file, stop, file.read(min(chunk_size, max(stop - start, 0)))
    except BaseException:
        file.close()
        raise


class FileSystemObjectStore:
    """Objects as files under ``root``; keys are '/'-separated relative paths."""

    def __init__(self, root: Path) -> None:
        self._root = Path(root).absolute()
        # One temp directory per process, so that several processes (pacsflow stow and
        # pacsflow worker on one data directory) never clean up each other's open writes.
        self._tmp = self._root / _TMP / str(os.getpid())
        self._sync_pool: ThreadPoolExecutor | None = None
        self._sync_lock = threading.Lock()

    @property
    def root(self) -> Path:
        """The directory that holds the objects."""
        return self._root

    async def start(self) -> None:
        """Create the root and remove temporary files left by a crashed process."""
        with _translate(str(self._root), reading=False):
            await asyncio.to_thread(self._start)

    async def close(self) -> None:
        """Stop the fsync threads (every call opens and closes its own files)."""
        with self._sync_lock:
            pool, self._sync_pool = self._sync_pool, None
        if pool is not None:
            pool.shutdown(wait=False)

    async def check(self) -> None:
        """The root and this process's temp directory are writable directories (bounded)."""

        def writable() -> None:
            for directory in (self._root, self._tmp):
                if not directory.is_dir() or not os.access(directory, os.W_OK | os.X_OK):
                    raise ObjectStoreUnavailable(f"{directory} is not a writable directory")

        try:
            await asyncio.wait_for(asyncio.to_thread(writable), CHECK_TIMEOUT)
        except TimeoutError as exc:  # before OSError, of which it is a subclass
            raise ObjectStoreUnavailable(
                f"the object store {self._root} did not answer within {CHECK_TIMEOUT} s"
            ) from exc
        except OSError as exc:
            raise ObjectStoreUnavailable(f"the object store {self._root} failed: {exc}") from exc

    async def put(self, key: str, data: bytes | bytearray, *, durable: bool = True) -> None:
        """Store ``data`` under ``key`` atomically (and durably), in one worker-thread hop."""
        path = self._path(key)
        tmp = self._new_tmp()

        def put() -> None:
            file = open(tmp, "xb")  # noqa: SIM115 - _commit closes it
            try:
                file.write(data)
            except BaseException:
                self._discard(file, tmp)
                raise
            self._commit(file, tmp, path, durable=durable)

        with _translate(key, reading=False):
            await shielded(put)

    @asynccontextmanager
    async def writer(self, key: str, *, durable: bool = True) -> AsyncIterator[ObjectWriter]:
        """Stream an object in; it is published on clean exit and discarded on error.

        ``durable=False``: published without an fsync; ``sync`` makes it durable later.
        """
        path = self._path(key)
        tmp = self._new_tmp()
        with _translate(key, reading=False):
            file = await asyncio.to_thread(open, tmp, "xb")

        async def sink(data: bytes | bytearray) -> None:
            with _translate(key, reading=False):
                await asyncio.to_thread(file.write, data)

        writer = BufferedWriter(sink)
        try:
            yield writer
            await writer.flush()
        except BaseException:
            await shielded(lambda: self._discard(file, tmp))
            raise
        with _translate(key, reading=False):
            await shielded(lambda: self._commit(file, tmp, path, durable=durable))

    async def sync(self, keys: Sequence[str]) -> None:
        """fsync the files of ``keys`` and their directories, all at once."""
        paths = [self._path(key) for key in keys]
        if paths:
            with _translate(keys[0], reading=False):
                await shielded(lambda: self._fsync_all([*paths, *{p.parent for p in paths}]))

    async def write_batch(
        self,
        puts: Sequence[tuple[str, bytes]] = (),
        moves: Sequence[tuple[str, str]] = (),
        deletes: Sequence[str] = (),
    ) -> None:
        """Write, rename and remove files as one group commit (see the module docstring)."""
        writes = [(self._path(key), data) for key, data in puts]
        renames = [(source, self._path(source), self._path(target)) for source, target in moves]
        removals = [self._path(key) for key in deletes]
        if not (writes or renames or removals):
            return
        what = (puts or [("", b"")])[0][0] or (moves or [("", "")])[0][1] or deletes[0]
        with _translate(what, reading=False):
            await shielded(lambda: self._write_batch(writes, renames, removals))

    async def get(self, key: str) -> bytes:
        """Read a whole (small) object."""
        path = self._path(key)
        with _translate(key, reading=True):
            return await asyncio.to_thread(path.read_bytes)

    async def get_many(self, keys: Sequence[str]) -> list[bytes | None]:
        """Read several whole objects in one worker-thread hop; ``None`` for a missing one."""
        paths = [self._path(key) for key in keys]

        def read_all() -> list[bytes | None]:
            found: list[bytes | None] = []
            for key, path in zip(keys, paths, strict=True):
                try:
                    found.append(path.read_bytes())
                except FileNotFoundError:
                    found.append(None)
                except OSError as exc:
                    raise ObjectStoreUnavailable(f"object store failed on {key!r}: {exc}") from exc
            return found

        return await asyncio.to_thread(read_all)

    async def read_range(self, key: str, start: int, length: int) -> bytes:
        """Read ``length`` bytes from ``start``; fewer only where the object ends."""
        if start < 0 or length < 0:
            raise ValueError(f"invalid range: start={start} length={length}")
        path = self._path(key)
        with _translate(key, reading=True):
            return await asyncio.to_thread(self._read_range, path, start, length)

    async def stream(
        self, key: str, start: int = 0, end: int | None = None, chunk_size: int = 1 << 20
    ) -> AsyncIterator[bytes]:
        """Yield the bytes ``[start, end)`` of an object in chunks of at most ``chunk_size``."""
        if start < 0 or (end is not None and end < 0) or chunk_size <= 0:
            raise ValueError(f"invalid range: start={start} end={end} chunk_size={chunk_size}")
        path = self._path(key)
        with _translate(key, reading=True):
            file, stop, chunk = await asyncio.to_thread(_open_at, path, start, end, chunk_size)
        try:
            position = start + len(chunk)
            while chunk:
                yield chunk
                if position >= stop:
                    return
                with _translate(key, reading=True):
                    chunk = await asyncio.to_thread(file.read, min(chunk_size, stop - position))
                position += len(chunk)
        finally:
            file.close()

    async def stat(self, key: str) -> ObjectInfo | None:
        """Size of an object, or ``None`` when it does not exist."""
        path = self._path(key)
        try:
            with _translate(key, reading=True):
                result = await asyncio.to_thread(os.stat, path)
        except ObjectNotFound:
            return None
        return ObjectInfo(key=key, size=result.st_size) if S_ISREG(result.st_mode) else None

    async def delete(self, key: str) -> None:
        """Remove an object; removing a missing object is not an error."""
        path = self._path(key)
        with suppress(ObjectNotFound), _translate(key, reading=True):
            await asyncio.to_thread(path.unlink)

    async def copy(self, source: str, destination: str) -> None:
        """Copy an object by hard link (a byte copy where linking fails), atomically."""
        source_path = self._path(source)
        destination_path = self._path(destination)
        with _translate(destination, reading=False):
            await shielded(lambda: self._copy(source, source_path, destination_path))

    async def list(self, prefix: str) -> AsyncIterator[str]:
        """Yield, in lexicographic order, the keys that start with ``prefix``."""
        if prefix.startswith("/") or "\\" in prefix or "\x00" in prefix:
            raise ValueError(f"invalid key prefix: {prefix!r}")
        directory = prefix.rpartition("/")[0]
        base = self._path(directory) if directory else self._root
        with _translate(prefix, reading=False):
            keys = await asyncio.to_thread(self._walk, base, prefix)
        for key in keys:
            yield key

    @asynccontextmanager
    async def local_file(self, key: str) -> AsyncIterator[Path]:
        """The object's own file; callers must not modify it (it is published read-only)."""
        if await self.stat(key) is None:
            raise ObjectNotFound(key)
        yield self._path(key)

    # Blocking helpers, run in threads.

    def _path(self, key: str) -> Path:
        return self._root.joinpath(*check_key(key).split("/"))

    def _new_tmp(self) -> Path:
        return self._tmp / uuid.uuid4().hex

    def _start(self) -> None:
        """Create the temp directory; remove what dead processes (and this pid) left."""
        self._tmp.mkdir(parents=True, exist_ok=True)
        for entry in self._tmp.parent.iterdir():
            if entry != self._tmp and entry.name.isdigit() and _alive(int(entry.name)):
                continue
            if entry == self._tmp:
                for leftover in entry.iterdir():
                    leftover.unlink(missing_ok=True)
            elif entry.is_dir() and not entry.is_symlink():
                shutil.rmtree(entry, ignore_errors=True)
            else:
                entry.unlink(missing_ok=True)

    def _commit(self, file: BinaryIO, tmp: Path, path: Path, *, durable: bool = True) -> None:
        try:
            file.flush()
            os.fchmod(file.fileno(), _READ_ONLY)
            if durable:
                os.fsync(file.fileno())
            file.close()
            self._make_dirs(path.parent)
            os.replace(tmp, path)
            if durable:
                _fsync_path(path.parent)
        except BaseException:
            self._discard(file, tmp)
            raise

    def _fsync_all(self, paths: Iterable[Path]) -> None:
        """fsync files and directories by name, from the pool of sync threads at once."""
        for _ in self._pool().map(_fsync_path, paths):
            pass

    def _fsync_open(self, files: Sequence[BinaryIO]) -> None:
        """fsync open files (flushed) from the pool of sync threads at once."""
        for _ in self._pool().map(lambda file: os.fsync(file.fileno()), files):
            pass

    def _pool(self) -> ThreadPoolExecutor:
        with self._sync_lock:
            if self._sync_pool is None:
                self._sync_pool = ThreadPoolExecutor(SYNC_THREADS, thread_name_prefix="fsync")
            return self._sync_pool

    def _write_batch(
        self,
        writes: Sequence[tuple[Path, bytes]],
        renames: Sequence[tuple[str, Path, Path]],
        removals: Sequence[Path],
    ) -> None:
        """Temporary files written, fsynced together, renamed into place; then every changed
        directory fsynced together."""
        written: builtins.list[tuple[Path, Path]] = []
        opened: builtins.list[BinaryIO] = []
        made: set[Path] = set()  # directories known to exist
        try:
            for path, data in writes:
                tmp = self._new_tmp()
                written.append((tmp, path))
                file = open(tmp, "xb")  # noqa: SIM115 - closed once fsynced, below
                opened.append(file)
                file.write(data)
                os.fchmod(file.fileno(), _READ_ONLY)
                file.flush()
            self._fsync_open(opened)  # by descriptor: no second open of each file
            for done in opened:
                done.close()
            opened.clear()
            directories: set[Path] = set()
            for source, source_path, path in renames:
                self._make_dirs_once(path.parent, made)
                try:
                    os.replace(source_path, path)
                except FileNotFoundError as exc:
                    if not source_path.exists():
                        raise ObjectNotFound(source) from exc
                    raise
                directories.update((source_path.parent, path.parent))
            for tmp, path in written:
                self._make_dirs_once(path.parent, made)
                os.replace(tmp, path)
                directories.add(path.parent)
            for path in removals:
                with suppress(*_MISSING):
                    path.unlink()
                    directories.add(path.parent)
            self._fsync_all(directories)
        finally:
            for left in opened:
                left.close()
            for tmp, _ in written:
                tmp.unlink(missing_ok=True)

    def _discard(self, file: BinaryIO, tmp: Path) -> None:
        try:
            file.close()
        finally:
            tmp.unlink(missing_ok=True)

    def _publish(self, tmp: Path, path: Path) -> None:
        self._make_dirs(path.parent)
        os.replace(tmp, path)
        _fsync_path(path.parent)

    def _make_dirs_once(self, directory: Path, made: set[Path]) -> None:
        """``_make_dirs``, skipped for a directory of ``made`` (those of this batch)."""
        if directory not in made:
            self._make_dirs(directory)
            made.add(directory)

    def _make_dirs(self, directory: Path) -> None:
        missing = []
        while directory != self._root and not directory.is_dir():
            missing.append(directory)
            directory = directory.parent
        for created in reversed(missing):
            created.mkdir(exist_ok=True)
            _fsync_path(created.parent)

    def _copy(self, source: str, source_path: Path, destination_path: Path) -> None:
        tmp = self._new_tmp()
        try:
            with _translate(source, reading=True):
                try:
                    os.link(source_path, tmp, follow_symlinks=False)
                except FileNotFoundError:
                    raise
                except OSError:  # another filesystem, no hard links, a directory: copy bytes
                    self._copy_bytes(source_path, tmp)
            self._publish(tmp, destination_path)
        except BaseException:
            tmp.unlink(missing_ok=True)
            raise

    @staticmethod
    def _copy_bytes(source_path: Path, tmp: Path) -> None:
        with open(source_path, "rb") as source, open(tmp, "xb") as target:
            shutil.copyfileobj(source, target, BUFFER_BYTES)
            target.flush()
            os.fchmod(target.fileno(), _READ_ONLY)
            os.fsync(target.fileno())

    def _walk(self, base: Path, prefix: str) -> tuple[str, ...]:
        def fail(exc: OSError) -> None:
            if not isinstance(exc, FileNotFoundError | NotADirectoryError):
                raise exc

        keys = []
        for directory, subdirectories, files in os.walk(base, onerror=fail):
            if Path(directory) == self._root and _TMP in subdirectories:
                subdirectories.remove(_TMP)
            relative = Path(directory).relative_to(self._root).as_posix()
            for name in files:
                key = name if relative == "." else f"{relative}/{name}"
                if key.startswith(prefix):
                    keys.append(key)
        return tuple(sorted(keys))

    @staticmethod
    def _read_range(path: Path, start: int, length: int) -> bytes:
        with open(path, "rb") as file:
            file.seek(start)
            return file.read(length)


def _alive(pid: int) -> bool:
    """True if a process with this pid exists."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True
