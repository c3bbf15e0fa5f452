"""The app on a real uvicorn socket on loopback, in the test's own event loop.

The server runs as a task of the test's own event loop, so the test can also reach the
container it serves (the adapters are bound to that loop); HTTP goes through httpx and the
event channel through the ``websockets`` client, both over real sockets.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import uvicorn

from pacsflow.config import Settings
from pacsflow.container import Container, build_container
from services.app import create_app
from services.limits import timed_protocol
from tests.support.servers import free_port

__all__ = ["Running", "serve", "worklist"]

STARTUP_SECONDS = 30.0


@dataclass
class Running:
    """A started app: its container, its DICOMweb root and an HTTP client for it."""

    container: Container
    url: str
    client: httpx.AsyncClient

    @property
    def ws_url(self) -> str:
        return "ws" + self.url.removeprefix("http")


async def serve(container: Container, roles: tuple[str, ...]) -> AsyncIterator[Running]:
    """Serve ``container`` on a free loopback port until the caller is done, with the HTTP
    timeouts of its settings (``services.limits``), as ``pacsflow serve`` does."""
    port = free_port()
    settings = container.settings
    config = uvicorn.Config(
        create_app(container, roles),
        host="127.0.0.1",
        port=port,
        log_level="warning",
        lifespan="off",
        timeout_graceful_shutdown=10,
        http=timed_protocol(
            settings.http_header_timeout_seconds, settings.http_send_timeout_seconds
        ),
    )
    server = uvicorn.Server(config)
    task = asyncio.create_task(server.serve())
    async with asyncio.timeout(STARTUP_SECONDS):
        while not server.started:
            if task.done():
                task.result()
            await asyncio.sleep(0.01)
    url = f"http://127.0.0.1:{port}/dicom-web"
    try:
        async with httpx.AsyncClient(timeout=30) as client:
            yield Running(container, url, client)
    finally:
        server.should_exit = True
        await task


async def worklist(tmp_path: Path, **settings: object) -> AsyncIterator[Running]:
    """The Worklist Service on embedded backends in ``tmp_path``, served on loopback."""
    container = build_container(Settings(data_dir=tmp_path, **settings))  # type: ignore[arg-type]
    await container.start(listen_for_outcomes=False)
    try:
        async for running in serve(container, ("ups",)):
            yield running
    finally:
        await container.close()
