"""Read just enough of a STOW part to place it: UIDs, SOP Class, Transfer Syntax (PS3.18 10.5).

The STOW front end calls this on the first bytes of each part while the rest still streams in;
the complete validation happens in the ingest processor.
"""

from __future__ import annotations

import io
from dataclasses import dataclass
from typing import BinaryIO, Final

from pacsflow.dicom.scan import ScanResult, StructureError, Truncated, scan
from pacsflow.dicom.status import FailureReason
from pacsflow.errors import PacsflowError

__all__ = [
    "HeaderIncomplete",
    "PartHeader",
    "PartRejected",
    "read_file_header",
    "read_part_header",
]

SOP_CLASS_UID: Final = 0x00080016
SOP_INSTANCE_UID: Final = 0x00080018
STUDY_INSTANCE_UID: Final = 0x0020000D
SERIES_INSTANCE_UID: Final = 0x0020000E
_WANTED: Final = (SOP_CLASS_UID, SOP_INSTANCE_UID, STUDY_INSTANCE_UID, SERIES_INSTANCE_UID)
_PREAMBLE_AND_PREFIX: Final = 132  # PS3.10 7.1: 128-byte preamble, then "DICM"
_NAMES: Final = {
    SOP_CLASS_UID: "SOP Class UID (0008,0016)",
    SOP_INSTANCE_UID: "SOP Instance UID (0008,0018)",
    STUDY_INSTANCE_UID: "Study Instance UID (0020,000D)",
    SERIES_INSTANCE_UID: "Series Instance UID (0020,000E)",
}


class HeaderIncomplete(Exception):
    """More bytes of the part are needed to read its header."""


class PartRejected(PacsflowError):
    """A part or instance is refused, with the Failure Reason the response will carry."""

    def __init__(self, reason: FailureReason, message: str) -> None:
        super().__init__(message)
        self.reason = reason
        self.message = message


@dataclass(frozen=True, slots=True)
class PartHeader:
    """The identifying attributes of one instance (empty string when absent)."""

    study_uid: str
    series_uid: str
    sop_uid: str
    sop_class_uid: str
    transfer_syntax: str
    has_file_meta: bool

    def missing(self) -> list[str]:
        """Names of the identifying attributes the part lacks."""
        values = {
            SOP_CLASS_UID: self.sop_class_uid,
            SOP_INSTANCE_UID: self.sop_uid,
            STUDY_INSTANCE_UID: self.study_uid,
            SERIES_INSTANCE_UID: self.series_uid,
        }
        return [_NAMES[tag] for tag, value in values.items() if not value]


def read_part_header(prefix: bytes, *, complete: bool) -> PartHeader:
    """Parse the first bytes of a part; ``complete`` says whether ``prefix`` is the whole part.

    Raises ``HeaderIncomplete`` when more bytes are needed and ``PartRejected`` when the part is
    not a DICOM data set.
    """
    if not complete and len(prefix) < _PREAMBLE_AND_PREFIX:
        raise HeaderIncomplete  # a preamble cannot be told from a data set before "DICM"
    try:
        result = scan(io.BytesIO(prefix), len(prefix), want=_WANTED, stop_after=SERIES_INSTANCE_UID)
    except Truncated as exc:
        if not complete:
            raise HeaderIncomplete from exc
        raise PartRejected(
            FailureReason.CANNOT_UNDERSTAND, f"not a valid DICOM object: {exc}"
        ) from exc
    except StructureError as exc:
        raise PartRejected(
            FailureReason.CANNOT_UNDERSTAND, f"not a valid DICOM object: {exc}"
        ) from exc
    if result.complete and not complete and len(result.values) < len(_WANTED):
        raise HeaderIncomplete
    return _header(result)


def read_file_header(fp: BinaryIO, size: int) -> PartHeader:
    """Read the header of a whole object in a file (a staged part with a huge header)."""
    try:
        result = scan(fp, size, want=_WANTED, stop_after=SERIES_INSTANCE_UID)
    except StructureError as exc:
        raise PartRejected(
            FailureReason.CANNOT_UNDERSTAND, f"not a valid DICOM object: {exc}"
        ) from exc
    return _header(result)


def _header(result: ScanResult) -> PartHeader:
    values = {
        tag: raw.rstrip(b"\x00 ").decode("ascii", "replace") for tag, raw in result.values.items()
    }
    return PartHeader(
        study_uid=values.get(STUDY_INSTANCE_UID, ""),
        series_uid=values.get(SERIES_INSTANCE_UID, ""),
        sop_uid=values.get(SOP_INSTANCE_UID, ""),
        sop_class_uid=values.get(SOP_CLASS_UID, ""),
        transfer_syntax=result.transfer_syntax,
        has_file_meta=result.has_file_meta,
    )
