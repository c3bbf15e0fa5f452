"""The ingest pipeline step: validate, store and index instances, a batch at a time.

Plain async functions, called by the embedded processor loop and by Faust agents alike.
Redelivery of the same record leaves the same state: object keys derive from UIDs, writes
replace, the index upserts by SOP Instance UID. The duplicate policy (docs/conformance.md):

* the same bytes under a known SOP Instance UID: stored again, no warning (idempotent);
* different bytes, policy ``replace`` (default): the new object replaces the old one, even in
  another study or series, with Warning Reason B100;
* different bytes, policy ``reject``: the stored object stays, Failure Reason 0111.

Group commit (docs/architecture.md): a batch is validated in one worker-thread hop, its objects
are written by one ``ObjectStore.write_batch`` (a claim-checked instance is *renamed* from its
staged key to its final key, so its bytes are written to disk once), and it is indexed in one
``upsert_instances`` call. A redelivered record whose staged object was already renamed finds
its bytes at the final key (checked by their SHA-256) and is indexed from there.

Read ahead: ``prepare_batch`` locates and validates the next batch (read-only: no write, no
index lookup) while the processor loop completes the one before; ``ingest_batch(prepared=…)``
then only admits, writes and indexes it. So the CPU of validation overlaps the fsyncs and the
index commit of the batch before, and batches still complete and commit in order.

The change feed (``pacsflow.changefeed``): the same ``upsert_instances`` call appends a
``create`` change for every record stored and a ``reject`` change for every record refused,
each with the record as origin (``{request_id}/{part}``), so a redelivered record is fed once.
A Non-Patient Instance (PS3.18 12.1) is fed in its site's feed, with no study or series.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import logging
from collections.abc import Sequence
from contextlib import AsyncExitStack
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

import orjson

from pacsflow.audit.trail import AuditTrail
from pacsflow.changefeed.entries import Action, Change, now
from pacsflow.dicom.header import PartRejected
from pacsflow.dicom.metadata import strip_bulk
from pacsflow.dicom.status import FailureReason, WarningReason
from pacsflow.dicom.validate import ValidatedInstance, validate_instance
from pacsflow.errors import ObjectNotFound
from pacsflow.nonpatient.resources import is_npi_site, owner_site
from pacsflow.pipeline.keys import instance_keys, instance_path, keys_beside
from pacsflow.pipeline.records import IngestEvent, IngestRecord
from pacsflow.pipeline.sidecar import encode_sidecar
from pacsflow.ports import Index, InstanceDocument, ObjectStore
from pacsflow.telemetry import tracing

__all__ = [
    "IngestContext",
    "PreparedBatch",
    "ingest_batch",
    "ingest_instance",
    "instance_document",
    "merge_prepared",
    "prepare_batch",
    "sha256_of",
]

log = logging.getLogger(__name__)

_TEMPLATE = instance_path("{study}", "{series}", "{instance}")
_HASH_CHUNK = 1 << 20


@dataclass(frozen=True, slots=True)
class IngestContext:
    """What the ingest step needs: the object store, the index, two policies and where the
    audit messages of the removals of rejection notes go."""

    objects: ObjectStore
    index: Index
    duplicate_policy: Literal["replace", "reject"] = "replace"
    decode_pixels: bool = False
    audit: AuditTrail | None = None


@dataclass(slots=True)
class _Work:
    """One record on its way through a batch."""

    record: IngestRecord
    keys: dict[str, str]
    source: Path | bytes | None = None
    staged: bool = False  # the source is the staged object: rename it into place
    verify: bool = False  # the source is the final object of an earlier delivery: hash it
    instance: ValidatedInstance | None = None
    warning: int | None = None
    message: str = ""
    event: IngestEvent | None = field(default=None)
    parent: tracing.Context | None = None  # the record's ``process`` span (tracing)

    def fail(self, reason: int, message: str) -> None:
        self.event = IngestEvent.for_record(
            self.record, "failed", failure=int(reason), message=message
        )


@dataclass(slots=True)
class PreparedBatch:
    """A batch located and validated ahead (``prepare_batch``); its local files stay open."""

    records: list[IngestRecord]
    works: list[_Work]
    stack: AsyncExitStack

    async def discard(self) -> None:
        """Release the local files (S3: the downloaded copies) of a batch not completed."""
        await self.stack.aclose()


async def prepare_batch(
    records: Sequence[IngestRecord], ctx: IngestContext
) -> PreparedBatch | None:
    """Locate and validate ``records`` ahead; ``None`` where it cannot be done ahead (a SOP
    Instance UID twice in the batch, or a backend that did not answer: ``ingest_batch`` then
    does it all, with its retries)."""
    if len(_rounds(records)) > 1:
        return None
    works = [_Work(r, instance_keys(r.site, r.study_uid, r.series_uid, r.sop_uid)) for r in records]
    stack = AsyncExitStack()
    try:
        await asyncio.gather(*(_locate(work, ctx, stack) for work in works))
        await asyncio.to_thread(_validate_all, works, ctx.decode_pixels)
    except Exception as exc:
        log.info("reading ahead %d records failed (%r); they are read again", len(works), exc)
        await stack.aclose()
        return None
    except BaseException:
        await stack.aclose()
        raise
    return PreparedBatch(list(records), works, stack)


def merge_prepared(first: PreparedBatch, second: PreparedBatch) -> PreparedBatch | None:
    """One prepared batch of two (``first``'s records first); ``None`` where a SOP Instance
    UID is in both, so that they must complete in turn."""
    records = first.records + second.records
    if len(_rounds(records)) > 1:
        return None
    stack = AsyncExitStack()
    stack.push_async_callback(second.stack.aclose)
    stack.push_async_callback(first.stack.aclose)
    return PreparedBatch(records, first.works + second.works, stack)


async def ingest_instance(record: IngestRecord, ctx: IngestContext) -> IngestEvent:
    """Process one record; return its outcome event (``ingest_batch`` of one)."""
    return (await ingest_batch([record], ctx))[0]


async def ingest_batch(
    records: Sequence[IngestRecord],
    ctx: IngestContext,
    prepared: PreparedBatch | None = None,
    parents: Sequence[tracing.Context] | None = None,
) -> list[IngestEvent]:
    """Process records together; return their outcome events, in order.

    ``prepared``: the same records, located and validated ahead by ``prepare_batch``.
    ``parents``: each record's trace context, under which its ``store`` and ``index`` spans go.

    Validation failures become ``failed`` events with their Failure Reason; backend failures
    (``ServiceUnavailable``) propagate so that the caller retries the batch without committing.
    Records of one SOP Instance UID are processed in turn, each in a later round.
    """
    if prepared is not None:
        async with prepared.stack:
            if prepared.records != list(records):
                raise ValueError("the prepared batch holds other records")
            for work, parent in zip(prepared.works, parents or (), strict=False):
                work.parent = parent
            await _complete(prepared.works, ctx)
        return [work.event for work in prepared.works if work.event is not None]
    events: list[IngestEvent | None] = [None] * len(records)
    for round_ in _rounds(records):
        works = [
            _Work(
                r,
                instance_keys(r.site, r.study_uid, r.series_uid, r.sop_uid),
                parent=parents[i] if parents else None,
            )
            for i, r in ((i, records[i]) for i in round_)
        ]
        await _ingest(works, ctx)
        for i, work in zip(round_, works, strict=True):
            events[i] = work.event
    return [event for event in events if event is not None]


def _rounds(records: Sequence[IngestRecord]) -> list[list[int]]:
    """Indices of ``records`` in rounds where each (site, SOP Instance UID) appears once."""
    rounds: list[list[int]] = []
    last: dict[tuple[str, str], int] = {}
    for i, record in enumerate(records):
        key = (record.site, record.sop_uid)
        number = last.get(key, -1) + 1
        last[key] = number
        if number == len(rounds):
            rounds.append([])
        rounds[number].append(i)
    return rounds


async def _ingest(works: list[_Work], ctx: IngestContext) -> None:
    async with AsyncExitStack() as stack:
        await asyncio.gather(*(_locate(work, ctx, stack) for work in works))
        await asyncio.to_thread(_validate_all, works, ctx.decode_pixels)
        await _complete(works, ctx)


async def _complete(works: list[_Work], ctx: IngestContext) -> None:
    """Admit validated works against the index, write their objects, index them and append
    their changes to the feed."""
    existing: dict[str, InstanceDocument] = {}
    for site in {w.record.site for w in works if w.event is None}:
        uids = [w.record.sop_uid for w in works if w.event is None and w.record.site == site]
        found = await ctx.index.get_instances(site, uids)
        existing.update({f"{site}/{uid}": doc for uid, doc in found.items()})
    accepted = [w for w in works if w.event is None and _admit(w, existing, ctx)]
    puts, moves, deletes = _changes(accepted, existing)
    kept = {id(w) for w in accepted}
    refused = [w.record.staged_key for w in works if w.staged and id(w) not in kept]
    traced = [w.parent for w in accepted if w.parent is not None]
    with tracing.each(traced, "store"):
        await ctx.objects.write_batch(puts, moves, [*deletes, *filter(None, refused)])
    with tracing.each(traced, "index"):
        await ctx.index.upsert_instances([_document(w) for w in accepted], _feed(works, kept))
    stale = [
        doc
        for w in accepted
        if (doc := existing.get(f"{w.record.site}/{w.record.sop_uid}")) is not None
        and doc.object_key != w.keys["dicom"]
    ]
    await ctx.objects.write_batch(deletes=[k for doc in stale for k in keys_beside(doc.object_key)])
    for w in accepted:
        w.event = IngestEvent.for_record(w.record, "stored", warning=w.warning, message=w.message)


async def _locate(work: _Work, ctx: IngestContext, stack: AsyncExitStack) -> None:
    """Where the record's bytes are: inline, its staged object, or (redelivered after the
    rename) its final object; or the event when there is nothing left to do."""
    record = work.record
    if record.inline is not None:
        work.source = record.inline
        return
    if record.staged_key is None:
        work.fail(FailureReason.PROCESSING_FAILURE, "the record carries no payload")
        return
    with contextlib.suppress(ObjectNotFound):
        work.source = await stack.enter_async_context(ctx.objects.local_file(record.staged_key))
        work.staged = True
        return
    final = await ctx.objects.stat(work.keys["dicom"])
    if final is not None and final.size == record.size:
        work.source = await stack.enter_async_context(ctx.objects.local_file(work.keys["dicom"]))
        work.verify = True
        return
    existing = await ctx.index.get_instance(record.site, record.sop_uid)
    if existing is not None and existing.sha256 == record.sha256:
        work.event = IngestEvent.for_record(record, "stored")
        return
    work.fail(
        FailureReason.PROCESSING_FAILURE,
        f"the staged object {record.staged_key} is gone and the instance is not stored",
    )


def _validate_all(works: list[_Work], decode_pixels: bool) -> None:
    """Validate every pending record (in a worker thread); failures become their events."""
    for work in works:
        if work.event is not None or work.source is None:
            continue
        record = work.record
        try:
            if work.verify and sha256_of(work.source) != record.sha256:
                work.fail(
                    FailureReason.PROCESSING_FAILURE,
                    f"the staged object {record.staged_key} is gone and the stored object "
                    "holds other bytes",
                )
                continue
            instance = validate_instance(
                work.source,
                record.size,
                _TEMPLATE,
                decode_pixels=decode_pixels,
                non_patient=is_npi_site(record.site),
            )
            got = (instance.study_uid, instance.series_uid, instance.sop_uid)
            if got != (record.study_uid, record.series_uid, record.sop_uid):
                raise PartRejected(
                    FailureReason.CANNOT_UNDERSTAND,
                    "the complete parse disagrees with the header read at STOW time",
                )
            work.instance = instance
            if instance.notes:  # accepted, as modality data is, with what was tolerated
                work.warning = WarningReason.ENCODING_TOLERATED
                work.message = "; ".join(instance.notes)
        except PartRejected as exc:
            ids = {"request_id": record.request_id}  # the STOW request's (pacsflow.telemetry)
            log.info(
                "rejected %s (part %d): %s", record.sop_uid, record.part, exc.message, extra=ids
            )
            work.fail(exc.reason, exc.message)
        except Exception as exc:  # a bug must not fail the batch: this record is dead-lettered
            ids = {"request_id": record.request_id}
            log.exception("validation of %s failed", record.sop_uid, extra=ids)
            work.fail(FailureReason.PROCESSING_FAILURE, f"processing failure: {type(exc).__name__}")


def sha256_of(source: Path | bytes) -> str:
    """The SHA-256 (hex) of an object's bytes, read from a file in 1 MiB chunks."""
    digest = hashlib.sha256()
    if isinstance(source, bytes):
        digest.update(source)
    else:
        with source.open("rb") as file:
            while chunk := file.read(_HASH_CHUNK):
                digest.update(chunk)
    return digest.hexdigest()


