"""The delete step: DELETE records and IOCM rejection notes applied to the index and objects.

DELETE is not in PS3.18; every peer has it (docs/conformance.md, "DeletionCause"). A
``DeleteRecord`` travels on ``ingest`` keyed by its Study Instance UID, so within the study's
partition it is applied after every store published before it and before every store
published after it (``process_records`` keeps that order inside a batch). Applying it:

1. list what the index holds of the study, series or instance;
2. remove those entries from the index (searches no longer find them);
3. remove their objects, and whatever else lies under the study's or series' keys (what an
   interrupted earlier delivery left behind).

Every step is idempotent: a redelivered record finds fewer entries and objects, and ends in the
same state. A stored rejection note (``pacsflow.pipeline.rejection``) removes the instances it
references the same way, once it is indexed.

The change feed (``pacsflow.changefeed``): step 2 appends a ``delete`` change per instance
removed, whose origin is the record's (``{request_id}/delete``, or the rejection note's
``{request_id}/{part}/rejection``), so a redelivered record is fed once, and whose reason is
the DELETE's or the note's title.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass

from pacsflow.audit.events import AuditContext, study_deleted
from pacsflow.audit.messages import AuditMessage, Outcome, Participant
from pacsflow.changefeed.entries import DeletionCause
from pacsflow.pipeline.ingest import IngestContext, PreparedBatch, ingest_batch
from pacsflow.pipeline.keys import instance_keys, keys_beside
from pacsflow.pipeline.records import DeleteRecord, IngestEvent, IngestRecord
from pacsflow.pipeline.rejection import KEY_OBJECT_SELECTION, rejected_instances, rejection_title
from pacsflow.telemetry import tracing

__all__ = ["Removal", "delete_record", "process_records", "remove_instances"]

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class Removal:
    """What one delete removed: the instances' SOP Instance UIDs, by study."""

    site: str
    studies: dict[str, list[str]]

    @property
    def count(self) -> int:
        """How many instances were removed."""
        return sum(len(uids) for uids in self.studies.values())


async def process_records(
    records: Sequence[IngestRecord | DeleteRecord],
    ctx: IngestContext,
    prepared: PreparedBatch | None = None,
    parents: Sequence[tracing.Context] | None = None,
) -> list[IngestEvent]:
    """Stores in batches and deletes in their place between them; the events, in order.

    ``prepared``: the stores located and validated ahead (``prepare_batch``), for a batch
    without deletes. ``parents``: each record's trace context (``ingest_batch``)."""
    if prepared is not None:
        if all(isinstance(r, IngestRecord) for r in records):
            stores = [r for r in records if isinstance(r, IngestRecord)]
            return await _store(stores, ctx, prepared, parents)
        await prepared.discard()
    events: list[IngestEvent] = []
    batch: list[int] = []  # the stores since the last delete, by index in ``records``
    for i, record in enumerate(records):
        if isinstance(record, IngestRecord):
            batch.append(i)
            continue
        events += await _store_part(records, batch, ctx, parents)
        batch = []
        events.append(await delete_record(record, ctx))
    events += await _store_part(records, batch, ctx, parents)
    return events


async def _store_part(
    records: Sequence[IngestRecord | DeleteRecord],
    part: list[int],
    ctx: IngestContext,
    parents: Sequence[tracing.Context] | None,
) -> list[IngestEvent]:
    """``_store`` of the stores of ``records`` at the indices ``part``."""
    stores = [r for i in part if isinstance(r := records[i], IngestRecord)]
    return await _store(stores, ctx, None, [parents[i] for i in part] if parents else None)


async def delete_record(record: DeleteRecord, ctx: IngestContext) -> IngestEvent:
    """Apply one DELETE record; its ``deleted`` event (idempotent)."""
    refs = await ctx.index.list_instances(record.site, record.study_uid, record.series_uid)
    named = [
        (r.study_uid, r.series_uid, r.sop_uid) for r in refs if record.sop_uid in (None, r.sop_uid)
    ]
    cause = DeletionCause(f"{record.request_id}/delete", record.reason)
    removal = await remove_instances(ctx, record.site, named, cause)
    await ctx.objects.write_batch(deletes=await _left_behind(record, ctx))
    return record.event("deleted", f"{removal.count} instances deleted")


async def _left_behind(record: DeleteRecord, ctx: IngestContext) -> list[str]:
    """The object keys under what ``record`` deletes (an instance: its four keys)."""
    site, study, series = record.site, record.study_uid, record.series_uid
    if record.sop_uid is not None and series is not None:
        return list(instance_keys(site, study, series, record.sop_uid).values())
    prefix = f"{site}/studies/{study}/" + (f"series/{series}/" if series is not None else "")
    return [key async for key in ctx.objects.list(prefix)]


async def remove_instances(
    ctx: IngestContext, site: str, named: Sequence[tuple[str, str, str]], cause: DeletionCause
) -> Removal:
    """Remove the instances named (study, series, SOP Instance UID) that the index holds there:
    the index entries first (searches no longer find them, the feed gets their ``delete``
    changes by ``cause``), then their objects, and the objects under the named keys (what an
    interrupted earlier removal left)."""
    wanted = set(named)
    held = await ctx.index.get_instances(site, [sop for _, _, sop in named])
    found = {
        uid: doc for uid, doc in held.items() if (doc.study_uid, doc.series_uid, uid) in wanted
    }
    await ctx.index.delete_instances(site, list(found), cause)
    keys = {k for doc in found.values() for k in keys_beside(doc.object_key)}
    keys |= {k for uids in wanted for k in instance_keys(site, *uids).values()}
    await ctx.objects.write_batch(deletes=sorted(keys))
    removed: dict[str, list[str]] = {}
    for uid, doc in found.items():
        removed.setdefault(doc.study_uid, []).append(uid)
    return Removal(site, removed)


async def _store(
    records: list[IngestRecord],
    ctx: IngestContext,
    prepared: PreparedBatch | None = None,
    parents: Sequence[tracing.Context] | None = None,
) -> list[IngestEvent]:
    """Ingest a batch of stores, then apply the rejection notes stored among them."""
    if not records:
        return []
    events = await ingest_batch(records, ctx, prepared, parents)
    notes = {
        (e.site, e.sop_uid): e
        for e in events
        if e.status == "stored" and e.sop_class_uid == KEY_OBJECT_SELECTION
    }
    for site in {site for site, _ in notes}:
        uids = [uid for at, uid in notes if at == site]
        for doc in (await ctx.index.get_instances(site, uids)).values():
            title = rejection_title(doc.attributes)
            if title is None:
                continue
            named = [
                (r.study_uid, r.series_uid, r.sop_uid)
                for r in rejected_instances(doc.attributes)
                if r.sop_uid != doc.sop_uid
            ]
            note = notes[site, doc.sop_uid]
            why = f"IOCM rejection note {doc.sop_uid} ({title})"
            cause = DeletionCause(f"{note.request_id}/{note.part}/rejection", why)
            removal = await remove_instances(ctx, site, named, cause)
            text = f"{why}: {removal.count} instances removed"
            log.info("%s", text)
            if ctx.audit is not None and removal.count:
                await ctx.audit.record(_deleted(ctx.audit.source_id, removal, text))
    return events


def _deleted(source_id: str, removal: Removal, description: str) -> AuditMessage:
    """A.5.3.8 DICOM Study Deleted for a removal the archive made itself (a rejection note)."""
    archive = Participant(source_id, False)
    context = AuditContext(Participant(source_id, True), archive, source_id, removal.site)
    return study_deleted(context, sorted(removal.studies), Outcome.SUCCESS, description)
