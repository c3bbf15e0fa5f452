"""Confirm a publish whose outcome is unknown before STOW-RS answers (issue 23, item 2).

A publish to the ``ingest`` topic that times out or loses its answer may still have been
appended (``PublishUnconfirmed``): answering 503 then would be a false "not stored", since the
processors store what the log holds. So the same records are sent again, with a growing pause,
until the log acknowledges them or ``window`` seconds have passed. Sending them twice is safe:
ingest is idempotent (the same object key, an upsert by SOP Instance UID; a staged part already
moved is found in its final place). Once acknowledged, the request goes on as if the first
publish had succeeded. Only when the window ends unconfirmed is the request refused, and the
error says that the instances may still be stored (PS3.18 10.5.3: 503 for the whole request).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence
from typing import Final

from pacsflow.errors import PublishUnconfirmed
from pacsflow.ports import Bus
from pacsflow.ports.bus import Headers

__all__ = ["publish_confirmed"]

log = logging.getLogger(__name__)

_FIRST_PAUSE: Final = 0.5
_LONGEST_PAUSE: Final = 5.0


async def publish_confirmed(
    bus: Bus,
    topic: str,
    items: Sequence[tuple[bytes, bytes, Headers]],
    window: float,
) -> None:
    """Publish ``items``; after a ``PublishUnconfirmed``, send them again until acknowledged
    or ``window`` seconds have passed (then ``PublishUnconfirmed``). Any other failure before
    the first unconfirmed one is raised as it is: nothing reached the log."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + window
    pause = _FIRST_PAUSE
    unconfirmed: PublishUnconfirmed | None = None
    attempts = 0
    while True:
        attempts += 1
        try:
            await bus.publish_batch(topic, items)
        except PublishUnconfirmed as exc:
            unconfirmed = exc
            log.warning("publish to %s unconfirmed, sending it again: %s", topic, exc)
        except Exception as exc:
            if unconfirmed is None:
                raise
            log.warning("re-sending %d records to %s: %s", len(items), topic, exc)
        else:
            if unconfirmed is not None:
                log.warning(
                    "publish to %s confirmed after %d attempts (%s)", topic, attempts, unconfirmed
                )
            return
        if loop.time() + pause > deadline:
            raise PublishUnconfirmed(
                f"{unconfirmed}; the log did not confirm the {len(items)} record(s) within"
                f" {window:g} s (PACSFLOW_STOW_PUBLISH_CONFIRM_SECONDS): they may still be"
                " stored; sending the request again is safe"
            ) from unconfirmed
        await asyncio.sleep(pause)
        pause = min(pause * 2, _LONGEST_PAUSE)