def _admit(work: _Work, existing: dict[str, InstanceDocument], ctx: IngestContext) -> bool:
    """Apply the duplicate policy against what the index holds; False when refused."""
    doc = existing.get(f"{work.record.site}/{work.record.sop_uid}")
    if doc is None or doc.sha256 == work.record.sha256:
        return True
    if ctx.duplicate_policy == "reject":
        work.fail(
            FailureReason.DUPLICATE_SOP_INSTANCE,
            "a different object with this SOP Instance UID is already stored",
        )
        return False
    work.warning = WarningReason.REPLACED_DIFFERENT_INSTANCE
    work.message = "replaced a different object stored under this SOP Instance UID"
    return True


def _changes(
    works: list[_Work], existing: dict[str, InstanceDocument]
) -> tuple[list[tuple[str, bytes]], list[tuple[str, str]], list[str]]:
    """The object writes of a batch: the instance (put or renamed from staging) and its sidecar
    (metadata, frame table and bulk ranges); replacing an instance stored before the sidecar,
    its ``.json``, ``.frames`` and ``.bulk`` are removed."""
    puts: list[tuple[str, bytes]] = []
    moves: list[tuple[str, str]] = []
    deletes: list[str] = []
    for work in works:
        instance, keys, record = work.instance, work.keys, work.record
        assert instance is not None
        if record.inline is not None:
            puts.append((keys["dicom"], record.inline))
        elif work.staged and record.staged_key is not None:
            moves.append((record.staged_key, keys["dicom"]))
        table = instance.frame_table
        frames = None if table is None else table.to_json()
        bulk = orjson.dumps(instance.bulk) if instance.bulk else None
        metadata = orjson.dumps(instance.metadata)
        puts.append((keys["sidecar"], encode_sidecar(metadata, frames, bulk)))
        if f"{record.site}/{record.sop_uid}" in existing:  # stored before the sidecar?
            deletes += [keys["metadata"], keys["frames"], keys["bulk"]]
    return puts, moves, deletes


