"""IHE IOCM rejection notes: a Key Object Selection whose title is in PS3.16 CID 7011.

A Key Object Selection Document (PS3.3 A.35.4) titled (Concept Name Code Sequence, 0040,A043)
with a code of CID 7011 "Rejected for Quality Reasons", "Rejected for Patient Safety Reasons",
"Incorrect Modality Worklist Entry" or "Data Retention Policy Expired" rejects the instances its
Current Requested Procedure Evidence Sequence (0040,A375) references (IHE RAD TF-2 4.66,
Rejection Note Stored). pacsflow's policy (docs/conformance.md): the note is stored as any
instance; the instances it references in the site are removed, as a DELETE would remove them.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any, Final

from pydicom.uid import KeyObjectSelectionDocumentStorage

from pacsflow.dicom.uids import is_valid_uid
from pacsflow.query.terms import first_value

__all__ = [
    "KEY_OBJECT_SELECTION",
    "REJECTION_TITLES",
    "Rejected",
    "rejected_instances",
    "rejection_title",
]

KEY_OBJECT_SELECTION: Final = str(KeyObjectSelectionDocumentStorage)
REJECTION_TITLES: Final = {
    ("113001", "DCM"): "Rejected for Quality Reasons",
    ("113037", "DCM"): "Rejected for Patient Safety Reasons",
    ("113038", "DCM"): "Incorrect Modality Worklist Entry",
    ("113039", "DCM"): "Data Retention Policy Expired",
}
"""PS3.16 CID 7011 Rejected Key Object Selection Document Titles."""

_CONCEPT_NAME: Final = "0040A043"
_EVIDENCE: Final = "0040A375"
_STUDY: Final = "0020000D"
_SERIES_SEQUENCE: Final = "00081115"
_SERIES: Final = "0020000E"
_SOP_SEQUENCE: Final = "00081199"
_SOP: Final = "00081155"

JsonDict = dict[str, Any]


@dataclass(frozen=True, slots=True)
class Rejected:
    """One instance a rejection note references."""

    study_uid: str
    series_uid: str
    sop_uid: str


def rejection_title(metadata: JsonDict) -> str | None:
    """The CID 7011 title of a Key Object Selection's DICOM JSON, or None (PS3.16 CID 7011)."""
    for item in _items(metadata, _CONCEPT_NAME):
        code = (first_value(item, "00080100"), first_value(item, "00080102"))
        if code in REJECTION_TITLES:
            return REJECTION_TITLES[code]
    return None


def rejected_instances(metadata: JsonDict) -> Iterator[Rejected]:
    """The instances a rejection note's evidence references (PS3.3 C.17.6, IHE RAD TF-2 4.66);
    a reference without three valid UIDs is left out."""
    if rejection_title(metadata) is None:
        return
    for study in _items(metadata, _EVIDENCE):
        for series in _items(study, _SERIES_SEQUENCE):
            for sop in _items(series, _SOP_SEQUENCE):
                uids = (
                    first_value(study, _STUDY),
                    first_value(series, _SERIES),
                    first_value(sop, _SOP),
                )
                if all(is_valid_uid(uid, strict=False) for uid in uids):
                    yield Rejected(*uids)


def _items(dataset: JsonDict, tag: str) -> list[JsonDict]:
    element = dataset.get(tag)
    values = element.get("Value") if isinstance(element, dict) else None
    return [v for v in values if isinstance(v, dict)] if isinstance(values, list) else []
