"""Subscribe, Unsubscribe and Suspend Global Subscription (PS3.18 11.10-11.12, PS3.4 CC.2.3).

Subscribing to a workitem records the AE title (and its Deletion Lock) on the workitem and
sends it a State Report of the workitem (PS3.4 CC.2.4.3). A Worklist Subscription records the
AE title in the site's global subscriptions, subscribes it to every workitem there is (with a
State Report of each when it asks for a Deletion Lock, CC.2.4.3) and, through
``pacsflow.ups.subscriptions``, to every workitem created later; a Filtered Worklist
Subscription does so for the workitems its filter matches. Unsubscribing from the Worklist
removes the global subscription and every workitem subscription of the AE title (Table
CC.2.3-2); suspending keeps the workitem subscriptions and stops new ones.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Sequence
from typing import Final

from pacsflow.errors import NotFound, ServiceUnavailable
from pacsflow.ports.workitems import (
    Globals,
    GlobalSubscription,
    StoredWorkitem,
    VersionConflict,
    WorkitemStore,
)
from pacsflow.ups import events
from pacsflow.ups.model import FILTERED_SUBSCRIPTION_UID, GLOBAL_SUBSCRIPTION_UID, State
from pacsflow.ups.outbox import MAX_ATTEMPTS, Outbox
from pacsflow.ups.states import Outcome
from pacsflow.ups.subscriptions import filter_query, parse_filter

__all__ = ["GLOBAL_TARGETS", "Watch"]

GLOBAL_TARGETS: Final = (GLOBAL_SUBSCRIPTION_UID, FILTERED_SUBSCRIPTION_UID)
_PAGE: Final = 100


def _subscribing(ae: str, lock: bool, report: bool) -> Callable[[StoredWorkitem], Outcome]:
    def decide(item: StoredWorkitem) -> Outcome:
        return Outcome(
            item.attributes,
            State(item.state),
            item.transaction_uid,
            [events.state_report(item.uid, item.attributes)] if report else [],
            subscribers={**item.subscribers, ae: lock},
            recipients=(ae,),
        )

    return decide


def _unsubscribing(ae: str, strict: bool) -> Callable[[StoredWorkitem], Outcome]:
    def decide(item: StoredWorkitem) -> Outcome:
        if ae not in item.subscribers:
            if strict:
                raise NotFound(f"{ae} does not subscribe to workitem {item.uid}")
            return Outcome(item.attributes, State(item.state), item.transaction_uid, changed=False)
        left = {other: lock for other, lock in item.subscribers.items() if other != ae}
        return Outcome(item.attributes, State(item.state), item.transaction_uid, subscribers=left)

    return decide


class Watch:
    """The subscription transactions of one site."""

    def __init__(self, store: WorkitemStore, outbox: Outbox, max_results: int = 1000) -> None:
        self.store = store
        self.outbox = outbox
        self.site = outbox.site
        self.max_results = max_results

    async def _change_globals(
        self, change: Callable[[dict[str, GlobalSubscription]], bool]
    ) -> bool:
        """Apply ``change`` to the global subscriptions, serialized; whether it changed them."""
        for _ in range(MAX_ATTEMPTS):
            current = await self.store.get_globals(self.site)
            subscriptions = dict(current.subscriptions)
            if not change(subscriptions):
                return False
            try:
                await self.store.put_globals(Globals(self.site, subscriptions), current.version)
                return True
            except VersionConflict:
                continue
        raise ServiceUnavailable("the global subscriptions are changed by too many requests")

    async def _every(
        self, uids: Sequence[str], decide: Callable[[StoredWorkitem], Outcome]
    ) -> None:
        for uid in uids:
            try:
                await self.outbox.apply(uid, decide)
            except NotFound:  # deleted meanwhile (Gone is a NotFound of this purpose too)
                continue

    async def _all_uids(self, subscriber: str | None = None) -> list[str]:
        uids: list[str] = []
        while True:
            page = await self.store.scan(
                self.site, subscriber=subscriber, after=uids[-1] if uids else "", limit=_PAGE
            )
            uids += [item.uid for item in page]
            if len(page) < _PAGE:
                return uids

    async def _matching_uids(self, keys: Sequence[tuple[str, str]]) -> list[str]:
        uids: list[str] = []
        while True:
            query = filter_query(keys, limit=self.max_results, offset=len(uids))
            page = await self.store.search(self.site, query)
            uids += [str(record["00080018"]["Value"][0]) for record in page.records]
            if not page.records or len(uids) >= page.total:
                return uids

    async def subscribe(
        self, target: str, ae: str, deletion_lock: bool, parameters: Sequence[tuple[str, str]]
    ) -> None:
        """Subscribe (PS3.18 11.10): to a workitem, the Worklist or a Filtered Worklist."""
        if target == GLOBAL_SUBSCRIPTION_UID:
            record = GlobalSubscription(ae, "global", deletion_lock)
            uids = None
        elif target == FILTERED_SUBSCRIPTION_UID:
            keys = parse_filter(parameters)
            record = GlobalSubscription(ae, "filtered", deletion_lock, keys)
            uids = await self._matching_uids(keys)
        else:
            await self.outbox.apply(target, _subscribing(ae, deletion_lock, report=True))
            return

        def put(subscriptions: dict[str, GlobalSubscription]) -> bool:
            subscriptions[ae] = record
            return True

        await self._change_globals(put)
        uids = await self._all_uids() if uids is None else uids
        await self._every(uids, _subscribing(ae, deletion_lock, report=deletion_lock))

    async def unsubscribe(self, target: str, ae: str) -> None:
        """Unsubscribe (PS3.18 11.11); ``NotFound`` when there was no such subscription."""
        if target not in GLOBAL_TARGETS:
            await self.outbox.apply(target, _unsubscribing(ae, strict=True))
            return
        removed = await self._change_globals(lambda subs: subs.pop(ae, None) is not None)
        uids = await self._all_uids(subscriber=ae)
        if not removed and not uids:
            raise NotFound(f"{ae} has no subscription to remove")
        await self._every(uids, _unsubscribing(ae, strict=False))

    async def suspend(self, ae: str) -> None:
        """Suspend Global Subscription (PS3.18 11.12): no new workitems for ``ae``."""

        def suspend(subscriptions: dict[str, GlobalSubscription]) -> bool:
            if ae not in subscriptions:
                raise NotFound(f"{ae} has no Worklist Subscription to suspend")
            subscriptions[ae] = dataclasses.replace(subscriptions[ae], suspended=True)
            return True

        await self._change_globals(suspend)
