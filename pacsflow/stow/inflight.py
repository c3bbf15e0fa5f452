"""Markers of the STOW-RS requests in flight in this process, so that the parts they staged
(claim checks, ``{site}/staging/{request}.{part}.dcm``) are deleted after a crash (issue 23,
chaos trials: a ``pacsflow stow`` killed mid-request left its staged parts forever).

Each process owns a directory under ``DATA_DIR/stow-inflight/`` and holds an exclusive
``flock`` on its ``lock`` file for its whole life (the kernel releases it when the process
dies, SIGKILL included). A request writes a marker naming its staging prefix before it stages
anything and removes it once its records are published, before it answers: a request whose
marker remains was never acknowledged. ``sweep`` (at the start of a STOW process) deletes the
staged objects named by the markers of every directory whose lock it can take (its owner is
dead), then the directory. A record published just before the crash may then lose its staged
part: it is dead-lettered ("the staged object is gone"), and its client had no answer.
"""

from __future__ import annotations

import contextlib
import fcntl
import logging
import re
import shutil
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import IO

from pacsflow.ports import ObjectStore

__all__ = ["InFlight"]

log = logging.getLogger(__name__)

_LOCK = "lock"
_STAGING = re.compile(r"[^/]+/staging/[^/]+\.")  # pacsflow.pipeline.keys.staging_prefix


class InFlight:
    """This process's markers of requests in flight, in ``root/<process>/``."""

    def __init__(self, root: Path) -> None:
        self._root = root
        self._own: Path | None = None
        self._lock: IO[bytes] | None = None

    def _directory(self) -> Path:
        """This process's directory, made and locked on first use."""
        if self._own is None:
            name = uuid.uuid4().hex
            making = self._root / f".{name}"  # locked before it gets a name sweep looks at
            making.mkdir(parents=True)
            lock = (making / _LOCK).open("wb")
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
            own = making.rename(self._root / name)
            self._own, self._lock = own, lock
        return self._own

    def begin(self, staging_prefix: str) -> Path | None:
        """Mark a request that may stage objects under ``staging_prefix``; the marker, or
        None when it cannot be written (a full disk): the request goes on unmarked."""
        try:
            marker = self._directory() / uuid.uuid4().hex
            marker.write_text(staging_prefix)
        except OSError as exc:
            log.warning("no in-flight marker (%s): a crash would leave its staged parts", exc)
            return None
        return marker

    def end(self, marker: Path | None) -> None:
        """The request's records are published (or its staged objects deleted)."""
        if marker is not None:
            with contextlib.suppress(OSError):
                marker.unlink(missing_ok=True)

    async def sweep(self, objects: ObjectStore) -> int:
        """Delete what the requests of dead processes staged; how many objects."""
        if not self._root.is_dir():
            return 0
        swept = 0
        for directory in sorted(self._root.iterdir()):
            if directory == self._own or directory.name.startswith(".") or not directory.is_dir():
                continue
            with _taken(directory / _LOCK) as taken:
                if not taken:
                    continue  # its process lives
                for marker in sorted(directory.iterdir()):
                    if marker.name == _LOCK:
                        continue
                    prefix = marker.read_text()
                    # a marker cut short by the crash must not name more than staged parts
                    whole = _STAGING.fullmatch(prefix) is not None
                    keys = [key async for key in objects.list(prefix)] if whole else []
                    for key in keys:
                        await objects.delete(key)
                    swept += len(keys)
                    marker.unlink()
                shutil.rmtree(directory, ignore_errors=True)
        if swept:
            log.warning("deleted %d staged objects of STOW requests cut short by a crash", swept)
        return swept

    def close(self) -> None:
        """Release the lock (the process ends): the next sweep removes its directory, and
        the parts of a request still in flight."""
        if self._lock is not None:
            self._lock.close()
            self._own, self._lock = None, None


@contextlib.contextmanager
def _taken(path: Path) -> Iterator[bool]:
    """Whether the lock at ``path`` could be taken (held for the block)."""
    try:
        handle = path.open("rb")
    except FileNotFoundError:
        yield False
        return
    with handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            yield False
            return
        yield True
