"""The Faust worker of pipeline mode: the ingest agent on the Kafka ``ingest`` topic.

The agent is a short loop around ``streams.ingest.process_message``, the same function the
embedded runner calls. Faust acknowledges an event once the agent has finished with it and
commits acknowledged offsets, so a record is committed only after it was stored and indexed
(or dead-lettered): at-least-once, made safe by the idempotent ingest step.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from typing import Any

import faust

from pacsflow.container import Container
from pacsflow.ports import Message
from pacsflow.records import INGEST_TOPIC
from streams.ingest import process_message

__all__ = ["create_faust_app"]

log = logging.getLogger(__name__)


def create_faust_app(
    broker: str, container_factory: Callable[[], Container], *, app_id: str = "pacsflow-ingest"
) -> faust.App:
    """A Faust app whose agent ingests records; ``broker`` is ``kafka://host:port``."""
    app = faust.App(
        app_id,
        broker=broker,
        store="memory://",
        topic_allow_declare=False,  # pacsflow creates its topics with documented settings
        topic_disable_leader=True,
        broker_commit_every=1,
        web_enabled=False,
        consumer_auto_offset_reset="earliest",
    )
    topic = app.topic(
        INGEST_TOPIC,
        key_type=bytes,
        value_type=bytes,
        key_serializer="raw",
        value_serializer="raw",
    )
    ready: dict[str, Container] = {}
    lock = asyncio.Lock()

    async def container() -> Container:
        async with lock:
            if "container" not in ready:
                started = container_factory()
                await started.start(listen_for_outcomes=False)
                ready["container"] = started
            return ready["container"]

    @app.agent(topic)
    async def ingest(stream: Any) -> None:
        """Ingest each record; the event is acknowledged when the loop moves on."""
        deps = await container()
        async for event in stream.events():
            record = event.message
            message = Message(
                topic=record.topic,
                key=bytes(event.key or b""),
                value=bytes(event.value),
                partition=record.partition,
                offset=record.offset,
                headers=tuple((k, bytes(v)) for k, v in (record.headers or ())),
            )
            staged = await process_message(message, deps.ingest_context, deps.bus)
            if staged is not None:  # safe before the commit: redelivery finds it indexed
                await deps.objects.delete(staged)

    async def stop_container(sender: Any, *args: Any, **kwargs: Any) -> None:
        if "container" in ready:
            await ready.pop("container").close()

    app.on_before_shutdown.connect(stop_container)  # type: ignore[arg-type]
    return app


def run_faust_worker(app: faust.App, loglevel: str = "info") -> None:
    """Run the Faust worker in the foreground until SIGINT/SIGTERM."""
    worker = faust.Worker(app, loglevel=loglevel, quiet=True)
    worker.execute_from_commandline()
