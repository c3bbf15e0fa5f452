"""Follow pacsflow's change feed: print every change as it comes, resuming where it stopped.

    python docs/examples/follow_changefeed.py http://127.0.0.1:8080/dicom-web [--state FILE]

The last sequence handled is kept in ``--state`` (default ``changefeed.state``), written after
each change, so a follower that is stopped and run again misses nothing and repeats at most
the change it was handling. Needs only ``httpx`` (``--token`` for an archive with auth).
"""

from __future__ import annotations

import argparse
import asyncio
import json
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import httpx

Entry = dict[str, Any]
PAGE = 100  # entries per request
IDLE_SECONDS = 2.0  # wait between polls of a feed with nothing new


async def follow(
    client: httpx.AsyncClient,
    after: int,
    handle: Callable[[Entry], Awaitable[bool]],
    idle: float = IDLE_SECONDS,
) -> int:
    """Hand each entry above ``after`` to ``handle`` in order, polling for more, until
    ``handle`` returns False; the last sequence handled."""
    while True:
        response = await client.get("changefeed", params={"offset": after, "limit": PAGE})
        response.raise_for_status()
        entries: list[Entry] = response.json()
        for entry in entries:
            keep_going = await handle(entry)
            after = entry["Sequence"]
            if not keep_going:
                return after
        if not entries:
            await asyncio.sleep(idle)


def main() -> None:
    """Print each change as a JSON line; keep the last sequence in the state file."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("url", help="the DICOMweb root, e.g. http://127.0.0.1:8080/dicom-web")
    parser.add_argument("--state", type=Path, default=Path("changefeed.state"))
    parser.add_argument("--token", help="a bearer token, for an archive with auth")
    args = parser.parse_args()
    state: Path = args.state
    after = int(state.read_text()) if state.exists() else 0
    headers = {"Authorization": f"Bearer {args.token}"} if args.token else {}

    async def handle(entry: Entry) -> bool:
        entry.pop("Metadata", None)
        print(json.dumps(entry), flush=True)
        await asyncio.to_thread(state.write_text, str(entry["Sequence"]))
        return True

    async def run() -> None:
        base = args.url.rstrip("/") + "/"
        async with httpx.AsyncClient(base_url=base, headers=headers, timeout=60) as client:
            await follow(client, after, handle)

    asyncio.run(run())


if __name__ == "__main__":
    main()
