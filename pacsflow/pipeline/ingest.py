"""The ingest pipeline step: validate, store and index one instance (idempotently).

A plain async function, called by the embedded processor loop and by Faust agents alike.
Redelivery of the same record leaves the same state: object keys derive from UIDs, writes
replace, the index upserts by SOP Instance UID. The duplicate policy (docs/conformance.md):

* the same bytes under a known SOP Instance UID: stored again, no warning (idempotent);
* different bytes, policy ``replace`` (default): the new object replaces the old one, even in
  another study or series, with Warning Reason B100;
* different bytes, policy ``reject``: the stored object stays, Failure Reason 0111.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import orjson

from pacsflow.dicom.header import PartRejected
from pacsflow.dicom.metadata import strip_bulk
from pacsflow.dicom.status import FailureReason, WarningReason
from pacsflow.dicom.validate import ValidatedInstance, validate_instance
from pacsflow.pipeline.keys import instance_keys, instance_path
from pacsflow.pipeline.records import IngestEvent, IngestRecord
from pacsflow.ports import Index, InstanceDocument, ObjectStore

__all__ = ["IngestContext", "ingest_instance"]

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class IngestContext:
    """What the ingest step needs: the object store, the index and two policies."""

    objects: ObjectStore
    index: Index
    duplicate_policy: Literal["replace", "reject"] = "replace"
    decode_pixels: bool = True


async def ingest_instance(record: IngestRecord, ctx: IngestContext) -> IngestEvent:
    """Process one record; return its outcome event.

    Validation failures become a ``failed`` event with their Failure Reason; backend failures
    (``ServiceUnavailable``) propagate so that the caller retries without committing.
    """
    if record.staged_key is not None and await ctx.objects.stat(record.staged_key) is None:
        return await _already_processed(record, ctx)
    try:
        async with _local_copy(record, ctx.objects) as source:
            template = instance_path("{study}", "{series}", "{instance}")
            instance = await asyncio.to_thread(
                validate_instance,
                source,
                record.size,
                template,
                decode_pixels=ctx.decode_pixels,
            )
            _check_matches_record(instance, record)
            existing = await ctx.index.get_instance(record.site, instance.sop_uid)
            warning: int | None = WarningReason.ENCODING_TOLERATED if instance.notes else None
            message = "; ".join(instance.notes)
            if existing is not None and existing.sha256 != record.sha256:
                if ctx.duplicate_policy == "reject":
                    raise PartRejected(
                        FailureReason.DUPLICATE_SOP_INSTANCE,
                        "a different object with this SOP Instance UID is already stored",
                    )
                warning = WarningReason.REPLACED_DIFFERENT_INSTANCE
                message = "replaced a different object stored under this SOP Instance UID"
            keys = instance_keys(record.site, record.study_uid, record.series_uid, record.sop_uid)
            await _store(record, instance, keys, ctx.objects)
            await ctx.index.upsert_instances([_document(record, instance, keys["dicom"])])
            if existing is not None and existing.object_key != keys["dicom"]:
                await _delete_instance_objects(existing, ctx.objects)
    except PartRejected as exc:
        log.info("rejected %s (part %d): %s", record.sop_uid, record.part, exc.message)
        return IngestEvent.for_record(
            record, "failed", failure=int(exc.reason), message=exc.message
        )
    return IngestEvent.for_record(record, "stored", warning=warning, message=message)


async def _already_processed(record: IngestRecord, ctx: IngestContext) -> IngestEvent:
    """A redelivered record whose staged object was removed after it was stored and indexed."""
    existing = await ctx.index.get_instance(record.site, record.sop_uid)
    if existing is not None and existing.sha256 == record.sha256:
        return IngestEvent.for_record(record, "stored")
    return IngestEvent.for_record(
        record,
        "failed",
        failure=int(FailureReason.PROCESSING_FAILURE),
        message=f"the staged object {record.staged_key} is gone and the instance is not indexed",
    )


def _check_matches_record(instance: ValidatedInstance, record: IngestRecord) -> None:
    got = (instance.study_uid, instance.series_uid, instance.sop_uid)
    if got != (record.study_uid, record.series_uid, record.sop_uid):
        raise PartRejected(
            FailureReason.CANNOT_UNDERSTAND,
            "the complete parse disagrees with the header read at STOW time",
        )


@asynccontextmanager
async def _local_copy(record: IngestRecord, objects: ObjectStore) -> AsyncIterator[Path | bytes]:
    """The record's bytes: inline ones as they are, a staged object as a local file."""
    if record.inline is not None:
        yield record.inline
        return
    if record.staged_key is None:
        raise PartRejected(FailureReason.PROCESSING_FAILURE, "the record carries no payload")
    async with objects.local_file(record.staged_key) as path:
        yield path


async def _store(
    record: IngestRecord,
    instance: ValidatedInstance,
    keys: dict[str, str],
    objects: ObjectStore,
) -> None:
    """Write the instance, its metadata, frame table and bulk ranges; each write is atomic."""
    if record.inline is not None:
        await objects.put(keys["dicom"], record.inline)
    else:
        assert record.staged_key is not None
        await objects.copy(record.staged_key, keys["dicom"])
    await objects.put(keys["metadata"], orjson.dumps(instance.metadata))
    if instance.frame_table is not None:
        await objects.put(keys["frames"], instance.frame_table.to_json())
    else:
        await objects.delete(keys["frames"])
    if instance.bulk:
        await objects.put(keys["bulk"], orjson.dumps(instance.bulk))
    else:
        await objects.delete(keys["bulk"])


async def _delete_instance_objects(doc: InstanceDocument, objects: ObjectStore) -> None:
    base = doc.object_key.removesuffix(".dcm")
    for suffix in (".dcm", ".json", ".frames", ".bulk"):
        await objects.delete(base + suffix)


def _document(
    record: IngestRecord, instance: ValidatedInstance, object_key: str
) -> InstanceDocument:
    return InstanceDocument(
        site=record.site,
        study_uid=instance.study_uid,
        series_uid=instance.series_uid,
        sop_uid=instance.sop_uid,
        sop_class_uid=instance.sop_class_uid,
        transfer_syntax=instance.transfer_syntax,
        object_key=object_key,
        size=record.size,
        sha256=record.sha256,
        attributes=strip_bulk(instance.metadata),
    )
