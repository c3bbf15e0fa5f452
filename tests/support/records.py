"""Records of the ingest topic built from corpus files, as the STOW-RS front end writes them."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pydicom

from pacsflow.pipeline.records import IngestRecord

__all__ = ["ingest_record"]


def ingest_record(path: Path, staged_key: str | None = None, part: int = 1) -> IngestRecord:
    """The record of ``path`` as part ``part`` of a request: its bytes inline, or a claim
    check (``staged_key``) on an object staged elsewhere."""
    data = path.read_bytes()
    ds = pydicom.dcmread(path, stop_before_pixels=True)
    return IngestRecord(
        request_id="r",
        part=part,
        site="default",
        study_uid=ds.StudyInstanceUID,
        series_uid=ds.SeriesInstanceUID,
        sop_uid=ds.SOPInstanceUID,
        sop_class_uid=ds.SOPClassUID,
        transfer_syntax=ds.file_meta.TransferSyntaxUID,
        size=len(data),
        sha256=hashlib.sha256(data).hexdigest(),
        received_at="2026-01-01T00:00:00+00:00",
        inline=None if staged_key else data,
        staged_key=staged_key,
    )
