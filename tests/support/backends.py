"""A server's backends opened from a test with pacsflow's own adapters (its settings)."""

from __future__ import annotations

import asyncio
import time
import uuid

from pacsflow.config import Settings
from pacsflow.container import build_container
from pacsflow.pipeline.records import DEAD_LETTER_TOPIC, DeadLetter

__all__ = ["put_object", "read_dead_letters", "stored_object", "stored_object_keys"]


async def stored_object_keys(settings: Settings) -> list[str]:
    """Every key in the object store a server uses (opened with pacsflow's own adapter)."""
    container = build_container(settings)
    await container.objects.start()
    try:
        return [key async for key in container.objects.list("")]
    finally:
        await container.objects.close()


async def stored_object(settings: Settings, key: str, seconds: float = 90.0) -> bytes | None:
    """An object of a server's store once it exists (bounded wait: a processor makes it)."""
    container = build_container(settings)
    await container.objects.start()
    try:
        deadline = time.monotonic() + seconds
        while True:
            (found,) = await container.objects.get_many([key])
            if found is not None or time.monotonic() > deadline:
                return found
            await asyncio.sleep(0.5)
    finally:
        await container.objects.close()


async def put_object(settings: Settings, key: str, data: bytes) -> None:
    """Write an object into a server's store (opened with pacsflow's own adapter)."""
    container = build_container(settings)
    await container.objects.start()
    try:
        await container.objects.put(key, data)
    finally:
        await container.objects.close()


async def read_dead_letters(settings: Settings, expected: int) -> list[DeadLetter]:
    """The records on the dead-letter topic of a server's bus (bounded wait for ``expected``)."""
    container = build_container(settings)
    await container.bus.start()
    letters: list[DeadLetter] = []
    try:
        subscription = await container.bus.subscribe(DEAD_LETTER_TOPIC, f"test-{uuid.uuid4().hex}")
        deadline = time.monotonic() + 30
        while len(letters) < expected and time.monotonic() < deadline:
            letters += [DeadLetter.from_bytes(m.value) for m in await subscription.fetch(100, 1.0)]
        await subscription.close()
    finally:
        await container.bus.close()
    return letters
