"""Entries of the change feed: what changed, and the sequence number the index gave it.

A ``Change`` is written by the ingest step (``create``, ``reject``) or by a deletion
(``delete``: a DELETE request or an IOCM rejection note, ``pacsflow.pipeline.delete``) in the
same index write as the change itself (``Index.upsert_instances``, ``Index.delete_instances``);
the index numbers it, making it a ``FeedEntry``. Every change has an *origin* (the ingest
record ``{request_id}/{part}``; for a deletion, its ``DeletionCause.origin`` and the SOP Instance
UID): an index keeps at most one entry per origin and site, so a redelivered record is never
fed twice.

The JSON form (``FeedEntry.to_json``) follows the entries of Azure's DICOM change feed
(``Sequence``, ``StudyInstanceUid``... ``Action``, ``Timestamp``, ``State``, ``Metadata``) with
pacsflow's additions; the differences are listed in docs/operations.md.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Final, Literal

import orjson

__all__ = ["ACTIONS", "Action", "Change", "DeletionCause", "FeedEntry", "State", "deletion", "now"]

Action = Literal["create", "delete", "reject"]
State = Literal["current", "replaced", "deleted", "rejected"]
ACTIONS: Final = ("create", "delete", "reject")

JsonDict = dict[str, Any]


def now() -> str:
    """The current time as the feed writes it: ISO 8601 UTC with microseconds."""
    return datetime.now(UTC).isoformat(timespec="microseconds").replace("+00:00", "Z")


@dataclass(frozen=True, slots=True)
class Change:
    """One change of one instance of a site, before the index numbers it."""

    origin: str
    site: str
    action: Action
    study_uid: str
    series_uid: str
    sop_uid: str
    sop_class_uid: str = ""
    sha256: str = ""  # of the object stored (create), else ""
    timestamp: str = ""
    failure_reason: int | None = None  # reject: the Failure Reason (PS3.18 Table I.2-1)
    reason: str = ""  # delete: why ("DELETE request", an IOCM rejection note...)

    def to_bytes(self) -> bytes:
        """The change as stored by an index (JSON)."""
        return orjson.dumps(self)  # a dataclass: its fields in order, as asdict gives them

    @classmethod
    def from_bytes(cls, raw: bytes) -> Change:
        """A change stored by ``to_bytes``."""
        return cls.from_dict(orjson.loads(raw))

    @classmethod
    def from_dict(cls, data: JsonDict) -> Change:
        """A change from its stored fields (unknown fields ignored)."""
        return cls(**{k: data[k] for k in cls.__dataclass_fields__ if k in data})


@dataclass(frozen=True, slots=True)
class DeletionCause:
    """Why instances are deleted: the origin of their changes (one per delivery of the record
    that deletes them, the same when it is redelivered) and a reason for the feed's readers."""

    origin: str
    reason: str = ""

    @classmethod
    def unnamed(cls) -> DeletionCause:
        """A deletion of its own (a caller that names none)."""
        return cls(f"delete/{uuid.uuid4().hex}")


def deletion(
    cause: DeletionCause, site: str, study_uid: str, series_uid: str, sop_uid: str, sop_class: str
) -> Change:
    """The change of an instance deleted by ``cause`` (origin ``{cause.origin}/{sop_uid}``)."""
    return Change(
        origin=f"{cause.origin}/{sop_uid}",
        site=site,
        action="delete",
        study_uid=study_uid,
        series_uid=series_uid,
        sop_uid=sop_uid,
        sop_class_uid=sop_class,
        timestamp=now(),
        reason=cause.reason,
    )


@dataclass(frozen=True, slots=True)
class FeedEntry:
    """A change with its sequence number in the feed of its site (from 1, increasing)."""

    sequence: int
    change: Change

    def to_json(self, state: State, metadata: JsonDict | None = None) -> JsonDict:
        """The entry as ``GET /changefeed`` answers it (Azure's fields first)."""
        change = self.change
        entry: JsonDict = {
            "Sequence": self.sequence,
            "StudyInstanceUid": change.study_uid,
            "SeriesInstanceUid": change.series_uid,
            "SopInstanceUid": change.sop_uid,
            "Action": change.action,
            "Timestamp": change.timestamp,
            "State": state,
            "SopClassUid": change.sop_class_uid,
        }
        if change.failure_reason is not None:
            entry["FailureReason"] = change.failure_reason
        if change.reason:
            entry["Reason"] = change.reason
        if metadata is not None:
            entry["Metadata"] = metadata
        return entry
