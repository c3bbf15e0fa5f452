"""What a commitment means for one instance (PS3.4 J.3.3, PS3.3 C.14.1.1): the verdicts.

An instance is committed when the index holds it (stored and indexed, in the study and series
the request names, of the SOP Class it names) and the stored object's bytes hash to the
SHA-256 the index recorded at ingest. The object is read through the object store port in
chunks and hashed as it streams (memory does not grow with its size); hashing runs off the
event loop. Failure Reasons (PS3.3 C.14.1.1):

* 0112 No such object instance: the index does not hold the instance (or holds it in another
  study or series than the request names);
* 0119 Class/Instance conflict: the instance is held with another SOP Class;
* 0110 Processing failure: the stored object is gone or its bytes do not match its digest, or
  the ingest pipeline had not processed what was acknowledged before the request in time.
"""

from __future__ import annotations

import asyncio
import hashlib
from dataclasses import dataclass
from enum import IntEnum
from typing import Final

from pacsflow.commitment.request import Reference
from pacsflow.errors import ObjectNotFound
from pacsflow.pipeline.keys import instance_keys
from pacsflow.ports import InstanceDocument, ObjectStore

__all__ = ["CommitmentFailure", "Verdict", "verify_instance"]

_THREAD_HASH_BYTES: Final = 64 * 1024  # smaller chunks are hashed on the loop


class CommitmentFailure(IntEnum):
    """Failure Reason (0008,1197) values of PS3.3 C.14.1.1 that pacsflow gives."""

    PROCESSING_FAILURE = 0x0110
    NO_SUCH_OBJECT_INSTANCE = 0x0112
    CLASS_INSTANCE_CONFLICT = 0x0119


@dataclass(frozen=True, slots=True)
class Verdict:
    """The answer for one reference: committed (``failure`` None) or not, and why."""

    reference: Reference
    failure: CommitmentFailure | None = None
    message: str = ""


async def verify_instance(
    objects: ObjectStore, reference: Reference, doc: InstanceDocument
) -> Verdict:
    """The verdict on an instance the index holds: placement, SOP Class, then its bytes."""
    if reference.study_uid and (doc.study_uid, doc.series_uid) != (
        reference.study_uid,
        reference.series_uid,
    ):
        return Verdict(
            reference,
            CommitmentFailure.NO_SUCH_OBJECT_INSTANCE,
            f"held in series {doc.series_uid} of study {doc.study_uid}",
        )
    if doc.sop_class_uid != reference.sop_class_uid:
        return Verdict(
            reference,
            CommitmentFailure.CLASS_INSTANCE_CONFLICT,
            f"held as SOP Class {doc.sop_class_uid}",
        )
    key = instance_keys(doc.site, doc.study_uid, doc.series_uid, doc.sop_uid)["dicom"]
    digest = hashlib.sha256()
    size = 0
    try:
        async for chunk in objects.stream(key):
            size += len(chunk)
            if len(chunk) >= _THREAD_HASH_BYTES:
                await asyncio.to_thread(digest.update, chunk)
            else:
                digest.update(chunk)
    except ObjectNotFound:
        return Verdict(reference, CommitmentFailure.PROCESSING_FAILURE, "the stored object is gone")
    if size != doc.size or digest.hexdigest() != doc.sha256:
        return Verdict(
            reference,
            CommitmentFailure.PROCESSING_FAILURE,
            "the stored bytes do not match the SHA-256 recorded at ingest",
        )
    return Verdict(reference)
