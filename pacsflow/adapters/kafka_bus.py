"""Kafka adapter of the bus port (pipeline mode), on aiokafka.

Choices, each for the port's contract (``pacsflow.ports.bus``):

* Producer: ``acks="all"`` and ``enable_idempotence=True`` (turn it off only for a broker that
  refuses InitProducerId v0, the only version aiokafka sends, such as Tansu); ``publish`` and
  ``publish_batch`` await the delivery future of every message, so they return only once the
  broker acknowledged all of them. The default partitioner (murmur2 of the key, as the Java
  client) keeps one key on one partition, and aiokafka keeps at most one request in flight per
  broker, so one key keeps its order even without idempotence. A batch is sent without
  transactions: consumers see it whole only while it fits one producer batch per partition.
* Topics: ``start`` creates ``ingest``, ``events`` and ``dead-letter``, and any other topic is
  created on its first publish or subscribe, with the configured partitions, replication factor,
  ``max.message.bytes`` and ``retention.ms``; an existing topic is left as it is.
* Consumer groups without a group join: a subscription assigns itself every partition of its
  topic and starts at the group's committed offsets (the beginning where the group never
  committed) or, for ``start="latest"``, at the end. It commits with the simple offset commit
  (generation -1) that Kafka accepts from consumers outside a group. Joins take tens of seconds
  on some brokers and would split the partitions between subscriptions of one group; here, as
  in the embedded adapter, every subscription reads every partition.
* Commits never move backwards: a subscription commits a partition only past the larger of what
  it committed and what the group had committed when it subscribed.
* ``max_message_bytes`` bounds the producer's requests and each partition's consumer fetch.
* ``fetch_max_wait_ms`` (100) bounds how long a fetch waits for records: Kafka answers as soon
  as one arrives, but some Kafka-protocol brokers (Tansu, measured) hold every fetch until then,
  which aiokafka's 500 ms default adds to each hop of a STOW that waits for its events.
* Every library error becomes ``BusUnavailable``; every call to the broker is bounded in time.
  A publish that failed once its records were handed to the producer is ``PublishUnconfirmed``
  (the broker may have appended them), unless the broker refused them outright.
* TLS and SASL (``KafkaSecurity``): the same options for the producer, the admin client and
  every consumer, and for the Faust worker (``streams.faust_app``).
* ``check`` fetches the metadata of ``ingest`` (bounded): a broker answered and the topic is
  there.
"""

from __future__ import annotations

import asyncio
import ssl
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Any, Literal, TypeVar

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer  # type: ignore[import-untyped]
from aiokafka.admin import AIOKafkaAdminClient, NewTopic  # type: ignore[import-untyped]
from aiokafka.errors import (  # type: ignore[import-untyped]
    BrokerResponseError,
    KafkaError,
    UnknownError,
)
from aiokafka.structs import OffsetAndMetadata, TopicPartition  # type: ignore[import-untyped]

from pacsflow.errors import BusUnavailable, PublishUnconfirmed
from pacsflow.pipeline.records import DEAD_LETTER_TOPIC, EVENTS_TOPIC, INGEST_TOPIC
from pacsflow.ports.bus import Headers, Message, Positions, StartPosition

__all__ = ["KafkaBus", "KafkaSecurity", "KafkaSubscription"]

_T = TypeVar("_T")
REQUEST_TIMEOUT_MS = 10_000
# Upper bound of one adapter call that talks to the broker (requests are retried within it).
CALL_TIMEOUT = 1.5 * REQUEST_TIMEOUT_MS / 1000
# Upper bound of ``check`` (one metadata request).
CHECK_TIMEOUT = 2.0
_NO_ERROR, _TOPIC_ALREADY_EXISTS = 0, 36
_ERRORS = (KafkaError, OSError, TimeoutError)


async def _bounded(what: str, work: Awaitable[_T], timeout: float = CALL_TIMEOUT) -> _T:
    """Await ``work`` for at most ``timeout`` seconds; wrap library errors in BusUnavailable."""
    try:
        return await asyncio.wait_for(work, timeout)
    except _ERRORS as exc:
        raise BusUnavailable(f"Kafka: {what} failed: {exc!r}") from exc


