"""The Faust worker of pipeline mode: the ingest agent on ``ingest``, the thumbnail agent on
``events``.

The agent is a short loop around ``streams.ingest.process_messages``, the same function the
embedded runner calls, one instance per partition (concurrency across partitions, order
within each), a batch at a time. Faust acknowledges a batch's events once the agent has
finished with it and commits acknowledged offsets, so a record is committed only after it
was stored and indexed (or dead-lettered): at-least-once, made safe by the idempotent ingest
step. The thumbnail agent hands batches of ingest outcomes to
``streams.thumbnails.make_thumbnails_of`` (best effort: a batch a backend failed is left to be
rendered on request).

With a ``health_port``, Faust's web server answers ``GET /health`` (liveness: the worker's
event loop serves) and ``GET /ready`` (readiness: the agent has started and the bus, the object
store and the index answer, as ``services.health`` does for the HTTP roles) and ``GET /metrics``
(``pacsflow.telemetry.metrics``); its router and table pages are off.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from typing import Any

import faust
from faust import web
from faust.transport.drivers import aiokafka as faust_aiokafka
from faust.types.auth import CredentialsT

from pacsflow.adapters.kafka_bus import KafkaSecurity
from pacsflow.container import Container
from pacsflow.errors import RETRY_AFTER, ServiceUnavailable
from pacsflow.pipeline.records import EVENTS_TOPIC, INGEST_GROUP, INGEST_TOPIC
from pacsflow.ports import Message
from pacsflow.telemetry import logs, metrics
from streams.ingest import process_messages
from streams.thumbnails import make_thumbnails_of

__all__ = ["create_faust_app"]

log = logging.getLogger(__name__)

BATCH = 64  # records per batch of one partition
BATCH_WAIT = 0.02  # seconds a partition's batch waits to fill
THUMBNAIL_BATCH = 64
THUMBNAIL_WITHIN = 1.0  # seconds: a batch of events is handled when full or this old


def _message(event: Any) -> Message:
    """The bus port's message of a Faust event."""
    record = event.message
    return Message(
        topic=record.topic,
        key=bytes(event.key or b""),
        value=bytes(event.value),
        partition=record.partition,
        offset=record.offset,
        headers=tuple((k, bytes(v)) for k, v in (record.headers or ())),
    )


def _raw_topic(app: faust.App, name: str) -> Any:
    """A topic of byte keys and values (the records are pacsflow's own JSON)."""
    return app.topic(
        name, key_type=bytes, value_type=bytes, key_serializer="raw", value_serializer="raw"
    )


def broker_credentials(security: KafkaSecurity | None) -> CredentialsT | None:
    """Faust's form of the Kafka clients' TLS and SASL options (``None``: plaintext)."""
    if security is None or security.protocol == "PLAINTEXT":
        return None
    context = security.ssl_context()
    if security.uses_sasl:
        return faust.SASLCredentials(
            username=security.sasl_username,
            password=security.sasl_password,
            ssl_context=context,
            mechanism=security.sasl_mechanism,
        )
    return faust.SSLCredentials(context)


def _transport_waiting(fetch_max_wait_ms: int) -> type[faust_aiokafka.Transport]:
    """Faust's aiokafka transport with the worker consumer's ``fetch_max_wait_ms`` set: Faust
    0.15 creates it with 1,500 ms and no setting (``AIOKafkaConsumerThread.
    _create_worker_consumer``); aiokafka 0.14 reads the value when the consumer starts."""

    class ConsumerThread(faust_aiokafka.AIOKafkaConsumerThread):
        def _create_worker_consumer(self, transport: Any) -> Any:
            consumer = super()._create_worker_consumer(transport)
            consumer._fetch_max_wait_ms = fetch_max_wait_ms
            return consumer

    class WaitingConsumer(faust_aiokafka.Consumer):
        def _new_consumer_thread(self) -> ConsumerThread:
            return ConsumerThread(self, loop=self.loop, beacon=self.beacon)

    class Transport(faust_aiokafka.Transport):
        Consumer = WaitingConsumer

    return Transport


