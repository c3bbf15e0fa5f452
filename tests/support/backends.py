"""A server's backends opened from a test with pacsflow's own adapters (its settings)."""

from __future__ import annotations

import time
import uuid

from pacsflow.config import Settings
from pacsflow.container import build_container
from pacsflow.pipeline.records import DEAD_LETTER_TOPIC, DeadLetter

__all__ = ["read_dead_letters", "stored_object_keys"]


async def stored_object_keys(settings: Settings) -> list[str]:
    """Every key in the object store a server uses (opened with pacsflow's own adapter)."""
    container = build_container(settings)
    await container.objects.start()
    try:
        return [key async for key in container.objects.list("")]
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
