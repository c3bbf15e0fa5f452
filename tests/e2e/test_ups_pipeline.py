"""The Worklist Service in pipeline mode: two ``pacsflow ups`` replicas on Tansu and osmem.

* Performers racing to claim one SCHEDULED workitem through both replicas at once, many times:
  exactly one wins each race, every other gets 409 (optimistic concurrency on the workitem's
  document, ``pacsflow.adapters.es_workitems``).
* A subscriber connected to either replica receives every event, wherever it happened (the
  ``ups-events`` topic).
* Delivery across a replica restart: the replica the subscriber is connected to is stopped
  (SIGTERM) while events keep happening on the other, restarted, and the subscriber reconnects
  to it: every event arrives exactly once. After a crash (SIGKILL) none is lost.
* Bad input to a replica (on the Elasticsearch store): a 4xx naming the reason, with the
  Warning text of PS3.18 Chapter 11 where it gives one, and nothing applied.
"""

from __future__ import annotations

import asyncio
import contextlib
import signal
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest
import websockets

from tests.support.servers import Server, pipeline_env, start_server
from tests.support.ups_client import (
    GLOBAL,
    JSON,
    Event,
    complete,
    counts,
    create,
    event,
    open_channel,
    put_state,
    receive,
)
from tests.support.workitems import EVENT_TYPE, element, first, new_uid, state, workitem

RACES = 15
PERFORMERS = 8
STATE_INCONSISTENT = "The submitted request is inconsistent with the state of the UPS Instance."
UPDATE_INCONSISTENT = (
    "The submitted request is inconsistent with the current state of the Workitem."
)


@dataclass
class Replicas:
    """Two ``pacsflow ups`` processes of one deployment."""

    root: Path
    env: dict[str, str]
    a: Server
    b: Server

    def restart_a(self, sig: int) -> None:
        self.a.stop(sig)
        self.a = start_server(self.root / "a", self.env, command="ups")


@pytest.fixture
def replicas(
    tmp_path: Path, kafka_bootstrap: str, s3_endpoint: str, es_url: str
) -> Iterator[Replicas]:
    env = pipeline_env(kafka_bootstrap, s3_endpoint, es_url, f"ups-{uuid.uuid4().hex[:8]}")
    a = start_server(tmp_path / "a", env, command="ups")
    b = start_server(tmp_path / "b", env, command="ups")
    deployment = Replicas(tmp_path, env, a, b)
    try:
        yield deployment
    finally:
        deployment.a.stop()
        deployment.b.stop()


async def test_replicas_racing_to_claim_one_workitem_one_wins(replicas: Replicas) -> None:
    urls = [replicas.a.url, replicas.b.url]
    async with httpx.AsyncClient(timeout=60) as client:
        assert (
            await client.get(f"{replicas.a.url.removesuffix('/dicom-web')}/ready")
        ).status_code == 200
        for race in range(RACES):
            uid = await create(client, urls[race % 2])
            owners = [new_uid() for _ in range(PERFORMERS)]

            def claim(owner: str, url: str, uid: str = uid) -> int:
                with httpx.Client(timeout=60) as one:
                    body = orjson.dumps(state("IN PROGRESS", owner))
                    return one.put(
                        f"{url}/workitems/{uid}/state", content=body, headers=JSON
                    ).status_code

            claims = [asyncio.to_thread(claim, o, urls[n % 2]) for n, o in enumerate(owners)]
            statuses = await asyncio.gather(*claims)
            assert sorted(statuses) == [200] + [409] * (PERFORMERS - 1), (race, statuses)
            winner = owners[statuses.index(200)]
            other = urls[(statuses.index(200) + 1) % 2]  # the owner goes on through the other one
            assert await put_state(client, other, uid, "CANCELED", winner) == 200


async def expect(channel: object, events: list[Event]) -> None:
    """The channel brings exactly these events (in any order across workitems)."""
    got = [event(r) for r in await receive(channel, len(events))]
    assert counts(got) == counts(events)
    for uid in {e[1] for e in events}:  # in order within each workitem
        assert [e for e in got if e[1] == uid] == [e for e in events if e[1] == uid]


def lifecycle(uid: str) -> list[Event]:
    return [(1, uid, "SCHEDULED"), (1, uid, "IN PROGRESS"), (1, uid, "COMPLETED")]