def _refused(error: BaseException | None) -> bool:
    """Whether a failed send was refused by the broker (nothing appended): a non-retriable
    broker error other than UnknownError. Timeouts, lost connections and unknown errors may
    come after the append."""
    return (
        isinstance(error, BrokerResponseError)
        and not error.retriable
        and not isinstance(error, UnknownError)
    )


SecurityProtocol = Literal["PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL"]
SaslMechanism = Literal["PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512"]


@dataclass(frozen=True, slots=True)
class KafkaSecurity:
    """How a client authenticates to the brokers and encrypts: Kafka's ``security.protocol``.

    ``SSL`` and ``SASL_SSL`` verify the brokers against ``ca_certs`` (a PEM bundle; the
    system's CA store when empty) and present ``cert_file``/``key_file`` when given (mutual
    TLS); ``SASL_*`` log in with ``sasl_mechanism`` as ``sasl_username``.
    """

    protocol: SecurityProtocol = "PLAINTEXT"
    ca_certs: str | None = None
    cert_file: str | None = None
    key_file: str | None = None
    sasl_mechanism: SaslMechanism = "PLAIN"
    sasl_username: str | None = None
    sasl_password: str | None = None

    @property
    def uses_tls(self) -> bool:
        """Whether connections are encrypted."""
        return self.protocol in ("SSL", "SASL_SSL")

    @property
    def uses_sasl(self) -> bool:
        """Whether clients log in."""
        return self.protocol.startswith("SASL_")

    def ssl_context(self) -> ssl.SSLContext | None:
        """A client TLS context that verifies the brokers, or ``None`` without TLS."""
        if not self.uses_tls:
            return None
        context = ssl.create_default_context(cafile=self.ca_certs or None)
        if self.cert_file:
            context.load_cert_chain(self.cert_file, self.key_file or None)
        return context

    def client_options(self) -> dict[str, Any]:
        """The keyword arguments of aiokafka's producer, consumer and admin client."""
        options: dict[str, Any] = {"security_protocol": self.protocol}
        if self.uses_tls:
            options["ssl_context"] = self.ssl_context()
        if self.uses_sasl:
            options |= {
                "sasl_mechanism": self.sasl_mechanism,
                "sasl_plain_username": self.sasl_username,
                "sasl_plain_password": self.sasl_password,
            }
        return options


