"""An embedded archive in this process for the metadata STOW tests: ``create_app(container)``
over the embedded adapters, its ingest processor running, reached through httpx.ASGITransport.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

from pacsflow.config import Settings
from pacsflow.container import Container, build_container
from pacsflow.pipeline.records import DEAD_LETTER_TOPIC, DeadLetter
from services.app import create_app
from streams.runner import run_ingest_processor
from tests.support.capture import CaptureClient

ROOT = "http://pacsflow/dicom-web"


@dataclass
class Archive:
    """The running archive: its container (for its ports) and a capture client of its app."""

    container: Container
    client: CaptureClient
    http: httpx.AsyncClient

    async def keys(self, prefix: str = "") -> list[str]:
        """Every object store key under ``prefix``."""
        return [key async for key in self.container.objects.list(prefix)]

    async def dead_letters(self) -> list[DeadLetter]:
        """The records on the dead-letter topic so far."""
        subscription = await self.container.bus.subscribe(DEAD_LETTER_TOPIC, "test-dead-letters")
        try:
            messages = await subscription.fetch(100, 1.0)
        finally:
            await subscription.close()
        return [DeadLetter.from_bytes(m.value) for m in messages]


@asynccontextmanager
async def archive_in_process(tmp_path: Path, **settings: Any) -> AsyncIterator[Archive]:
    """Start the archive on embedded backends in ``tmp_path``; stop it afterwards."""
    container = build_container(Settings(data_dir=tmp_path, **settings))
    await container.start()
    stop = asyncio.Event()
    processor = asyncio.create_task(
        run_ingest_processor(container.bus, container.ingest_context, stop)
    )
    transport = httpx.ASGITransport(app=create_app(container))
    try:
        async with httpx.AsyncClient(transport=transport, base_url="http://pacsflow") as http:
            yield Archive(container, CaptureClient(http, ROOT), http)
    finally:
        stop.set()
        await processor
        await container.close()
