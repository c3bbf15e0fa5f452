"""The archive's status for the console's status page, from counters the archive already keeps.

* archive: studies, series and instances of the site (the index's totals, as QIDO-RS counts);
* ingest: what was published to ``ingest`` and what the processors committed, per partition
  (``Bus.positions``, the port STOW's backpressure reads too); the lag is their difference;
* dead letters: how many, and the latest with their reasons (``DeadLetterLog``);
* storage: the bytes of a ``file://`` object store (measured at most every ``STORAGE_TTL``
  seconds) and the disk of the data directory;
* backends: whether each answers (``Container.check``, as ``/ready``).

Counters only grow: the page turns two snapshots into rates (instances stored per second,
records processed per second). A Prometheus endpoint can replace this later with the same
counters under metric names.
"""

from __future__ import annotations

import asyncio
import shutil
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final
from urllib.parse import unquote, urlparse

from pacsflow.auth import Principal, Right
from pacsflow.console.dead_letters import DeadLetterLog
from pacsflow.container import ROLE_BACKENDS, Container
from pacsflow.errors import ServiceUnavailable
from pacsflow.pipeline.records import DEAD_LETTER_TOPIC, INGEST_GROUP, INGEST_TOPIC
from pacsflow.query.model import STUDY_ROOT_LEVELS, Query

__all__ = ["STORAGE_TTL", "StatusReader"]

STORAGE_TTL: Final = 30.0


@dataclass
class _Measured:
    at: float
    value: dict[str, Any]


def _object_store_path(url: str) -> Path | None:
    parsed = urlparse(url)
    if parsed.scheme != "file":
        return None
    return Path(unquote(parsed.netloc + parsed.path) if parsed.netloc else unquote(parsed.path))


def _tree_size(root: Path) -> dict[str, Any]:
    """Bytes and files under ``root`` (blocking: run in a thread)."""
    size = files = 0
    for path in root.rglob("*"):
        try:
            if path.is_file():
                size += path.stat().st_size
                files += 1
        except OSError:  # removed while we walked
            continue
    return {"kind": "file", "bytes": size, "files": files}


class StatusReader:
    """Builds status snapshots of one process's container."""

    def __init__(self, container: Container) -> None:
        self._container = container
        self.dead_letters = DeadLetterLog(container.bus)
        self._storage: _Measured | None = None
        self._storage_lock = asyncio.Lock()

    async def snapshot(self, site: str, principal: Principal) -> dict[str, Any]:
        """The status of ``site`` as ``principal`` may see it (dead letters of sites it admins)."""
        archive, ingest, dead, storage, backends = await asyncio.gather(
            self._archive(site),
            self._ingest(),
            self._dead_letters(principal),
            self._storage_use(),
            self._backends(),
        )
        return {
            "time": time.time(),
            "site": site,
            "archive": archive,
            "ingest": ingest,
            "dead_letters": dead,
            "storage": storage,
            "backends": backends,
        }

    async def _archive(self, site: str) -> dict[str, Any]:
        index = self._container.index
        try:
            pages = await asyncio.gather(
                *(index.search(site, Query(level, limit=1)) for level in STUDY_ROOT_LEVELS)
            )
        except ServiceUnavailable as exc:
            return {"error": str(exc)}
        return {
            str(level): page.total for level, page in zip(STUDY_ROOT_LEVELS, pages, strict=True)
        }

    async def _ingest(self) -> dict[str, Any]:
        try:
            positions = await self._container.bus.positions(INGEST_TOPIC, INGEST_GROUP)
        except ServiceUnavailable as exc:
            return {"error": str(exc)}
        published = sum(end for _, end in positions.values())
        processed = sum(min(committed, end) for committed, end in positions.values())
        partitions = {
            str(p): {"processed": c, "published": e, "lag": max(e - c, 0)}
            for p, (c, e) in sorted(positions.items())
        }
        return {
            "published": published,
            "processed": processed,
            "lag": published - processed,
            "partitions": partitions,
        }

    async def _dead_letters(self, principal: Principal) -> dict[str, Any]:
        try:
            recent = await self.dead_letters.refresh()
            positions = await self._container.bus.positions(DEAD_LETTER_TOPIC, INGEST_GROUP)
        except ServiceUnavailable as exc:
            return {"error": str(exc)}
        total = sum(end for _, end in positions.values())
        shown = [
            {
                "reason": f"{letter.failure_reason:04X}",
                "message": letter.message,
                "site": letter.site,
                "study_uid": letter.study_uid,
                "sop_uid": letter.sop_uid,
                "partition": letter.partition,
                "offset": letter.offset,
            }
            for letter in recent
            if principal.may(letter.site or self._container.sites.default, Right.ADMIN)
        ]
        return {"total": total, "recent": shown}

    async def _storage_use(self) -> dict[str, Any]:
        settings = self._container.settings
        async with self._storage_lock:
            now = time.monotonic()
            if self._storage is None or now - self._storage.at > STORAGE_TTL:
                root = _object_store_path(settings.resolved_object_store_url())
                objects = (
                    await asyncio.to_thread(_tree_size, root)
                    if root is not None
                    else {"kind": "s3", "note": "the S3 service reports its own usage"}
                )
                self._storage = _Measured(now, objects)
            objects = self._storage.value
        try:
            disk = await asyncio.to_thread(shutil.disk_usage, settings.data_dir)
            volume: dict[str, Any] = {"total": disk.total, "used": disk.used, "free": disk.free}
        except OSError as exc:
            volume = {"error": exc.strerror or str(exc)}
        return {"objects": objects, "data_dir": {"path": str(settings.data_dir), **volume}}

    async def _backends(self) -> dict[str, Any]:
        found = await self._container.check(ROLE_BACKENDS)
        reasons: dict[str, str] = {str(name): reason for name, reason in found.items()}
        names = sorted({b for backends in ROLE_BACKENDS.values() for b in backends})
        return {
            name: {"ready": False, "reason": reasons[name]} if name in reasons else {"ready": True}
            for name in names
        }

    async def close(self) -> None:
        """Release the dead-letter subscription."""
        await self.dead_letters.close()