class KafkaBus:
    """The bus port on a Kafka cluster; see the module docstring for the choices."""

    def __init__(
        self,
        bootstrap_servers: str,
        *,
        client_id: str = "pacsflow",
        partitions: int = 6,
        replication_factor: int = 1,
        max_message_bytes: int = 8 * 1024 * 1024,
        retention_ms: int | None = None,
        enable_idempotence: bool = True,
        security: KafkaSecurity | None = None,
        fetch_max_wait_ms: int = 100,
    ) -> None:
        if partitions < 1:
            raise ValueError(f"partitions must be at least 1, not {partitions}")
        self._servers = bootstrap_servers
        self._client_id = client_id
        self._partitions = partitions
        self._replication_factor = replication_factor
        self._max_message_bytes = max_message_bytes
        self._topic_config = {"max.message.bytes": str(max_message_bytes)}
        if retention_ms is not None:
            self._topic_config["retention.ms"] = str(retention_ms)
        self._idempotence = enable_idempotence
        self._fetch_max_wait_ms = fetch_max_wait_ms
        self._security = (security or KafkaSecurity()).client_options()
        self._producer: Any = None
        self._admin: Any = None
        self._topics: set[str] = set()
        self._subscriptions: set[KafkaSubscription] = set()
        self._probes: dict[str, Any] = {}  # group -> a consumer that only reads offsets
        self._lock = asyncio.Lock()

    async def start(self) -> None:
        """Connect and create the pipeline's topics (idempotent)."""
        async with self._lock:
            if self._producer is not None:
                return
            admin = AIOKafkaAdminClient(
                bootstrap_servers=self._servers,
                client_id=self._client_id,
                request_timeout_ms=REQUEST_TIMEOUT_MS,
                **self._security,
            )
            producer = AIOKafkaProducer(
                bootstrap_servers=self._servers,
                client_id=self._client_id,
                acks="all",
                enable_idempotence=self._idempotence,
                max_request_size=self._max_message_bytes,
                request_timeout_ms=REQUEST_TIMEOUT_MS,
                **self._security,
            )
            try:
                await _bounded("connecting the admin client", admin.start())
                await self._create_topics(admin, [INGEST_TOPIC, EVENTS_TOPIC, DEAD_LETTER_TOPIC])
                await _bounded("connecting the producer", producer.start())
            except BaseException:
                await _stop_quietly(producer.stop, admin.close)
                raise
            self._admin, self._producer = admin, producer

    async def close(self) -> None:
        """Close open subscriptions, flush the producer and disconnect (idempotent)."""
        async with self._lock:
            producer, admin = self._producer, self._admin
            self._producer = self._admin = None
            self._topics.clear()
            subscriptions, self._subscriptions = self._subscriptions, set()
            probes, self._probes = list(self._probes.values()), {}
        for subscription in subscriptions:
            await subscription.close()
        for probe in probes:
            await _stop_quietly(probe.stop, probe._client.close)
        if producer is not None:
            await _stop_quietly(producer.stop, admin.close)

    async def check(self) -> None:
        """Fetch the cluster's metadata from a broker (bounded)."""
        admin = self._admin
        if admin is None:
            raise BusUnavailable(f"the Kafka bus {self._servers} is not started")
        found = await _bounded(
            f"fetching the metadata of {INGEST_TOPIC}",
            admin.describe_topics([INGEST_TOPIC]),
            CHECK_TIMEOUT,
        )
        errors = [topic["error_code"] for topic in found if topic["error_code"] != _NO_ERROR]
        if errors or not found:
            raise BusUnavailable(f"Kafka: topic {INGEST_TOPIC} unavailable (error {errors})")

    async def _create_topics(self, admin: Any, topics: list[str]) -> None:
        """Create ``topics`` where missing; an existing topic is no error."""
        new = [
            NewTopic(
                name=name,
                num_partitions=self._partitions,
                replication_factor=self._replication_factor,
                topic_configs=self._topic_config,
            )
            for name in topics
        ]
        response = await _bounded("creating topics", admin.create_topics(new))
        for name, code, *message in response.topic_errors:
            if code not in (_NO_ERROR, _TOPIC_ALREADY_EXISTS):
                raise BusUnavailable(f"Kafka: cannot create topic {name}: {code} {message}")
        self._topics.update(topics)

    async def _ready(self, topic: str) -> Any:
        """The started producer, once ``topic`` exists."""
        producer, admin = self._producer, self._admin
        if producer is None:
            raise BusUnavailable(f"the Kafka bus {self._servers} is not started")
        if topic not in self._topics:
            await self._create_topics(admin, [topic])
        return producer

    async def publish(self, topic: str, key: bytes, value: bytes, headers: Headers = ()) -> None:
        """Append one message; return once the broker acknowledged it."""
        await self.publish_batch(topic, [(key, value, headers)])

    async def publish_batch(
        self, topic: str, items: Sequence[tuple[bytes, bytes, Headers]]
    ) -> None:
        """Append several messages; return once the broker acknowledged every one."""
        if not items:
            return
        producer = await self._ready(topic)

        async def deliver() -> None:
            futures = [
                await producer.send(topic, value, key=key, headers=list(headers))
                for key, value, headers in items
            ]
            # every answer retrieved (no "exception was never retrieved"), the first failure raised
            for outcome in await asyncio.gather(*futures, return_exceptions=True):
                if isinstance(outcome, BaseException):
                    raise outcome

        try:
            await _bounded(f"publishing to {topic}", deliver())
        except BusUnavailable as exc:
            if _refused(exc.__cause__):
                raise
            raise PublishUnconfirmed(str(exc)) from exc.__cause__

    async def subscribe(
        self,
        topic: str,
        group: str,
        *,
        start: StartPosition = "committed",
        partitions: Sequence[int] | None = None,
    ) -> KafkaSubscription:
        """Open a subscription of ``group`` to the partitions of ``topic`` (all by default)."""
        if start not in ("committed", "latest"):
            raise ValueError(f"unknown start position {start!r}")
        producer = await self._ready(topic)
        numbers = await _bounded(f"reading partitions of {topic}", producer.partitions_for(topic))
        wanted = set(numbers) if partitions is None else set(numbers) & set(partitions)
        chosen = [TopicPartition(topic, number) for number in sorted(wanted)]
        consumer = AIOKafkaConsumer(
            bootstrap_servers=self._servers,
            client_id=self._client_id,
            group_id=group,
            enable_auto_commit=False,
            auto_offset_reset="earliest",
            request_timeout_ms=REQUEST_TIMEOUT_MS,
            max_partition_fetch_bytes=self._max_message_bytes,
            fetch_max_bytes=max(self._max_message_bytes, 50 * 1024 * 1024),
            fetch_max_wait_ms=self._fetch_max_wait_ms,
            **self._security,
        )
        try:
            await _bounded("connecting a consumer", consumer.start())
            consumer.assign(chosen)
            committed = await _position(consumer, chosen, start)
        except BaseException:
            await _stop_quietly(consumer.stop, consumer._client.close)
            raise
        subscription = KafkaSubscription(self, consumer, topic, group, committed)
        self._subscriptions.add(subscription)
        return subscription

    async def positions(self, topic: str, group: str) -> Positions:
        """Per partition: ``group``'s committed offset (0 when none) and the end offset.

        Read by a consumer of ``group`` that is started but never assigned nor subscribed, so
        it never joins the group (no rebalance of the group's members).
        """
        producer = await self._ready(topic)
        numbers = await _bounded(f"reading partitions of {topic}", producer.partitions_for(topic))
        partitions = [TopicPartition(topic, number) for number in sorted(numbers)]
        probe = await self._probe(group)
        ends = await _bounded("reading end offsets", probe.end_offsets(partitions))
        committed = await _bounded(
            f"reading the offsets of {group}",
            asyncio.gather(*(probe.committed(tp) for tp in partitions)),
        )
        return {
            tp.partition: (int(done or 0), int(ends[tp]))
            for tp, done in zip(partitions, committed, strict=True)
        }

    async def _probe(self, group: str) -> Any:
        """The started offsets-only consumer of ``group``."""
        async with self._lock:
            if self._producer is None:
                raise BusUnavailable(f"the Kafka bus {self._servers} is not started")
            probe = self._probes.get(group)
            if probe is None:
                probe = AIOKafkaConsumer(
                    bootstrap_servers=self._servers,
                    client_id=self._client_id,
                    group_id=group,
                    enable_auto_commit=False,
                    request_timeout_ms=REQUEST_TIMEOUT_MS,
                    **self._security,
                )
                try:
                    await _bounded("connecting an offsets consumer", probe.start())
                except BaseException:
                    await _stop_quietly(probe.stop, probe._client.close)
                    raise
                self._probes[group] = probe
            return probe


