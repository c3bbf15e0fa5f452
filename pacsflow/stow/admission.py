"""Admission of a received STOW-RS part into an ``IngestRecord`` (PS3.18 10.5.3).

A part is admitted to the ingest topic when its media type is ``application/dicom``, its
header names a patient/study object with the identifying attributes, and its Study Instance
UID matches the target study of ``/studies/{study}``; otherwise it fails with the Failure
Reason of PS3.18 Table 10.5.3-2 (docs/conformance.md).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Protocol

from pacsflow.dicom.header import PartHeader
from pacsflow.dicom.status import FailureReason
from pacsflow.dicom.uids import NON_PATIENT_SOP_CLASSES, is_valid_uid
from pacsflow.media.multipart_in import media_type_parameters
from pacsflow.pipeline.records import IngestEvent, IngestRecord
from pacsflow.stow.parts import StreamingPart
from pacsflow.stow.response import PartOutcome

__all__ = [
    "Failure",
    "Placement",
    "StudyPlacement",
    "apply_event",
    "check_media_type",
    "check_placement",
    "ingest_record",
]

Failure = tuple[FailureReason, str]

PART_TYPES = frozenset({"application/dicom", "application/octet-stream"})


def check_media_type(content_type: str) -> tuple[FailureReason, str] | None:
    """A failure for a part that is not ``application/dicom`` (PS3.18 10.5.1.1)."""
    media, _ = media_type_parameters(content_type or "application/dicom")
    if media in PART_TYPES:
        return None
    return (
        FailureReason.CANNOT_UNDERSTAND,
        f"part media type {media!r} is not application/dicom",
    )


class Placement(Protocol):
    """Where a STOW request files its parts: in studies, or at a Non-Patient Instance resource."""

    @property
    def resource(self) -> str | None:
        """The NPI resource (``npi-name``, PS3.18 12.1.1) the request targets; None: studies."""
        ...

    @property
    def target(self) -> str | None:
        """The UID the target URL names (``/studies/{study}``, ``/{npi-name}/{uid}``)."""
        ...

    def place(self, header: PartHeader) -> PartHeader | Failure:
        """The header to publish the part with, or why the part fails."""
        ...


@dataclass(frozen=True, slots=True)
class StudyPlacement:
    """Parts of the Studies Service: patient objects, in the target study if any (10.5)."""

    target: str | None = None
    resource: None = None

    def place(self, header: PartHeader) -> PartHeader | Failure:
        """The header as it is, or the failure of ``check_placement``."""
        return check_placement(header, self.target) or header


def check_placement(header: PartHeader, study_uid: str | None) -> Failure | None:
    """A failure for a part that cannot be placed in a study (the target study's, if any)."""
    if header.sop_class_uid in NON_PATIENT_SOP_CLASSES:
        return (
            FailureReason.SOP_CLASS_NOT_SUPPORTED,
            f"{NON_PATIENT_SOP_CLASSES[header.sop_class_uid]} is not a patient/study object: "
            "it belongs to the Non-Patient Instance service, not to the Studies service",
        )
    missing = header.missing()
    if missing:
        return (
            FailureReason.DATA_SET_DOES_NOT_MATCH_SOP_CLASS,
            "the data set lacks " + ", ".join(missing) + ", needed to place it in a study",
        )
    uids = (header.study_uid, header.series_uid, header.sop_uid)
    bad = next((uid for uid in uids if not is_valid_uid(uid, strict=False)), None)
    if bad is not None:  # before any key or URL is built from it
        return (
            FailureReason.DATA_SET_DOES_NOT_MATCH_SOP_CLASS,
            f"{bad[:80]!r} is not a valid UID (PS3.5 9.1)",
        )
    if study_uid is not None and header.study_uid != study_uid:
        return (
            FailureReason.STUDY_INSTANCE_UID_MISMATCH,
            f"Study Instance UID {header.study_uid} does not match the target study {study_uid}",
        )
    return None


def ingest_record(
    part: StreamingPart, header: PartHeader, request_id: str, site: str
) -> IngestRecord:
    """The record an admitted part is published as."""
    return IngestRecord(
        request_id=request_id,
        part=part.number,
        site=site,
        study_uid=header.study_uid,
        series_uid=header.series_uid,
        sop_uid=header.sop_uid,
        sop_class_uid=header.sop_class_uid,
        transfer_syntax=header.transfer_syntax,
        size=part.size,
        sha256=part.sha256.hexdigest(),
        received_at=datetime.now(UTC).isoformat(),
        inline=bytes(part.inline) if part.inline is not None else None,
        staged_key=part.staged_key,
    )


def apply_event(outcome: PartOutcome, event: IngestEvent) -> None:
    """Fold a part's ingest outcome into its response entry."""
    outcome.processed = True
    if event.status == "failed":
        reason = FailureReason(event.failure_reason or FailureReason.PROCESSING_FAILURE)
        outcome.fail(reason, event.message)
    elif event.warning_reason is not None:
        outcome.warning_reason = event.warning_reason
        outcome.message = event.message
    outcome.series_uid = event.series_uid or outcome.series_uid
