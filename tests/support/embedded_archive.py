"""An embedded archive in the test's process: ``create_app(container)`` over httpx.ASGITransport.

The ingest processor runs as a task of the test's event loop and can be stopped and started
again, so a test can hold instances in the log (acknowledged, not yet indexed).
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import pydicom
from fastapi import FastAPI

from pacsflow.config import Settings
from pacsflow.container import Container, build_container
from pacsflow.ports import ObjectStore
from services.app import create_app
from streams.runner import run_ingest_processor
from tests.support.dicomweb import multipart

STOW_TYPE = 'multipart/related; type="application/dicom"; boundary={}'


@dataclass
class Archive:
    """An embedded archive in this process, and an HTTP client of its app."""

    container: Container
    app: FastAPI
    client: httpx.AsyncClient
    _stop: asyncio.Event = field(default_factory=asyncio.Event)
    _processor: asyncio.Task[None] | None = None

    def start_processor(self) -> None:
        """Run the ingest processor (idempotent)."""
        if self._processor is None:
            self._stop = asyncio.Event()
            bus, ctx = self.container.bus, self.container.ingest_context
            self._processor = asyncio.create_task(run_ingest_processor(bus, ctx, self._stop))

    async def stop_processor(self) -> None:
        """Stop the ingest processor after its current batch (idempotent)."""
        if self._processor is not None:
            self._stop.set()
            await self._processor
            self._processor = None

    @property
    def objects(self) -> ObjectStore:
        """The container's object store."""
        return self.container.objects

    async def post_parts(self, parts: list[bytes], **headers: str) -> httpx.Response:
        """A STOW-RS request of ``parts`` (application/dicom) to /studies."""
        body, boundary = multipart(parts)
        return await self.client.post(
            "/dicom-web/studies",
            content=body,
            headers={"Content-Type": STOW_TYPE.format(boundary), **headers},
        )

    async def store(self, path: Path, **headers: str) -> pydicom.Dataset:
        """Store one file; 200 expected unless ``headers`` ask to be answered early."""
        response = await self.post_parts([await asyncio.to_thread(path.read_bytes)], **headers)
        assert response.status_code in ((202,) if headers else (200,)), response.text
        return pydicom.dcmread(path, stop_before_pixels=True, force=True)


@asynccontextmanager
async def embedded_archive(
    data_dir: Path, *, processor: bool = True, **settings: object
) -> AsyncIterator[Archive]:
    """A started archive on embedded backends in ``data_dir``; everything closed after."""
    values: dict[str, object] = {"anonymize_secret": None, **settings}
    container = build_container(Settings(data_dir=data_dir, **values))  # type: ignore[arg-type]
    await container.start()
    app = create_app(container)
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://pacsflow") as client:
        archive = Archive(container, app, client)
        if processor:
            archive.start_processor()
        try:
            yield archive
        finally:
            await archive.stop_processor()
            await container.close()


def instance_url(ds: pydicom.Dataset) -> str:
    """The WADO-RS path of an instance, below the origin."""
    return (
        f"/dicom-web/studies/{ds.StudyInstanceUID}/series/{ds.SeriesInstanceUID}"
        f"/instances/{ds.SOPInstanceUID}"
    )
