"""Subscriptions and the WebSocket event channel (PS3.18 11.10-11.12, 8.10), races, retention.

A real ``websockets`` client on the app served by uvicorn on loopback (embedded backends: one
partition, so the channel's order is the order events happened). Waits are bounded; nothing
asserts on elapsed time.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest
import websockets

from tests.support.serving import Running, worklist
from tests.support.workitems import (
    AFFECTED_UID,
    EVENT_TYPE,
    element,
    first,
    new_uid,
    performed,
    state,
    workitem,
)

JSON = {"content-type": "application/dicom+json"}
GLOBAL = "1.2.840.10008.5.1.4.34.5"
FILTERED = "1.2.840.10008.5.1.4.34.5.1"
WAIT = 30.0  # bound of one receive; a test that waits this long has failed
JsonDict = dict[str, Any]


async def create(ups: Running, dataset: JsonDict | None = None) -> str:
    uid = new_uid()
    response = await ups.client.post(
        f"{ups.url}/workitems?workitem={uid}",
        content=orjson.dumps(dataset or workitem()),
        headers=JSON,
    )
    assert response.status_code == 201, response.text
    return uid


async def put_state(ups: Running, uid: str, value: str, owner: str) -> httpx.Response:
    return await ups.client.put(
        f"{ups.url}/workitems/{uid}/state", content=orjson.dumps(state(value, owner)), headers=JSON
    )


async def subscribe(ups: Running, target: str, ae: str, query: str = "") -> httpx.Response:
    response = await ups.client.post(f"{ups.url}/workitems/{target}/subscribers/{ae}{query}")
    return response


async def receive(channel: Any, count: int = 1) -> list[JsonDict]:
    """The next ``count`` event reports (bounded wait)."""
    return [orjson.loads(await asyncio.wait_for(channel.recv(), WAIT)) for _ in range(count)]


def summary(report: JsonDict) -> tuple[int, str, str | None]:
    """(event type, workitem, state) of a report."""
    return first(report, EVENT_TYPE), first(report, AFFECTED_UID), first(report, "00741000")


async def test_subscribe_answers_the_channel_url_and_sends_the_initial_state(ups: Running) -> None:
    uid = await create(ups)
    response = await subscribe(ups, uid, "WATCHER")
    assert response.status_code == 201
    assert response.headers["content-location"] == f"{ups.ws_url}/subscribers/WATCHER"
    async with websockets.connect(response.headers["content-location"]) as channel:
        (report,) = await receive(channel)
        assert summary(report) == (1, uid, "SCHEDULED")
        assert first(report, "00000002") == "1.2.840.10008.5.1.4.34.6.1"
        owner = new_uid()
        assert (await put_state(ups, uid, "IN PROGRESS", owner)).status_code == 200
        assert [summary(r) for r in await receive(channel)] == [(1, uid, "IN PROGRESS")]
        update = orjson.dumps(
            {"00741002": element("SQ", {"00741004": element("DS", 40)}), **performed()}
        )
        await ups.client.post(
            f"{ups.url}/workitems/{uid}?transaction={owner}", content=update, headers=JSON
        )
        (progress,) = await receive(channel)
        assert (
            first(progress, EVENT_TYPE) == 3
            and first(first(progress, "00741002"), "00741004") == 40
        )
        assert (await put_state(ups, uid, "COMPLETED", owner)).status_code == 200
        assert [summary(r) for r in await receive(channel)] == [(1, uid, "COMPLETED")]


async def test_a_global_subscription_covers_workitems_created_later(ups: Running) -> None:
    before = await create(ups)
    assert (await subscribe(ups, GLOBAL, "ALL", "?deletionlock=true")).status_code == 201
    async with websockets.connect(f"{ups.ws_url}/subscribers/ALL") as channel:
        assert [summary(r) for r in await receive(channel)] == [(1, before, "SCHEDULED")]
        station = {
            "00404025": element(
                "SQ",
                {
                    "00080100": element("SH", "AI-1"),
                    "00080102": element("SH", "99X"),
                    "00080104": element("LO", "AI"),
                },
            )
        }
        later = await create(ups, workitem(**station))
        created = await receive(channel, 2)
        assert [summary(r) for r in created] == [(1, later, "SCHEDULED"), (5, later, None)]
        assert (
            await ups.client.post(f"{ups.url}/workitems/{GLOBAL}/subscribers/ALL/suspend")
        ).status_code == 200
        quiet = await create(ups)  # not subscribed: suspended
        assert (await put_state(ups, later, "IN PROGRESS", new_uid())).status_code == 200
        assert [summary(r) for r in await receive(channel)] == [(1, later, "IN PROGRESS")]
    unsubscribed = await ups.client.delete(f"{ups.url}/workitems/{GLOBAL}/subscribers/ALL")
    assert unsubscribed.status_code == 200
    assert (
        await ups.client.delete(f"{ups.url}/workitems/{GLOBAL}/subscribers/ALL")
    ).status_code == 404
    assert (
        await ups.client.delete(f"{ups.url}/workitems/{quiet}/subscribers/ALL")
    ).status_code == 404
    assert await ups.container.workitems.subscriber_aes(ups.container.settings.site) == set()  # type: ignore[union-attr]


async def test_a_filtered_subscription_covers_matching_workitems_only(ups: Running) -> None:
    lung = await create(ups)
    liver = await create(ups, workitem(**{"00741204": element("LO", "Liver volume")}))
    response = await subscribe(
        ups, FILTERED, "LUNGS", "?deletionlock=true&filter=ProcedureStepLabel=Lung*"
    )
    assert response.status_code == 201, response.text
    async with websockets.connect(f"{ups.ws_url}/subscribers/LUNGS") as channel:
        assert [summary(r) for r in await receive(channel)] == [(1, lung, "SCHEDULED")]
        await create(ups, workitem(**{"00741204": element("LO", "Liver fat")}))
        new_lung = await create(ups, workitem(**{"00741204": element("LO", "Lung perfusion")}))
        assert [summary(r) for r in await receive(channel)] == [(1, new_lung, "SCHEDULED")]
    assert liver  # never reported
    bad = await subscribe(ups, FILTERED, "LUNGS", "?filter=NotAnAttribute=1")
    assert bad.status_code == 400
    none = await subscribe(ups, FILTERED, "LUNGS")
    assert none.status_code == 400 and "needs a filter" in none.json()["message"]


async def test_subscription_errors(ups: Running) -> None:
    uid = await create(ups)
    assert (await subscribe(ups, new_uid(), "WATCHER")).status_code == 404
    assert (await subscribe(ups, uid, "TOO-LONG-AE-TITLE-X")).status_code == 400
    assert (await subscribe(ups, uid, "WATCHER", "?deletionlock=maybe")).status_code == 400
    assert (
        await ups.client.post(f"{ups.url}/workitems/{GLOBAL}/subscribers/NOBODY/suspend")
    ).status_code == 404
    assert (
        await ups.client.post(f"{ups.url}/workitems/{uid}/subscribers/WATCHER/suspend")
    ).status_code == 400
    assert (
        await ups.client.delete(f"{ups.url}/workitems/{uid}/subscribers/WATCHER")
    ).status_code == 404


async def test_cancel_requests_reach_the_performer(ups: Running) -> None:
    uid = await create(ups)
    assert (await subscribe(ups, uid, "PERFORMER")).status_code == 201
    async with websockets.connect(f"{ups.ws_url}/subscribers/PERFORMER") as channel:
        await receive(channel)
        owner = new_uid()
        assert (await put_state(ups, uid, "IN PROGRESS", owner)).status_code == 200
        await receive(channel)
        request = orjson.dumps(
            {"00741238": element("LT", "wrong side"), "0074100C": element("LO", "Dr Doe")}
        )
        asked = await ups.client.post(
            f"{ups.url}/workitems/{uid}/cancelrequest?requester=RIS", content=request, headers=JSON
        )
        assert asked.status_code == 202
        (cancel,) = await receive(channel)
        assert first(cancel, EVENT_TYPE) == 2 and first(cancel, "00741236") == "RIS"
        assert first(cancel, "00741238") == "wrong side" and first(cancel, "0074100C") == "Dr Doe"
        assert (await put_state(ups, uid, "CANCELED", owner)).status_code == 200
        (canceled,) = await receive(channel)
        assert summary(canceled) == (1, uid, "CANCELED")


async def test_a_reconnecting_subscriber_gets_what_it_missed_once(ups: Running) -> None:
    uid = await create(ups)
    assert (await subscribe(ups, uid, "FLAKY")).status_code == 201
    async with websockets.connect(f"{ups.ws_url}/subscribers/FLAKY") as channel:
        assert len(await receive(channel)) == 1
    owner = new_uid()
    assert (await put_state(ups, uid, "IN PROGRESS", owner)).status_code == 200  # while away
    async with websockets.connect(f"{ups.ws_url}/subscribers/FLAKY") as channel:
        assert [summary(r) for r in await receive(channel)] == [(1, uid, "IN PROGRESS")]
        assert (await put_state(ups, uid, "CANCELED", owner)).status_code == 200
        assert [summary(r) for r in await receive(channel)] == [(1, uid, "CANCELED")]


async def test_a_new_channel_of_the_same_ae_title_replaces_the_old(ups: Running) -> None:
    first_url = second_url = f"{ups.ws_url}/subscribers/TWICE"
    async with websockets.connect(first_url) as old, websockets.connect(second_url) as new:
        with pytest.raises(websockets.ConnectionClosed) as closed:
            await asyncio.wait_for(old.recv(), WAIT)
        assert closed.value.rcvd is not None and closed.value.rcvd.code == 4000
        uid = await create(ups)
        assert (await subscribe(ups, uid, "TWICE")).status_code == 201
        assert [summary(r) for r in await receive(new)] == [(1, uid, "SCHEDULED")]


async def test_an_invalid_ae_title_closes_the_channel(ups: Running) -> None:
    with pytest.raises(websockets.InvalidStatus):
        async with websockets.connect(f"{ups.ws_url}/subscribers/{'X' * 17}"):
            pass


@pytest.mark.parametrize("round_", range(25))
async def test_performers_racing_to_claim_one_workitem_one_wins(ups: Running, round_: int) -> None:
    """Eight threads, each with its own connection and Transaction UID, claim at once."""
    uid = await create(ups)
    owners = [new_uid() for _ in range(8)]

    def claim(owner: str) -> int:
        with httpx.Client(timeout=30) as client:
            body = orjson.dumps(state("IN PROGRESS", owner))
            return client.put(
                f"{ups.url}/workitems/{uid}/state", content=body, headers=JSON
            ).status_code

    statuses = await asyncio.gather(*(asyncio.to_thread(claim, owner) for owner in owners))
    assert sorted(statuses) == [200] + [409] * 7, statuses
    winner = owners[statuses.index(200)]
    assert (await put_state(ups, uid, "CANCELED", winner)).status_code == 200


@pytest.fixture
async def short_retention(tmp_path: Path) -> AsyncIterator[Running]:
    """Final workitems are deleted at the first sweep."""
    async for running in worklist(tmp_path, ups_retention_seconds=0):
        yield running


async def test_retention_deletes_final_workitems_unless_locked(short_retention: Running) -> None:
    ups = short_retention
    locked, free, open_ = await create(ups), await create(ups), await create(ups)
    assert (await subscribe(ups, locked, "KEEPER", "?deletionlock=true")).status_code == 201
    for uid in (locked, free):
        assert (
            await ups.client.post(f"{ups.url}/workitems/{uid}/cancelrequest")
        ).status_code == 202
    assert await ups.container.ups.upkeep.sweep() == 1
    assert (await ups.client.get(f"{ups.url}/workitems/{free}")).status_code == 410
    assert (await ups.client.get(f"{ups.url}/workitems/{locked}")).status_code == 200
    assert (await ups.client.get(f"{ups.url}/workitems/{open_}")).status_code == 200
    again = await ups.client.post(
        f"{ups.url}/workitems?workitem={free}", content=orjson.dumps(workitem()), headers=JSON
    )
    assert again.status_code == 409
    assert (
        await ups.client.delete(f"{ups.url}/workitems/{locked}/subscribers/KEEPER")
    ).status_code == 200
    assert await ups.container.ups.upkeep.sweep() == 1
    assert (await ups.client.get(f"{ups.url}/workitems/{locked}")).status_code == 410


async def test_events_survive_a_bus_outage_through_the_relay(ups: Running) -> None:
    uid = await create(ups)
    assert (await subscribe(ups, uid, "PATIENT")).status_code == 201
    bus = ups.container.bus
    await bus.close()  # a real outage of the embedded log: publishing fails
    owner = new_uid()
    assert (await put_state(ups, uid, "IN PROGRESS", owner)).status_code == 200  # stored anyway
    stored = await ups.container.workitems.get(ups.container.settings.site, uid)  # type: ignore[union-attr]
    assert stored is not None and len(stored.outbox) == 1  # the claim's State Report, kept
    await bus.start()
    outbox = ups.container.ups.at(ups.container.settings.site).workitems.outbox
    relayed = await outbox.relay(outbox.clock() + 1)
    assert relayed == 1
    async with websockets.connect(f"{ups.ws_url}/subscribers/PATIENT") as channel:
        assert [summary(r) for r in await receive(channel, 2)] == [
            (1, uid, "SCHEDULED"),
            (1, uid, "IN PROGRESS"),
        ]
        assert (await put_state(ups, uid, "CANCELED", owner)).status_code == 200
        assert [summary(r) for r in await receive(channel)] == [(1, uid, "CANCELED")]


async def test_scp_status_changes_go_to_every_subscriber(ups: Running) -> None:
    uid = await create(ups)
    await subscribe(ups, uid, "ONE")
    await subscribe(ups, GLOBAL, "TWO")
    upkeep = ups.container.ups.upkeep
    async with websockets.connect(f"{ups.ws_url}/subscribers/TWO") as channel:
        await upkeep.announce("GOING DOWN")
        await upkeep.announce("RESTARTED")
        reports = await receive(channel, 2)
        assert [(first(r, EVENT_TYPE), first(r, "00741242")) for r in reports] == [
            (4, "GOING DOWN"),
            (4, "RESTARTED"),
        ]
        assert first(reports[1], "00741244") == "WARM START"
    async with websockets.connect(f"{ups.ws_url}/subscribers/ONE") as channel:
        assert [first(r, EVENT_TYPE) for r in await receive(channel, 3)] == [1, 4, 4]