async def _position(consumer: Any, partitions: list[Any], start: StartPosition) -> dict[int, int]:
    """Seek to the start position; return the group's committed offsets (none for latest)."""
    if start == "latest":
        if not await _bounded("seeking to the end", consumer.seek_to_end(*partitions)):
            raise BusUnavailable("Kafka: seeking to the end timed out")
        return {}
    found = await _bounded(
        "reading committed offsets",
        asyncio.gather(*(consumer.committed(tp) for tp in partitions)),
    )
    committed = {tp.partition: offset for tp, offset in zip(partitions, found, strict=True)}
    fresh = [tp for tp in partitions if committed[tp.partition] is None]
    for tp in partitions:
        if committed[tp.partition] is not None:
            consumer.seek(tp, committed[tp.partition])
    if fresh and not await _bounded("seeking to the beginning", consumer.seek_to_beginning(*fresh)):
        raise BusUnavailable("Kafka: seeking to the beginning timed out")
    return {p: int(offset) for p, offset in committed.items() if offset is not None}


async def _stop_quietly(*stops: Callable[[], Awaitable[Any]]) -> None:
    """Run clean-up calls in turn; their errors must not hide the one being handled."""
    for stop in stops:
        try:
            await asyncio.wait_for(stop(), CALL_TIMEOUT)
        except asyncio.CancelledError:
            # AIOKafkaConsumer.stop() can re-raise the cancellation of its own fetch tasks and
            # skip closing its client (aio-libs/aiokafka#647): only our own cancellation counts.
            task = asyncio.current_task()
            if task is not None and task.cancelling():
                raise
        except _ERRORS:
            continue


