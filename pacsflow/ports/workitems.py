"""The workitem store port: the Worklist's own state (PS3.18 Chapter 11, PS3.4 Annex CC).

Adapters: SQLite in the data directory (``pacsflow.adapters.sqlite_workitems``) and, in pipeline
mode, Elasticsearch/OpenSearch (``pacsflow.adapters.es_workitems``). The contract
(``tests/contract/test_workitem_store.py``) holds for both:

* A workitem is one record: its attributes (never the Transaction UID, kept beside them), its
  subscribers (AE title → Deletion Lock), the sequence number of its last event and the event
  records not yet known to be on the bus (its *outbox*), and an opaque ``version``.
* Changes to one workitem are serialized by optimistic concurrency: ``replace`` and ``delete``
  succeed only if the stored version is still ``expected``, else raise ``VersionConflict``
  and change nothing; each success gives the record a new version. ``create`` raises
  ``WorkitemExists`` when the UID is taken, or was taken by a workitem since deleted.
* ``get`` reads the latest version (no refresh delay); ``search`` answers a workitem query
  (``pacsflow.query.model.Query`` at ``Level.WORKITEM``) with the same matching rules on every
  adapter, as soon as the write that made a workitem match has returned.
* The global subscriptions of a site are one record with its own version, changed the same way.
* Sites never see each other's workitems or subscriptions.
* ``check`` returns within a few seconds: quietly while the store answers, with
  ``IndexUnavailable`` otherwise.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol

from pacsflow.errors import PacsflowError
from pacsflow.query.model import Query, SearchPage

__all__ = [
    "GlobalSubscription",
    "Globals",
    "StoredWorkitem",
    "VersionConflict",
    "WorkitemExists",
    "WorkitemStore",
]

JsonDict = dict[str, Any]


class VersionConflict(PacsflowError):
    """The record changed since it was read: read it again and retry."""


class WorkitemExists(PacsflowError):
    """A workitem with this UID exists or existed."""


@dataclass(frozen=True, slots=True)
class StoredWorkitem:
    """One workitem as stored.

    ``state`` is its Procedure Step State (0074,1000); ``finished`` the time (seconds since the
    epoch) it became COMPLETED or CANCELED; ``outbox_since`` the time the oldest record of its
    outbox was written (``None`` with an empty outbox); ``locked`` whether a subscriber holds a
    Deletion Lock.
    """

    site: str
    uid: str
    attributes: JsonDict
    state: str
    transaction_uid: str | None = None
    subscribers: Mapping[str, bool] = field(default_factory=dict)
    event_seq: int = 0
    outbox: tuple[str, ...] = ()
    created: float = 0.0
    finished: float | None = None
    outbox_since: float | None = None
    version: str = ""

    @property
    def locked(self) -> bool:
        """Whether any subscriber holds a Deletion Lock on it (PS3.4 CC.2.3.1)."""
        return any(self.subscribers.values())


@dataclass(frozen=True, slots=True)
class GlobalSubscription:
    """A Worklist (``kind="global"``) or Filtered Worklist Subscription of one AE title.

    ``filter`` holds the matching keys of a filtered one as query parameters; ``suspended``
    stops new workitems from being subscribed (PS3.18 11.12).
    """

    ae: str
    kind: Literal["global", "filtered"] = "global"
    deletion_lock: bool = False
    filter: tuple[tuple[str, str], ...] = ()
    suspended: bool = False


@dataclass(frozen=True, slots=True)
class Globals:
    """The global subscriptions of a site, by AE title, and the record's version."""

    site: str
    subscriptions: Mapping[str, GlobalSubscription] = field(default_factory=dict)
    version: str = ""

    def to_document(self) -> JsonDict:
        """The subscriptions as JSON (how the adapters store them)."""
        return {
            ae: {
                "kind": s.kind,
                "deletion_lock": s.deletion_lock,
                "filter": [list(pair) for pair in s.filter],
                "suspended": s.suspended,
            }
            for ae, s in self.subscriptions.items()
        }

    @classmethod
    def from_document(cls, site: str, document: JsonDict, version: str) -> Globals:
        """The inverse of ``to_document``."""
        found = {
            ae: GlobalSubscription(
                ae=ae,
                kind="filtered" if entry["kind"] == "filtered" else "global",
                deletion_lock=bool(entry["deletion_lock"]),
                filter=tuple((str(k), str(v)) for k, v in entry["filter"]),
                suspended=bool(entry["suspended"]),
            )
            for ae, entry in document.items()
        }
        return cls(site, found, version)


class WorkitemStore(Protocol):
    """Workitems and their subscriptions; see the module docstring for the contract."""

    async def start(self) -> None:
        """Connect and create schemas or indices (idempotent)."""
        ...

    async def close(self) -> None:
        """Release resources."""
        ...

    async def check(self) -> None:
        """Ask the store whether it answers (bounded); ``IndexUnavailable`` when it does not."""
        ...

    async def get(self, site: str, uid: str) -> StoredWorkitem | None:
        """The latest version of a workitem, or ``None``."""
        ...

    async def deleted(self, site: str, uid: str) -> bool:
        """Whether a workitem of this UID existed and was deleted (HTTP 410)."""
        ...

    async def create(self, item: StoredWorkitem) -> str:
        """Store a new workitem; return its version; ``WorkitemExists`` if the UID is taken."""
        ...

    async def replace(self, item: StoredWorkitem, expected: str) -> str:
        """Replace a workitem at version ``expected``; return the new version."""
        ...

    async def delete(self, item: StoredWorkitem, expected: str) -> None:
        """Delete a workitem at version ``expected``, leaving a tombstone of its UID."""
        ...

    async def search(self, site: str, query: Query) -> SearchPage:
        """One page of the workitems matching ``query`` (by UID) and how many match in all."""
        ...

    async def scan(
        self,
        site: str,
        *,
        subscriber: str | None = None,
        outbox_before: float | None = None,
        finished_before: float | None = None,
        after: str = "",
        limit: int = 100,
    ) -> list[StoredWorkitem]:
        """Workitems by UID after ``after``, at most ``limit``, that meet every criterion given.

        ``subscriber``: the AE title subscribes to them; ``outbox_before``: their outbox holds
        a record written before that time; ``finished_before``: COMPLETED or CANCELED before
        that time and without a Deletion Lock.
        """
        ...

    async def subscriber_aes(self, site: str) -> set[str]:
        """Every AE title subscribed to a workitem of the site."""
        ...

    async def get_globals(self, site: str) -> Globals:
        """The global subscriptions of a site (an empty record at version ``""``)."""
        ...

    async def put_globals(self, globals_: Globals, expected: str) -> str:
        """Replace the global subscriptions at version ``expected``; return the new version."""
        ...
