"""The commitment store port: Storage Commitment requests and their results (PS3.18 Chapter 13).

Adapters: SQLite in the data directory (``pacsflow.adapters.sqlite_commitments``) and, in
pipeline mode, Elasticsearch/OpenSearch (``pacsflow.adapters.es_commitments``). The contract
(``tests/contract/test_commitment_store.py``) holds for both:

* A commitment is one record per (site, Transaction UID): the request as the core wrote it,
  the ingest *barrier* (the end offsets of the ``ingest`` topic when it was requested), its
  state (``working`` or ``done``) and, once done, its result.
* ``create`` raises ``TransactionInUse`` when the site already has a record of the UID, in
  whatever state (PS3.18 13.4.3: 409, the UID is in use).
* ``finish`` makes a working record done with the result given, once: when another process
  finished it first, the record keeps that first result and ``finish`` returns it. A record
  written by one process is read whole by every other right after (no refresh delay).
* ``purge`` removes the done records finished before a time; working ones are never purged.
* Sites never see each other's records; records survive a restart of the process.
* ``check`` returns within a few seconds: quietly while the store answers, with
  ``IndexUnavailable`` otherwise.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol

from pacsflow.errors import Conflict

__all__ = ["CommitmentStore", "StoredCommitment", "TransactionInUse"]

JsonDict = dict[str, Any]
State = Literal["working", "done"]


class TransactionInUse(Conflict):
    """The Transaction UID already names a commitment request of the site (HTTP 409)."""


@dataclass(frozen=True, slots=True)
class StoredCommitment:
    """One Storage Commitment request as stored.

    ``request`` is the request as the core keeps it (JSON); ``barrier`` the end offset of each
    partition of the ``ingest`` topic when the request came; ``result`` the Storage Commitment
    Response Module (DICOM JSON, PS3.18 Annex J.2) once ``state`` is ``done``; ``created`` and
    ``finished`` are seconds since the epoch.
    """

    site: str
    transaction_uid: str
    request: JsonDict
    created: float
    barrier: Mapping[int, int] = field(default_factory=dict)
    state: State = "working"
    result: JsonDict | None = None
    finished: float | None = None


class CommitmentStore(Protocol):
    """Storage Commitment records; see the module docstring for the contract."""

    async def start(self) -> None:
        """Connect and create schemas or indices (idempotent)."""
        ...

    async def close(self) -> None:
        """Release resources."""
        ...

    async def check(self) -> None:
        """Ask the store whether it answers (bounded); ``IndexUnavailable`` when it does not."""
        ...

    async def create(self, item: StoredCommitment) -> None:
        """Store a new record; ``TransactionInUse`` when the site has one of this UID."""
        ...

    async def get(self, site: str, transaction_uid: str) -> StoredCommitment | None:
        """The record of a Transaction UID, or ``None``."""
        ...

    async def finish(
        self, site: str, transaction_uid: str, result: JsonDict, finished: float
    ) -> StoredCommitment:
        """Make a working record done with ``result``; return the record as stored after.

        A record already done keeps its result (the first ``finish`` wins); ``KeyError`` when
        there is no record of the UID.
        """
        ...

    async def purge(self, site: str, finished_before: float) -> int:
        """Remove the done records of ``site`` finished before that time; return how many."""
        ...