def create_faust_app(
    broker: str,
    container_factory: Callable[[], Container],
    *,
    app_id: str = INGEST_GROUP,
    security: KafkaSecurity | None = None,
    health_port: int = 0,
    health_host: str = "127.0.0.1",
    session_timeout: float = 60.0,
    group_instance_id: str = "",
    fetch_max_wait_ms: int = 100,
) -> faust.App:
    """A Faust app whose agent ingests records; ``broker`` is ``kafka://host:port``.

    ``health_port`` (0: none) serves ``/health`` and ``/ready`` on ``health_host``.
    ``session_timeout`` (seconds; heartbeats every third of it, at most every 3 s) bounds how
    long a killed worker's partitions wait for the group to reassign them;
    ``group_instance_id`` (static membership, KIP-345) lets a restarted worker rejoin as itself.
    ``fetch_max_wait_ms`` bounds the ingest consumer's fetch wait (``pacsflow.adapters.kafka_bus``).
    """
    web_options: dict[str, Any] = (
        {
            "web_enabled": True,
            "web_port": health_port,
            "web_bind": health_host,
            "web_router_enabled": False,
            "web_tables_enabled": False,
        }
        if health_port
        else {"web_enabled": False}
    )
    app = faust.App(
        app_id,
        broker=broker,
        broker_credentials=broker_credentials(security),
        store="memory://",
        topic_allow_declare=False,  # pacsflow creates its topics with documented settings
        topic_disable_leader=True,
        broker_commit_every=1,
        consumer_auto_offset_reset="earliest",
        broker_session_timeout=session_timeout,
        broker_heartbeat_interval=min(3.0, session_timeout / 3),
        consumer_group_instance_id=group_instance_id or None,
        **web_options,
    )
    app.transport = _transport_waiting(fetch_max_wait_ms)(app.conf.broker_consumer, app)
    topic = _raw_topic(app, INGEST_TOPIC)
    started: dict[str, Container] = {}
    lock = asyncio.Lock()

    async def container() -> Container:
        async with lock:
            if "container" not in started:
                created = container_factory()
                await created.start(listen_for_outcomes=False)
                started["container"] = created
            return started["container"]

    @app.agent(topic, isolated_partitions=True)
    async def ingest(stream: Any) -> None:
        """Ingest a batch at a time; its events are acknowledged once the batch is processed.

        One agent instance per assigned partition (``isolated_partitions``): partitions are
        processed concurrently, each in order. A batch is what arrived within ``BATCH_WAIT``
        seconds, at most ``BATCH`` records: one group commit (``process_messages``).
        """
        deps = await container()
        async for events in stream.take_events(BATCH, within=BATCH_WAIT):
            messages = [_message(event) for event in events]
            await process_messages(messages, deps.ingest_context, deps.bus)

    @app.agent(_raw_topic(app, EVENTS_TOPIC))
    async def thumbnails(stream: Any) -> None:
        """Make the thumbnails of the series each batch of ingest outcomes stored."""
        deps = await container()
        async for batch in stream.take_events(THUMBNAIL_BATCH, within=THUMBNAIL_WITHIN):
            messages = [_message(event) for event in batch]
            try:
                await make_thumbnails_of(messages, deps.index, deps.objects)
            except ServiceUnavailable as exc:  # best effort: rendered on request instead
                log.warning("thumbnails of %d events skipped: %s", len(messages), exc)

    async def stop_container(sender: Any, *args: Any, **kwargs: Any) -> None:
        if "container" in started:
            await started.pop("container").close()

    if health_port:

        @app.page("/health")
        async def health(view: web.View, request: web.Request) -> web.Response:
            """Liveness: the worker's event loop serves (no backend is asked)."""
            return view.json({"status": "ok"})

        @app.page("/metrics")
        async def read_metrics(view: web.View, request: web.Request) -> web.Response:
            """The worker's metrics in the Prometheus text format (``pacsflow.telemetry``)."""
            # aiohttp takes the charset parameter only in the header itself
            return view.bytes(metrics.render(), headers={"Content-Type": metrics.CONTENT_TYPE})

        @app.page("/ready")
        async def ready(view: web.View, request: web.Request) -> web.Response:
            """Readiness: the agent started and the worker's backends answer; else 503."""
            deps = started.get("container")
            reasons = (
                await deps.check(("worker",))
                if deps is not None
                else {"agent": "the ingest agent has not started yet"}
            )
            if reasons:
                body = {"status": "unavailable", "roles": ["worker"], "reasons": reasons}
                return view.json(body, status=503, headers=dict(RETRY_AFTER))
            return view.json({"status": "ready", "roles": ["worker"]})

    app.on_before_shutdown.connect(stop_container)  # type: ignore[arg-type]
    return app


def run_faust_worker(
    app: faust.App, loglevel: str = "info", log_format: logs.LogFormat = "text"
) -> None:
    """Run the Faust worker in the foreground until SIGINT/SIGTERM (JSON logs: every record
    through ``pacsflow.telemetry.logs``)."""
    config = None
    if log_format == "json":
        factory = {"()": "pacsflow.telemetry.logs.handler", "log_format": "json"}
        root = {"handlers": ["json"], "level": loglevel.upper()}
        config = {"version": 1, "disable_existing_loggers": False, "handlers": {"json": factory}}
        config["root"] = root
    worker = faust.Worker(app, loglevel=loglevel, quiet=True, logging_config=config)
    worker.execute_from_commandline()
