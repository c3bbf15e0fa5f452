"""What only the embedded bus promises: its journal survives SIGKILL, and it can be pruned."""

from __future__ import annotations

import asyncio
import os
import signal
import sqlite3
import sys
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

import pacsflow
from pacsflow.adapters.embedded_bus import EmbeddedBus
from pacsflow.errors import BusUnavailable
from pacsflow.ports.bus import Message, Subscription

WAIT = 10.0

PUBLISHER = """
import asyncio, pathlib, sys
from pacsflow.adapters.embedded_bus import EmbeddedBus

async def main() -> None:
    bus = EmbeddedBus(pathlib.Path(sys.argv[1]))
    await bus.start()
    for n in range(1_000_000):
        await bus.publish("ingest", b"study", b"%d" % n, (("n", b"%d" % n),))
        print("published", n, flush=True)

asyncio.run(main())
"""


@pytest.fixture
async def bus(tmp_path: Path) -> AsyncIterator[EmbeddedBus]:
    """A started embedded bus with a single partition."""
    instance = EmbeddedBus(tmp_path / "bus.sqlite3")
    await instance.start()
    try:
        yield instance
    finally:
        await instance.close()


async def drain(sub: Subscription) -> list[Message]:
    """Every message the subscription has now; fails rather than loop on redeliveries."""
    got: list[Message] = []
    for _ in range(100):
        batch = await sub.fetch(max_messages=1000, timeout=0.2)
        if not batch:
            return got
        got += batch
    raise AssertionError(f"the subscription keeps delivering: {len(got)} messages so far")


async def test_every_returned_publish_survives_sigkill(tmp_path: Path) -> None:
    journal = tmp_path / "bus.sqlite3"
    root = str(Path(pacsflow.__file__).parent.parent)
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join(filter(None, [root, os.environ.get("PYTHONPATH")])),
    }
    child = await asyncio.create_subprocess_exec(
        sys.executable, "-c", PUBLISHER, str(journal), stdout=asyncio.subprocess.PIPE, env=env
    )
    assert child.stdout is not None
    acknowledged: list[int] = []
    try:
        while len(acknowledged) < 50:  # kill it mid-stream, while it keeps publishing
            line = await asyncio.wait_for(child.stdout.readline(), 60)
            assert line, "the publisher exited early"
            acknowledged.append(int(line.split()[1]))
    finally:
        child.send_signal(signal.SIGKILL)
        rest, _ = await asyncio.wait_for(child.communicate(), WAIT)
    acknowledged += [int(line.split()[1]) for line in rest.decode().splitlines()]
    assert child.returncode == -signal.SIGKILL

    survivor = EmbeddedBus(journal)
    await survivor.start()
    try:
        got = await drain(await survivor.subscribe("ingest", "audit"))
    finally:
        await survivor.close()

    numbers = [int(m.value) for m in got]
    assert numbers == list(range(len(numbers)))  # a prefix: nothing lost in the middle
    assert set(acknowledged) <= set(numbers)
    assert len(numbers) - len(acknowledged) <= 1  # at most the one in flight at the kill
    assert all(m.headers == (("n", m.value),) and m.offset == int(m.value) for m in got)


async def test_prune_drops_what_every_group_committed(bus: EmbeddedBus) -> None:
    await bus.publish_batch("ingest", [(b"k", b"%d" % i, ()) for i in range(10)])
    fast = await bus.subscribe("ingest", "fast")
    slow = await bus.subscribe("ingest", "slow")
    fast_got, slow_got = await drain(fast), await drain(slow)
    assert await bus.prune("ingest") == 0  # nobody committed yet

    await fast.commit(fast_got[:7])
    await slow.commit(slow_got[:3])
    assert await bus.prune("ingest") == 3
    assert await bus.prune("ingest") == 0
    late = await drain(await bus.subscribe("ingest", "late"))
    assert [m.offset for m in late] == list(range(3, 10))

    await fast.commit(fast_got)
    await slow.commit(slow_got)
    assert await bus.prune("ingest") == 7
    await bus.publish("ingest", b"k", b"10")  # offsets go on after everything was pruned
    fresh = await drain(await bus.subscribe("ingest", "fast"))
    assert [(m.offset, m.value) for m in fresh] == [(10, b"10")]


