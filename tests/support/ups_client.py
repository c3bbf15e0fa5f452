"""A small UPS-RS client for the end-to-end tests: HTTP through httpx, events through websockets."""

from __future__ import annotations

import asyncio
from collections import Counter
from typing import Any

import httpx
import orjson
import websockets

from tests.support.workitems import (
    AFFECTED_UID,
    EVENT_TYPE,
    first,
    new_uid,
    performed,
    state,
    workitem,
)

JSON = {"content-type": "application/dicom+json"}
GLOBAL = "1.2.840.10008.5.1.4.34.5"
WAIT = 60.0  # bound of one receive; reaching it fails the test
JsonDict = dict[str, Any]
Event = tuple[int, str, str | None]  # event type, workitem, state


def event(report: JsonDict) -> Event:
    """(Event Type ID, Affected SOP Instance UID, Procedure Step State) of a report."""
    return first(report, EVENT_TYPE), first(report, AFFECTED_UID), first(report, "00741000")


async def create(client: httpx.AsyncClient, url: str) -> str:
    uid = new_uid()
    response = await client.post(
        f"{url}/workitems?workitem={uid}", content=orjson.dumps(workitem()), headers=JSON
    )
    assert response.status_code == 201, response.text
    return uid


async def put_state(client: httpx.AsyncClient, url: str, uid: str, value: str, owner: str) -> int:
    body = orjson.dumps(state(value, owner))
    response = await client.put(f"{url}/workitems/{uid}/state", content=body, headers=JSON)
    return response.status_code


async def complete(client: httpx.AsyncClient, url: str, uid: str) -> None:
    """Claim, describe and complete a workitem (three events: IN PROGRESS, COMPLETED)."""
    owner = new_uid()
    assert await put_state(client, url, uid, "IN PROGRESS", owner) == 200
    response = await client.post(
        f"{url}/workitems/{uid}?transaction={owner}",
        content=orjson.dumps(performed()),
        headers=JSON,
    )
    assert response.status_code == 200, response.text
    assert await put_state(client, url, uid, "COMPLETED", owner) == 200


async def receive(channel: Any, count: int) -> list[JsonDict]:
    """The next ``count`` reports that are not SCP Status Changes (bounded waits)."""
    reports: list[JsonDict] = []
    while len(reports) < count:
        report = orjson.loads(await asyncio.wait_for(channel.recv(), WAIT))
        if first(report, EVENT_TYPE) != 4:
            reports.append(report)
    return reports


def ws_url(url: str, ae: str) -> str:
    return "ws" + url.removeprefix("http") + f"/subscribers/{ae}"


async def open_channel(url: str, ae: str) -> Any:
    return await websockets.connect(ws_url(url, ae))


def counts(events: list[Event]) -> Counter[Event]:
    return Counter(events)
