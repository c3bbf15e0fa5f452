"""The archive in process, for the service tier: ``create_app(container)`` on the embedded
adapters (SQLite bus and index, objects on disk) with the ingest processor running in the same
event loop, wired as ``pacsflow serve`` wires them (pacsflow/cli.py), and an
``httpx.AsyncClient`` that calls the app through ``httpx.ASGITransport`` (no socket)."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

from pacsflow.config import Settings
from pacsflow.container import Container, build_container
from services.app import create_app
from streams.runner import run_ingest_processor
from tests.support.dicomweb import ACCEPT_AS_STORED, multipart, single_part, stow_content_type

__all__ = ["BASE_URL", "Archive", "running_archive"]

BASE_URL = "http://pacsflow.test/dicom-web"
ROLES = ("stow", "qido", "wado")


@dataclass
class Archive:
    """A running in-process archive: its client (base URL: the DICOMweb root), its container
    (to look at its backends) and its settings."""

    client: httpx.AsyncClient
    container: Container
    settings: Settings

    @property
    def url(self) -> str:
        """The DICOMweb root, as the archive sees it in the URLs it writes."""
        return BASE_URL

    async def stow(
        self, parts: list[bytes], study: str | None = None, **headers: str
    ) -> httpx.Response:
        """POST parts to /studies (or /studies/{study})."""
        body, boundary = multipart(parts)
        target = "/studies" + (f"/{study}" if study else "")
        content_type = {"Content-Type": stow_content_type(boundary)}
        return await self.client.post(target, content=body, headers={**content_type, **headers})

    async def stow_files(self, *paths: Path) -> httpx.Response:
        """POST the files' bytes, one part each."""
        return await self.stow([path.read_bytes() for path in paths])

    async def retrieve(self, study: str, series: str, sop: str) -> bytes:
        """One instance as stored: the bytes of its single part."""
        response = await self.client.get(
            f"/studies/{study}/series/{series}/instances/{sop}",
            headers={"Accept": ACCEPT_AS_STORED},
        )
        return single_part(response)


@contextlib.asynccontextmanager
async def running_archive(
    data_dir: Path, *, roles: tuple[str, ...] = ROLES, **settings: Any
) -> AsyncIterator[Archive]:
    """An archive over ``data_dir`` serving ``roles`` with ``settings`` (``Settings`` fields,
    e.g. ``max_request_bytes=20000``); its processor runs unless ``processors=False``."""
    configured = Settings(data_dir=data_dir, **settings)
    await asyncio.to_thread(data_dir.mkdir, parents=True, exist_ok=True)
    container = build_container(configured)
    await container.start(listen_for_outcomes=True)
    stop = asyncio.Event()
    processor = None
    if configured.processors:
        processor = asyncio.create_task(
            run_ingest_processor(container.bus, container.ingest_context, stop)
        )
    transport = httpx.ASGITransport(app=create_app(container, roles))
    try:
        async with httpx.AsyncClient(transport=transport, base_url=BASE_URL, timeout=120) as client:
            yield Archive(client, container, configured)
    finally:
        stop.set()
        if processor is not None:
            await processor
        await container.close()