def _feed(works: list[_Work], accepted: set[int]) -> list[Change]:
    """The changes of a round: ``create`` for the records stored, ``reject`` for those refused
    (a record found stored by an earlier delivery was fed then)."""
    at = now()
    changes = []
    action: Action
    for work in works:
        record, event = work.record, work.event
        if id(work) in accepted:
            action, failure = "create", None
        elif event is not None and event.status == "failed":
            action, failure = "reject", event.failure_reason
        else:
            continue
        site = record.site
        uids = (record.study_uid, record.series_uid, record.sop_uid, record.sop_class_uid)
        if is_npi_site(site):  # the site's feed, without the study it is filed under
            site, uids = owner_site(site), ("", "", record.sop_uid, record.sop_class_uid)
        sha256 = record.sha256 if action == "create" else ""
        origin = f"{record.request_id}/{record.part}"
        changes.append(Change(origin, site, action, *uids, sha256, at, failure))
    return changes


def _document(work: _Work) -> InstanceDocument:
    instance, record = work.instance, work.record
    assert instance is not None
    return instance_document(record.site, instance, work.keys["dicom"], record.size, record.sha256)


def instance_document(
    site: str, instance: ValidatedInstance, object_key: str, size: int, sha256: str
) -> InstanceDocument:
    """The index document of a validated instance stored under ``object_key``."""
    return InstanceDocument(
        site=site,
        study_uid=instance.study_uid,
        series_uid=instance.series_uid,
        sop_uid=instance.sop_uid,
        sop_class_uid=instance.sop_class_uid,
        transfer_syntax=instance.transfer_syntax,
        object_key=object_key,
        size=size,
        sha256=sha256,
        attributes=strip_bulk(instance.metadata),
    )