async def test_prune_keeps_partitions_a_group_never_committed(tmp_path: Path) -> None:
    bus = EmbeddedBus(tmp_path / "bus.sqlite3", partitions=4)
    await bus.start()
    try:
        await bus.publish_batch("ingest", [(b"key-%d" % i, b"", ()) for i in range(40)])
        one = await bus.subscribe("ingest", "one")
        got = await drain(one)
        await one.commit(got)
        only_first = [m for m in got if m.partition == got[0].partition]
        two = await bus.subscribe("ingest", "two")
        await two.commit(only_first)

        assert await bus.prune("ingest") == len(only_first)
        assert len(await drain(await bus.subscribe("ingest", "two"))) == 40 - len(only_first)
    finally:
        await bus.close()


async def test_failed_batch_leaves_nothing(bus: EmbeddedBus) -> None:
    sub = await bus.subscribe("ingest", "g")
    broken = [(b"k", b"0", ()), (b"k", None, ())]  # NOT NULL fails on the second row

    with pytest.raises(BusUnavailable):
        await bus.publish_batch("ingest", broken)  # type: ignore[arg-type]
    await bus.publish("ingest", b"k", b"after")

    assert [(m.offset, m.value) for m in await drain(sub)] == [(0, b"after")]


async def test_fetch_sees_a_publish_from_another_process(bus: EmbeddedBus, tmp_path: Path) -> None:
    other = EmbeddedBus(tmp_path / "bus.sqlite3")  # no shared wake-up: found by polling
    await other.start()
    try:
        sub = await bus.subscribe("ingest", "g")
        waiting = asyncio.create_task(sub.fetch(timeout=60))
        await other.publish("ingest", b"k", b"elsewhere")
        got = await asyncio.wait_for(waiting, WAIT)
    finally:
        await other.close()

    assert [m.value for m in got] == [b"elsewhere"]


async def test_journal_is_wal_and_headers_are_json(bus: EmbeddedBus, tmp_path: Path) -> None:
    await bus.publish("ingest", b"k", b"v", (("h", b"\x01"),))

    with sqlite3.connect(tmp_path / "bus.sqlite3") as conn:
        (mode,) = conn.execute("PRAGMA journal_mode").fetchone()
        (headers,) = conn.execute("SELECT headers FROM messages").fetchone()
    conn.close()

    assert mode == "wal"
    assert headers == '[["h", "AQ=="]]'


async def test_misuse_is_reported(bus: EmbeddedBus, tmp_path: Path) -> None:
    with pytest.raises(BusUnavailable, match="partitions"):
        await EmbeddedBus(tmp_path / "bus.sqlite3", partitions=2).start()
    with pytest.raises(BusUnavailable, match="not started"):
        await EmbeddedBus(tmp_path / "other.sqlite3").publish("ingest", b"k", b"v")
    sub = await bus.subscribe("ingest", "g")
    await sub.close()
    with pytest.raises(BusUnavailable, match="closed"):
        await sub.fetch(timeout=0)


async def test_commits_prune_the_journal(tmp_path: Path) -> None:
    """Retention: messages every group has committed are deleted as commits go by."""
    import sqlite3

    from pacsflow.adapters import embedded_bus

    bus = embedded_bus.EmbeddedBus(tmp_path / "bus.sqlite")
    await bus.start()
    try:
        subscription = await bus.subscribe("t", "g")
        for i in range(embedded_bus.PRUNE_EVERY_COMMITS):
            await bus.publish("t", b"k", str(i).encode())
            messages = await subscription.fetch(10, 1.0)
            await subscription.commit(messages)
        await subscription.close()
    finally:
        await bus.close()
    with sqlite3.connect(tmp_path / "bus.sqlite") as db:
        (left,) = db.execute("SELECT COUNT(*) FROM messages").fetchone()
    assert left == 0


async def test_topics_without_groups_keep_the_newest_messages(tmp_path: Path) -> None:
    """Retention of a topic read only from its end (events): a bounded journal."""
    from pacsflow.adapters import embedded_bus

    bus = embedded_bus.EmbeddedBus(tmp_path / "bus.sqlite", retain_messages=10)
    await bus.start()
    try:
        for i in range(embedded_bus.PRUNE_EVERY_COMMITS):
            await bus.publish("events", b"k", str(i).encode())
        reader = await bus.subscribe("events", "late-reader")
        values = [m.value for m in await reader.fetch(1000, 1.0)]
        await reader.close()
    finally:
        await bus.close()
    last = embedded_bus.PRUNE_EVERY_COMMITS
    assert values == [str(i).encode() for i in range(last - 10, last)]
