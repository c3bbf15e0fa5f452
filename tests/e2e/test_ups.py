"""The Worklist Service end to end in ``pacsflow serve`` (embedded): a child process, real clients.

Create, subscribe, claim, complete and search over HTTP while a ``websockets`` client holds the
event channel; then the server is restarted (SIGTERM) on the same data directory while the
subscriber is away, and the subscriber gets every event once: those it missed, and the SCP
Status Changes (GOING DOWN, RESTARTED) of the restart.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

import httpx
import orjson

from tests.support.servers import start_server
from tests.support.ups_client import (
    GLOBAL,
    JSON,
    WAIT,
    complete,
    create,
    event,
    open_channel,
    put_state,
    receive,
)
from tests.support.workitems import EVENT_TYPE, first, new_uid


async def test_the_worklist_of_pacsflow_serve_across_a_restart(tmp_path: Path) -> None:
    server = start_server(tmp_path / "data")
    try:
        async with httpx.AsyncClient(timeout=60) as client:
            url = server.url
            response = await client.post(f"{url}/workitems/{GLOBAL}/subscribers/ROOM1")
            assert response.status_code == 201
            assert (
                response.headers["content-location"]
                == f"ws://127.0.0.1:{server.port}/dicom-web/subscribers/ROOM1"
            )
            channel = await open_channel(url, "ROOM1")
            first_uid = await create(client, url)
            await complete(client, url, first_uid)
            seen = [event(r) for r in await receive(channel, 3)]
            assert seen == [
                (1, first_uid, "SCHEDULED"),
                (1, first_uid, "IN PROGRESS"),
                (1, first_uid, "COMPLETED"),
            ]
            found = await client.get(f"{url}/workitems", params={"ProcedureStepState": "COMPLETED"})
            assert [first(r, "00080018") for r in found.json()] == [first_uid]
            await channel.close()

            missed = await create(client, url)  # while the subscriber is away
            assert await put_state(client, url, missed, "IN PROGRESS", new_uid()) == 200
    finally:
        server.stop()

    server = start_server(tmp_path / "data")  # the same data directory
    try:
        async with httpx.AsyncClient(timeout=60) as client:
            url = server.url
            channel = await open_channel(url, "ROOM1")
            after = await create(client, url)
            reports = []
            statuses = []
            while len(reports) < 3:  # GOING DOWN, RESTARTED come between, in order
                report = orjson.loads(await asyncio.wait_for(channel.recv(), WAIT))
                if first(report, EVENT_TYPE) == 4:
                    statuses.append(first(report, "00741242"))
                else:
                    reports.append(event(report))
            assert reports == [
                (1, missed, "SCHEDULED"),
                (1, missed, "IN PROGRESS"),
                (1, after, "SCHEDULED"),
            ]
            assert statuses == ["GOING DOWN", "RESTARTED"]
            (dataset,) = (await client.get(f"{url}/workitems/{missed}")).json()
            assert first(dataset, "00741000") == "IN PROGRESS" and "00081195" not in dataset
            await channel.close()
            assert (
                await client.get(f"{url}/workitems/{new_uid()}", headers=JSON)
            ).status_code == 404
    finally:
        server.stop()