class KafkaSubscription:
    """One consumer on every partition of a topic, with the offsets of its group."""

    def __init__(
        self, bus: KafkaBus, consumer: Any, topic: str, group: str, committed: dict[int, int]
    ) -> None:
        self._bus = bus
        self._consumer = consumer
        self._topic = topic
        self._group = group
        self._partitions = {tp.partition: tp for tp in consumer.assignment()}
        self._committed = committed  # per partition: the largest offset known committed
        self._lock = asyncio.Lock()
        self._closed = False

    # ``timeout`` is the port's signature: how long to wait for a message, not a cancel scope.
    async def fetch(self, max_messages: int = 100, timeout: float = 1.0) -> list[Message]:
        """Wait up to ``timeout`` seconds for messages; return at most ``max_messages``."""
        if max_messages < 1:
            raise ValueError(f"max_messages must be at least 1, not {max_messages}")
        wait_ms = int(max(timeout, 0.0) * 1000)
        async with self._lock:
            if self._closed:
                raise BusUnavailable(f"the subscription of {self._group} is closed")
            batches = await _bounded(
                f"fetching from {self._topic}",
                self._consumer.getmany(timeout_ms=wait_ms, max_records=max_messages),
                wait_ms / 1000 + CALL_TIMEOUT,
            )
        return [
            Message(
                topic=record.topic,
                key=record.key or b"",
                value=record.value or b"",
                partition=record.partition,
                offset=record.offset,
                headers=tuple((name, value or b"") for name, value in record.headers),
            )
            for records in batches.values()
            for record in records
        ]

    async def commit(self, messages: Sequence[Message]) -> None:
        """Commit, per partition, the offset after the last of ``messages``; never backwards."""
        ends: dict[int, int] = {}
        for message in messages:
            if message.topic != self._topic or message.partition not in self._partitions:
                raise ValueError(f"{message.topic}/{message.partition} is not of this subscription")
            ends[message.partition] = max(ends.get(message.partition, 0), message.offset + 1)
        ahead = {p: end for p, end in ends.items() if end > self._committed.get(p, 0)}
        if not ahead:
            return
        if self._closed:
            raise BusUnavailable(f"the subscription of {self._group} is closed")
        offsets = {self._partitions[p]: OffsetAndMetadata(end, "") for p, end in ahead.items()}
        await _bounded(f"committing offsets of {self._group}", self._consumer.commit(offsets))
        for partition, end in ahead.items():
            self._committed[partition] = end
            tp = self._partitions[partition]
            if await _bounded("reading a position", self._consumer.position(tp)) < end:
                self._consumer.seek(tp, end)  # committed past what it fetched: skip ahead

    async def close(self) -> None:
        """Stop the consumer; uncommitted messages will be delivered again (idempotent)."""
        if self._closed:
            return
        self._closed = True
        self._bus._subscriptions.discard(self)
        await _stop_quietly(self._consumer.stop, self._consumer._client.close)  # see _stop_quietly