async def drain(channel: Any, into: list[Event]) -> None:
    """Collect events until the server closes the channel."""
    with contextlib.suppress(websockets.ConnectionClosed):
        while True:
            report = orjson.loads(await channel.recv())
            if first(report, EVENT_TYPE) != 4:
                into.append(event(report))


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGKILL], ids=["sigterm", "sigkill"])
async def test_no_event_is_lost_or_repeated_across_a_replica_restart(
    replicas: Replicas, sig: int
) -> None:
    """Events keep coming through B while A, holding the subscriber's channel, restarts."""
    async with httpx.AsyncClient(timeout=60) as client:
        subscribed = await client.post(f"{replicas.b.url}/workitems/{GLOBAL}/subscribers/VIEWER")
        assert subscribed.status_code == 201
        channel = await open_channel(replicas.a.url, "VIEWER")
        before = [await create(client, replicas.b.url) for _ in range(3)]
        for uid in before:
            await complete(client, replicas.b.url, uid)
        await expect(channel, [e for uid in before for e in lifecycle(uid)])  # from B via A

        received: list[Event] = []
        drainer = asyncio.create_task(drain(channel, received))
        restart: asyncio.Task[None] | None = None
        during = []
        for n in range(8):
            if n == 3:  # mid-stream: A stops while it is delivering
                restart = asyncio.create_task(asyncio.to_thread(replicas.restart_a, sig))
            during.append(await create(client, replicas.b.url))
            await complete(client, replicas.b.url, during[-1])
        assert restart is not None
        await restart
        await drainer  # A closed (or lost) the connection

        channel = await open_channel(replicas.a.url, "VIEWER")  # the new A
        after = await create(client, replicas.a.url)
        wanted = [e for uid in during for e in lifecycle(uid)] + [(1, after, "SCHEDULED")]
        got = received + [event(r) for r in await receive(channel, len(wanted) - len(received))]
        if sig == signal.SIGTERM:  # exactly once
            assert counts(got) == counts(wanted), (
                counts(got) - counts(wanted),
                counts(wanted) - counts(got),
            )
        else:  # at least once: only what was being written when A died may come again
            while set(wanted) - set(got):
                got += [event(r) for r in await receive(channel, 1)]
            assert len(got) - len(wanted) <= 1, counts(got) - counts(wanted)
        for uid in during:  # in order within each workitem
            assert [e for e in got if e[1] == uid][:3] == lifecycle(uid)
        await channel.close()


async def test_bad_input_gets_a_4xx_with_the_reason_and_changes_nothing(
    replicas: Replicas,
) -> None:
    """Malformed JSON, a wrong VR, a missing required attribute, unknown UIDs, an oversized or
    mistyped body, an illegal transition, an AE title that is none: never a 5xx."""
    url = replicas.a.url
    text = {"content-type": "text/plain"}
    async with httpx.AsyncClient(timeout=60) as client:
        uid = await create(client, url)
        before = (await client.get(f"{url}/workitems/{uid}")).json()
        unknown = new_uid()
        label_missing = {k: v for k, v in workitem().items() if k != "00741204"}
        oversized = {**workitem(), "00400400": element("LT", "x" * (2 << 20))}  # limit: 1 MiB
        cases: list[tuple[str, str, bytes | None, dict[str, str], int, str, str | None]] = [
            (
                "POST",
                f"/workitems?workitem={new_uid()}",
                b"{nope",
                JSON,
                400,
                "not valid JSON",
                None,
            ),
            (
                "POST",
                f"/workitems?workitem={new_uid()}",
                orjson.dumps({**workitem(), "00741000": element("UI", "1.2")}),
                JSON,
                400,
                "the VR is CS",
                None,
            ),
            (
                "POST",
                f"/workitems?workitem={new_uid()}",
                orjson.dumps(label_missing),
                JSON,
                400,
                "ProcedureStepLabel",
                None,
            ),
            ("POST", f"/workitems?workitem={uid}", orjson.dumps(workitem()), JSON, 409, "", None),
            (
                "POST",
                f"/workitems?workitem={new_uid()}",
                orjson.dumps(oversized),
                JSON,
                413,
                "",
                None,
            ),
            ("POST", f"/workitems?workitem={new_uid()}", b"{}", text, 415, "", None),
            ("GET", f"/workitems/{unknown}", None, {}, 404, "", None),
            (
                "PUT",
                f"/workitems/{unknown}/state",
                orjson.dumps(state("IN PROGRESS", new_uid())),
                JSON,
                404,
                "",
                None,
            ),
            (
                "PUT",
                f"/workitems/{uid}/state",
                orjson.dumps(state("COMPLETED", new_uid())),
                JSON,
                409,
                "",
                STATE_INCONSISTENT,
            ),
            (
                "POST",
                f"/workitems/{uid}?transaction={new_uid()}",
                orjson.dumps({"00741202": element("LO", "changed")}),
                JSON,
                409,
                "",
                UPDATE_INCONSISTENT,
            ),
            ("POST", f"/workitems/{unknown}/subscribers/WATCHER", None, {}, 404, "", None),
            ("POST", f"/workitems/{uid}/subscribers/{'A' * 17}", None, {}, 400, "", None),
        ]
        for method, path, body, headers, status, reason, warning in cases:
            response = await client.request(method, f"{url}{path}", content=body, headers=headers)
            where = (method, path, response.status_code, response.text[:300])
            assert response.status_code == status, where
            message = response.json()["message"]
            assert message and reason in message, where
            if warning is not None:
                assert warning in response.headers["warning"], where
        after = await client.get(f"{url}/workitems/{uid}")
        assert after.status_code == 200 and after.json() == before
