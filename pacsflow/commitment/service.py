"""The Storage Commitment Service (PS3.18 Chapter 13, the semantics of PS3.4 Annex J).

Request (13.4): the request is parsed, recorded under its Transaction UID (409 when the UID is
in use) and answered *Done* (200, the Storage Commitment Response Module) when it can be:
every referenced instance is in the index, or the ingest pipeline has processed everything
acknowledged so far (then an instance the index lacks is unknown: 0112). Otherwise the answer
needs the pipeline, as for an instance acknowledged with 202 but not yet indexed: the request
is recorded *Working* with the end offsets of the ``ingest`` topic (its barrier) and answered
202. Result Check (13.5): a working request becomes done once the ingest group's committed
offsets reach its barrier (every record logged before the request has been processed), or when
``timeout_seconds`` have passed (what is still missing then fails with 0110). A done request is
answered from the store, the same result every time, until ``retention_seconds`` after it was
finished (410 Gone); records older than that are purged (404).

Each committed instance was verified as ``verify.verify_instance`` says: held in the index and
its stored bytes hashed against the SHA-256 recorded at ingest (PS3.4 J.3.3: the SCP commits to
the safekeeping of what it verified). An instance named without a study (the SOP Instance form)
is looked for among the site's studies, then among its Non-Patient Instances (PS3.18 12.1,
kept in the partition ``npi_site(site)``), which the Storage Commitment Service covers too.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Final

from pacsflow.commitment.request import CommitmentRequest, Reference, parse_request
from pacsflow.commitment.response import response_module
from pacsflow.commitment.verify import CommitmentFailure, Verdict, verify_instance
from pacsflow.dicom.uids import is_valid_uid
from pacsflow.errors import BadRequest, Gone, NotFound
from pacsflow.nonpatient.resources import npi_site
from pacsflow.pipeline.records import INGEST_GROUP, INGEST_TOPIC
from pacsflow.ports import Bus, Index, InstanceDocument, ObjectStore
from pacsflow.ports.commitments import CommitmentStore, StoredCommitment

__all__ = ["CommitmentService", "CommitmentSettings", "Outcome"]

JsonDict = dict[str, Any]

_VERIFY_AT_ONCE: Final = 4  # instances read and hashed concurrently
_LOOKUPS_AT_ONCE: Final = 16  # index reads in flight


@dataclass(frozen=True, slots=True)
class CommitmentSettings:
    """How long a request may wait for the pipeline and how long results are kept."""

    timeout_seconds: float = 3600.0
    retention_seconds: float = 7 * 24 * 3600.0


@dataclass(frozen=True, slots=True)
class Outcome:
    """A request's state for the client: Done with its result, or Working (``result`` None)."""

    result: JsonDict | None

    @property
    def done(self) -> bool:
        """Whether the origin server has finished the request (200) or not (202)."""
        return self.result is not None


class CommitmentService:
    """Request Storage Commitment and Check its Result; shared by both modes."""

    def __init__(
        self,
        index: Index,
        objects: ObjectStore,
        bus: Bus,
        store: CommitmentStore,
        settings: CommitmentSettings,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._index = index
        self._objects = objects
        self._bus = bus
        self._store = store
        self._settings = settings
        self._clock = clock

    async def request_commitment(
        self, site: str, transaction_uid: str, body: bytes, content_type: str
    ) -> Outcome:
        """Request Storage Commitment (PS3.18 13.4) of the instances the payload names."""
        _check_transaction_uid(transaction_uid)
        request = parse_request(body, content_type)
        now = self._clock()
        await self._store.purge(site, now - self._settings.retention_seconds)
        docs = await self._lookup(site, request.references)
        barrier: Mapping[int, int] = {}
        if any(doc is None for doc in docs):
            positions = await self._bus.positions(INGEST_TOPIC, INGEST_GROUP)
            barrier = {p: end for p, (_, end) in positions.items()}
        record = StoredCommitment(site, transaction_uid, request.to_json(), now, barrier)
        await self._store.create(record)  # 409 when the UID is in use
        return await self._advance(record, docs)

    async def check_result(self, site: str, transaction_uid: str) -> Outcome:
        """Result Check (PS3.18 13.5): Done with the result, Working, 404 or 410."""
        _check_transaction_uid(transaction_uid)
        record = await self._store.get(site, transaction_uid)
        if record is None:
            raise NotFound(f"no storage commitment request {transaction_uid}")
        if record.state == "done":
            if (record.finished or 0.0) + self._settings.retention_seconds <= self._clock():
                raise Gone(f"the result of {transaction_uid} is no longer kept")
            return Outcome(record.result)
        return await self._advance(record, None)

    async def _advance(
        self, record: StoredCommitment, docs: list[InstanceDocument | None] | None
    ) -> Outcome:
        """Finish a working request when it can be finished now; else leave it working."""
        request = CommitmentRequest.from_json(record.request)
        if docs is None:
            docs = await self._lookup(record.site, request.references)
        caught_up = True
        if any(doc is None for doc in docs):
            caught_up = await self._pipeline_passed(record.barrier)
            timed_out = record.created + self._settings.timeout_seconds <= self._clock()
            if not caught_up and not timed_out:
                return Outcome(None)
            if caught_up:  # what ingest finished meanwhile is in the index now
                docs = await self._lookup(record.site, request.references)
        verdicts = await self._verdicts(request.references, docs, caught_up)
        result = response_module(request.form, verdicts)
        done = await self._store.finish(record.site, record.transaction_uid, result, self._clock())
        return Outcome(done.result)

    async def _lookup(
        self, site: str, references: tuple[Reference, ...]
    ) -> list[InstanceDocument | None]:
        limit = asyncio.Semaphore(_LOOKUPS_AT_ONCE)

        async def one(ref: Reference) -> InstanceDocument | None:
            async with limit:
                doc = await self._index.get_instance(site, ref.sop_uid)
                if doc is None and not ref.study_uid:  # a Non-Patient Instance (PS3.18 12.1)?
                    doc = await self._index.get_instance(npi_site(site), ref.sop_uid)
                return doc

        return list(await asyncio.gather(*(one(ref) for ref in references)))

    async def _pipeline_passed(self, barrier: Mapping[int, int]) -> bool:
        """Whether ingest has processed every record that was logged when ``barrier`` was read."""
        positions = await self._bus.positions(INGEST_TOPIC, INGEST_GROUP)
        return all(positions.get(p, (0, 0))[0] >= end for p, end in barrier.items())

    async def _verdicts(
        self,
        references: tuple[Reference, ...],
        docs: list[InstanceDocument | None],
        caught_up: bool,
    ) -> list[Verdict]:
        limit = asyncio.Semaphore(_VERIFY_AT_ONCE)

        async def one(ref: Reference, doc: InstanceDocument | None) -> Verdict:
            if doc is None and caught_up:
                return Verdict(ref, CommitmentFailure.NO_SUCH_OBJECT_INSTANCE, "not held")
            if doc is None:
                seconds = self._settings.timeout_seconds
                return Verdict(
                    ref,
                    CommitmentFailure.PROCESSING_FAILURE,
                    f"the ingest pipeline did not process it within {seconds:g} s",
                )
            async with limit:
                return await verify_instance(self._objects, ref, doc)

        pairs = zip(references, docs, strict=True)
        return list(await asyncio.gather(*(one(ref, doc) for ref, doc in pairs)))


def _check_transaction_uid(transaction_uid: str) -> None:
    if not is_valid_uid(transaction_uid, strict=False):
        raise BadRequest(f"{transaction_uid[:80]!r} is not a Transaction UID (PS3.5 9.1)")
