"""The delete step: DELETE records and IOCM rejection notes applied to the index and objects.

DELETE is not in PS3.18; every peer has it (docs/conformance.md, "Deletion"). A
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
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass

from pacsflow.audit.events import AuditContext, study_deleted
from pacsflow.audit.messages import AuditMessage, Outcome, Participant
from pacsflow.pipeline.ingest import IngestContext, PreparedBatch, ingest_batch
from pacsflow.pipeline.keys import instance_keys, keys_beside
from pacsflow.pipeline.records import DeleteRecord, IngestEvent, IngestRecord
from pacsflow.pipeline.rejection import KEY_OBJECT_SELECTION, rejected_instances, rejection_title

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
) -> list[IngestEvent]:
    """Stores in batches and deletes in their place between them; the events, in order.

    ``prepared``: the stores located and validated ahead (``prepare_batch``), for a batch
    without deletes."""
    if prepared is not None:
        if all(isinstance(r, IngestRecord) for r in records):
            return await _store([r for r in records if isinstance(r, IngestRecord)], ctx, prepared)
        await prepared.discard()
    events: list[IngestEvent] = []
    stores: list[IngestRecord] = []
    for record in records:
        if isinstance(record, IngestRecord):
            stores.append(record)
            continue
        events += await _store(stores, ctx)
        stores = []
        events.append(await delete_record(record, ctx))
    events += await _store(stores, ctx)
    return events


async def delete_record(record: DeleteRecord, ctx: IngestContext) -> IngestEvent:
    """Apply one DELETE record; its ``deleted`` event (idempotent)."""
    refs = await ctx.index.list_instances(record.site, record.study_uid, record.series_uid)
    named = [
        (r.study_uid, r.series_uid, r.sop_uid) for r in refs if record.sop_uid in (None, r.sop_uid)
    ]
    removal = await remove_instances(ctx, record.site, named)
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
    ctx: IngestContext, site: str, named: Sequence[tuple[str, str, str]]
) -> Removal:
    """Remove the instances named (study, series, SOP Instance UID) that the index holds there:
    the index entries first (searches no longer find them), then their objects, and the objects
    under the named keys (what an interrupted earlier removal left)."""
    wanted = set(named)
    held = await ctx.index.get_instances(site, [sop for _, _, sop in named])
    found = {
        uid: doc for uid, doc in held.items() if (doc.study_uid, doc.series_uid, uid) in wanted
    }
    await ctx.index.delete_instances(site, list(found))
    keys = {k for doc in found.values() for k in keys_beside(doc.object_key)}
    keys |= {k for uids in wanted for k in instance_keys(site, *uids).values()}
    await ctx.objects.write_batch(deletes=sorted(keys))
    removed: dict[str, list[str]] = {}
    for uid, doc in found.items():
        removed.setdefault(doc.study_uid, []).append(uid)
    return Removal(site, removed)


async def _store(
    records: list[IngestRecord], ctx: IngestContext, prepared: PreparedBatch | None = None
) -> list[IngestEvent]:
    """Ingest a batch of stores, then apply the rejection notes stored among them."""
    if not records:
        return []
    events = await ingest_batch(records, ctx, prepared)
    notes = [
        e.sop_uid
        for e in events
        if e.status == "stored" and e.sop_class_uid == KEY_OBJECT_SELECTION
    ]
    for site in {e.site for e in events if e.sop_uid in notes}:
        for doc in (await ctx.index.get_instances(site, notes)).values():
            title = rejection_title(doc.attributes)
            if title is None:
                continue
            named = [
                (r.study_uid, r.series_uid, r.sop_uid)
                for r in rejected_instances(doc.attributes)
                if r.sop_uid != doc.sop_uid
            ]
            removal = await remove_instances(ctx, site, named)
            text = f"IOCM rejection note {doc.sop_uid} ({title}): {removal.count} instances removed"
            log.info("%s", text)
            if ctx.audit is not None and removal.count:
                await ctx.audit.record(_deleted(ctx.audit.source_id, removal, text))
    return events


def _deleted(source_id: str, removal: Removal, description: str) -> AuditMessage:
    """A.5.3.8 DICOM Study Deleted for a removal the archive made itself (a rejection note)."""
    archive = Participant(source_id, False)
    context = AuditContext(Participant(source_id, True), archive, source_id, removal.site)
    return study_deleted(context, sorted(removal.studies), Outcome.SUCCESS, description)
