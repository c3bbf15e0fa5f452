"""Serialized changes to one workitem and the delivery of their events to the bus (an outbox).

Every transaction that changes a workitem reads it, decides (``pacsflow.ups.states``) and
writes it back only if nobody wrote it in between (``WorkitemStore.replace`` at the version it
read); a concurrent writer makes it read again and decide again, so of two performers claiming
one SCHEDULED workitem the second sees it IN PROGRESS and gets 409 (PS3.4 CC.2.1.3). This works
the same on SQLite and on Elasticsearch (``if_seq_no``/``if_primary_term``) and across any
number of ``pacsflow ups`` replicas, without a lock service.

The Event Reports a change causes are written in the same record as the change, numbered per
workitem (its outbox), so a change is never stored without its events. After the write they
are published to the ``ups-events`` topic (key: the workitem UID) and removed from the outbox;
a crash or a bus failure in between leaves them in the outbox, where ``relay`` finds them and
publishes them again. So every event reaches the topic at least once, in order per workitem.
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Callable
from typing import Final

from pacsflow.dicom.uids import is_valid_uid
from pacsflow.errors import BadRequest, Gone, NotFound, ServiceUnavailable
from pacsflow.ports.bus import Bus
from pacsflow.ports.workitems import StoredWorkitem, VersionConflict, WorkitemStore
from pacsflow.ups.events import EVENTS_TOPIC, EventRecord
from pacsflow.ups.states import Outcome

__all__ = ["MAX_ATTEMPTS", "Outbox"]

log = logging.getLogger(__name__)

MAX_ATTEMPTS: Final = 20  # reads and decisions of one request before it gives up (503)


class Outbox:
    """The write path of the workitems of one site (see the module docstring)."""

    def __init__(self, store: WorkitemStore, bus: Bus, site: str, clock: Callable[[], float]):
        self.store = store
        self.bus = bus
        self.site = site
        self.clock = clock

    async def load(self, uid: str) -> StoredWorkitem:
        """The workitem ``uid``; ``NotFound`` (404) or ``Gone`` (410) when there is none."""
        if not is_valid_uid(uid, strict=False):
            raise BadRequest(f"{uid[:80]!r} is not a workitem UID")
        item = await self.store.get(self.site, uid)
        if item is not None:
            return item
        if await self.store.deleted(self.site, uid):
            raise Gone(f"workitem {uid} existed and has been deleted")
        raise NotFound(f"no workitem {uid}")

    def stage(self, item: StoredWorkitem, outcome: Outcome) -> StoredWorkitem:
        """``item`` with ``outcome`` applied and its reports appended to the outbox."""
        subscribers = item.subscribers if outcome.subscribers is None else outcome.subscribers
        recipients = outcome.recipients or tuple(sorted(subscribers))
        seq, records = item.event_seq, []
        now = self.clock()
        if recipients:
            for report in outcome.reports:
                seq += 1
                records.append(EventRecord(self.site, item.uid, seq, recipients, report).to_json())
        return dataclasses.replace(
            item,
            attributes=outcome.attributes,
            state=str(outcome.state),
            transaction_uid=outcome.transaction_uid,
            subscribers=dict(subscribers),
            event_seq=seq,
            outbox=(*item.outbox, *records),
            finished=now if outcome.finished else item.finished,
            outbox_since=item.outbox_since or (now if records else None),
        )

    async def apply(
        self, uid: str, decide: Callable[[StoredWorkitem], Outcome]
    ) -> tuple[Outcome, StoredWorkitem]:
        """Decide on the latest version of ``uid`` and store the outcome, serialized."""
        for _ in range(MAX_ATTEMPTS):
            item = await self.load(uid)
            outcome = decide(item)
            if not outcome.changed and not outcome.reports and outcome.subscribers is None:
                return outcome, item
            staged = self.stage(item, outcome)
            try:
                version = await self.store.replace(staged, item.version)
            except VersionConflict:
                continue
            stored = dataclasses.replace(staged, version=version)
            await self.flush(stored)
            return outcome, stored
        raise ServiceUnavailable(f"workitem {uid} is changed by too many requests at once")

    async def flush(self, item: StoredWorkitem) -> bool:
        """Publish the outbox of ``item`` and remove what was published; False if it could not.

        A bus failure leaves the outbox for ``relay``; the change itself is already stored.
        """
        if not item.outbox:
            return True
        messages = [(item.uid.encode(), record.encode(), ()) for record in item.outbox]
        try:
            await self.bus.publish_batch(EVENTS_TOPIC, messages)
        except ServiceUnavailable as exc:
            log.warning("events of workitem %s stay in its outbox: %s", item.uid, exc)
            return False
        published = EventRecord.from_json(item.outbox[-1]).seq
        for _ in range(MAX_ATTEMPTS):
            left = tuple(r for r in item.outbox if EventRecord.from_json(r).seq > published)
            trimmed = dataclasses.replace(
                item, outbox=left, outbox_since=item.outbox_since if left else None
            )
            try:
                await self.store.replace(trimmed, item.version)
                return True
            except VersionConflict:
                current = await self.store.get(self.site, item.uid)
                if current is None or not current.outbox:
                    return True
                item = current
        return False  # published; the relay will publish the rest, subscribers drop repeats

    async def relay(self, older_than: float) -> int:
        """Publish the outboxes holding records written before ``older_than``; how many."""
        done, after = 0, ""
        while True:
            page = await self.store.scan(self.site, outbox_before=older_than, after=after)
            for item in page:
                done += await self.flush(item)
            if len(page) < 100:
                return done
            after = page[-1].uid

    async def publish(self, record: EventRecord) -> None:
        """Publish one record that belongs to no workitem's outbox (SCP Status Change)."""
        await self.bus.publish(EVENTS_TOPIC, record.workitem.encode(), record.to_json().encode())
