"""The Worklist Service's workitem transactions (PS3.18 11.4-11.9) between HTTP and the ports.

Each method is one transaction: it checks the request against PS3.4 Annex CC
(``pacsflow.ups.requirements``, ``pacsflow.ups.states``) and changes the workitem through the
serialized write path of ``pacsflow.ups.outbox``, which also carries its Event Reports to the
``ups-events`` topic. Subscriptions are ``pacsflow.ups.watch``.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Final

from pacsflow.dicom.uids import is_valid_uid
from pacsflow.errors import BadRequest, Conflict
from pacsflow.ports.bus import Bus
from pacsflow.ports.workitems import StoredWorkitem, WorkitemExists, WorkitemStore
from pacsflow.ups import events, states
from pacsflow.ups.model import State, Tag
from pacsflow.ups.outbox import Outbox
from pacsflow.ups.requirements import check_create, has_value, value
from pacsflow.ups.search import WorkitemPage, search_workitems, workitem_query
from pacsflow.ups.states import Outcome
from pacsflow.ups.subscriptions import subscribers_of_new

__all__ = ["DEFAULT_REQUESTER", "UpsService", "UpsSettings"]

JsonDict = dict[str, Any]

DEFAULT_REQUESTER: Final = "UNKNOWN"  # Requesting AE of a Request Cancellation that names none


@dataclass(frozen=True, slots=True)
class UpsSettings:
    """What the Worklist Service is configured with (``pacsflow.config.Settings``)."""

    worklist_label: str = "pacsflow"
    max_results: int = 1000
    retention_seconds: float = 7 * 24 * 3600.0


class UpsService:
    """Create, Retrieve, Update, Change State, Request Cancellation and Search of workitems,
    on the workitems of one site."""

    def __init__(
        self,
        store: WorkitemStore,
        bus: Bus,
        settings: UpsSettings,
        site: str,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.settings = settings
        self.site = site
        self.store = store
        self.outbox = Outbox(store, bus, site, clock)
        self.clock = clock

    def _now(self) -> datetime:
        return datetime.fromtimestamp(self.clock())

    async def create(self, attributes: JsonDict, workitem: str | None) -> str:
        """Create Workitem (PS3.18 11.4, PS3.4 CC.2.5.3); the new workitem's UID.

        The UID is the ``workitem`` query parameter or, without one, the payload's SOP Instance
        UID; given both, they must agree. New workitems are subscribed to by the Worklist and
        matching Filtered Worklist subscribers, who get its State Report (and UPS Assigned when
        a station or performer is scheduled).
        """
        in_payload = value(attributes, Tag.SOP_INSTANCE_UID)
        uid = workitem or in_payload
        if not uid:
            raise BadRequest(
                "the Workitem UID is missing: give it as ?workitem= or as SOPInstanceUID"
            )
        if in_payload and in_payload != uid:
            raise BadRequest(f"SOPInstanceUID {in_payload} is not the workitem {uid} created")
        if not is_valid_uid(str(uid), strict=False):
            raise BadRequest(f"{uid!r} is not a UID")
        checked = check_create(attributes, str(uid), self.settings.worklist_label)
        globals_ = await self.store.get_globals(self.site)
        subscribers = subscribers_of_new(globals_, checked)
        reports = [events.state_report(str(uid), checked)]
        if has_value(checked, Tag.SCHEDULED_STATION_NAME_CODES) or has_value(
            checked, Tag.SCHEDULED_HUMAN_PERFORMERS
        ):
            reports.append(events.assigned(str(uid), checked))
        fresh = StoredWorkitem(
            site=self.site,
            uid=str(uid),
            attributes={},
            state=State.SCHEDULED,
            created=self.clock(),
        )
        outcome = Outcome(checked, State.SCHEDULED, None, reports, subscribers=subscribers)
        staged = self.outbox.stage(fresh, outcome)
        try:
            version = await self.store.create(staged)
        except WorkitemExists:
            raise Conflict(f"the workitem {uid} already exists") from None
        await self.outbox.flush(dataclasses.replace(staged, version=version))
        await self._late_subscribers(str(uid), globals_.version)
        return str(uid)

    async def _late_subscribers(self, uid: str, seen: str) -> None:
        """Subscribe those who subscribed globally while ``uid`` was being created."""
        globals_ = await self.store.get_globals(self.site)
        if globals_.version == seen:
            return

        def decide(item: StoredWorkitem) -> Outcome:
            new = {
                ae: lock
                for ae, lock in subscribers_of_new(globals_, item.attributes).items()
                if ae not in item.subscribers
            }
            report = events.state_report(uid, item.attributes)
            return Outcome(
                item.attributes,
                State(item.state),
                item.transaction_uid,
                [report] if new else [],
                changed=bool(new),
                subscribers={**item.subscribers, **new},
                recipients=tuple(sorted(new)) or None,
            )

        await self.outbox.apply(uid, decide)

    async def retrieve(self, uid: str) -> JsonDict:
        """Retrieve Workitem (PS3.18 11.5): its attributes, never its Transaction UID."""
        item = await self.outbox.load(uid)
        return dict(sorted(item.attributes.items()))

    async def update(self, uid: str, changes: JsonDict, transaction_uid: str | None) -> Outcome:
        """Update Workitem (PS3.18 11.6, PS3.4 CC.2.6.3)."""
        in_payload = value(changes, Tag.TRANSACTION_UID)
        if in_payload and transaction_uid and in_payload != transaction_uid:
            raise BadRequest("the Transaction UID of the payload is not the one of the request")
        given = transaction_uid or in_payload
        outcome, _ = await self.outbox.apply(uid, lambda item: states.update(item, changes, given))
        return outcome

    async def change_state(self, uid: str, request: JsonDict) -> Outcome:
        """Change Workitem State (PS3.18 11.7, PS3.4 CC.2.1.3)."""
        unexpected = set(request) - {
            Tag.PROCEDURE_STEP_STATE,
            Tag.TRANSACTION_UID,
            Tag.SPECIFIC_CHARACTER_SET,
        }
        if unexpected:
            names = ", ".join(sorted(unexpected))
            raise BadRequest(
                f"a Change State payload holds the state and the Transaction UID only: {names}"
            )
        now = self._now()
        outcome, _ = await self.outbox.apply(
            uid, lambda item: states.change_state(item, request, now)
        )
        return outcome

    async def request_cancellation(self, uid: str, request: JsonDict, requester: str) -> Outcome:
        """Request Cancellation (PS3.18 11.8, PS3.4 CC.2.2.3)."""
        now = self._now()
        outcome, _ = await self.outbox.apply(
            uid, lambda item: states.request_cancellation(item, request, requester, now)
        )
        return outcome

    async def search(
        self, parameters: Sequence[tuple[str, str]], asked: int | None
    ) -> WorkitemPage:
        """Search Workitems (PS3.18 11.9)."""
        query = workitem_query(parameters, self.settings.max_results)
        return await search_workitems(self.store, self.site, query, asked=asked)
