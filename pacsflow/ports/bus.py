"""The bus port: a durable, partitioned, at-least-once log (Kafka semantics).

Adapters: the embedded SQLite journal (``pacsflow.adapters.embedded_bus``) and, in pipeline
mode, Kafka. The contract (``tests/contract/test_bus.py``) holds for both:

* ``publish``/``publish_batch`` return only once every message is durable; a message that was
  acknowledged survives a crash of the process.
* Messages with the same key keep their order (one key, one partition).
* ``publish_batch`` makes all of its messages durable before it returns; consumers of the
  embedded adapter see the batch whole (a Kafka adapter without transactions may not).
* A group that never committed starts at the beginning of the topic (Kafka adapters must set
  ``auto_offset_reset="earliest"``), so nothing published before the first subscribe is lost.
* A subscription with a consumer ``group`` starts after the group's last committed offset;
  messages fetched but not committed are delivered again to the next subscription of the group
  (at-least-once). ``start="latest"`` subscribes to what is published from now on only.
* ``positions`` tells, per partition of a topic, the offset a group committed and the end of
  the partition (the offset the next message will get): a group whose committed offsets have
  reached the ends seen at some moment has processed everything published before it.
* A publish that fails may still have appended its messages when the failure came after they
  were sent (a timeout, a lost answer): adapters raise ``PublishUnconfirmed`` then, and
  ``BusUnavailable`` only when nothing reached the log. Sending the same messages again is
  safe (consumers are idempotent) and is how a caller confirms an unconfirmed publish.
* ``check`` returns within a few seconds: quietly while the log answers, with
  ``BusUnavailable`` otherwise.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Literal, Protocol

__all__ = ["Bus", "Headers", "Message", "Positions", "StartPosition", "Subscription"]

Headers = tuple[tuple[str, bytes], ...]
StartPosition = Literal["committed", "latest"]
Positions = dict[int, tuple[int, int]]
"""Per partition: (the group's committed offset, 0 when none; the end offset)."""


@dataclass(frozen=True, slots=True)
class Message:
    """One record of a topic, as delivered to a consumer."""

    topic: str
    key: bytes
    value: bytes
    partition: int
    offset: int
    headers: Headers = field(default=())


class Subscription(Protocol):
    """A consumer's view of one topic for one consumer group."""

    async def fetch(self, max_messages: int = 100, timeout: float = 1.0) -> list[Message]:
        """Wait up to ``timeout`` seconds for messages; return at most ``max_messages``."""
        ...

    async def commit(self, messages: Sequence[Message]) -> None:
        """Mark ``messages`` (and everything before them in their partitions) processed."""
        ...

    async def close(self) -> None:
        """Release the subscription; uncommitted messages will be delivered again."""
        ...


class Bus(Protocol):
    """A log of topics; see the module docstring for the contract."""

    async def start(self) -> None:
        """Connect and create what is missing (idempotent)."""
        ...

    async def close(self) -> None:
        """Flush and disconnect."""
        ...

    async def check(self) -> None:
        """Ask the log whether it answers (a cheap call, bounded in time); readiness probes.

        Raises ``BusUnavailable`` when it does not, or when the bus is not started.
        """
        ...

    async def publish(self, topic: str, key: bytes, value: bytes, headers: Headers = ()) -> None:
        """Append one message; return once it is durable."""
        ...

    async def publish_batch(
        self, topic: str, items: Sequence[tuple[bytes, bytes, Headers]]
    ) -> None:
        """Append several messages ``(key, value, headers)``; return once all are durable."""
        ...

    async def subscribe(
        self,
        topic: str,
        group: str,
        *,
        start: StartPosition = "committed",
        partitions: Sequence[int] | None = None,
    ) -> Subscription:
        """Open a subscription of ``group`` to ``topic`` (to some of its ``partitions``)."""
        ...

    async def positions(self, topic: str, group: str) -> Positions:
        """Per partition of ``topic``: ``group``'s committed offset and the end offset."""
        ...
