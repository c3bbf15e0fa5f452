"""Which attributes belong to the study and series levels (PS3.18 10.6.3, PS3.4 C.6.1.1).

The index stores each instance's attributes whole; study and series records take the
attributes of these levels from their instances and add the derived ones.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any, Final

__all__ = [
    "SERIES_TAGS",
    "STUDY_TAGS",
    "level_attributes",
    "series_derived",
    "study_derived",
]

JsonDict = dict[str, Any]

# Patient module (group 0010) attributes are study-level in the Study Root model.
STUDY_TAGS: Final = frozenset(
    {
        "00080005",  # SpecificCharacterSet
        "00080020",  # StudyDate
        "00080030",  # StudyTime
        "00080050",  # AccessionNumber
        "00080051",  # IssuerOfAccessionNumberSequence
        "00080090",  # ReferringPhysicianName
        "00080201",  # TimezoneOffsetFromUTC
        "00081030",  # StudyDescription
        "00081032",  # ProcedureCodeSequence
        "00081060",  # NameOfPhysiciansReadingStudy
        "0020000D",  # StudyInstanceUID
        "00200010",  # StudyID
        "00321060",  # RequestedProcedureDescription
    }
)
SERIES_TAGS: Final = frozenset(
    {
        "00080005",  # SpecificCharacterSet
        "00080021",  # SeriesDate
        "00080031",  # SeriesTime
        "00080060",  # Modality
        "0008103E",  # SeriesDescription
        "00081050",  # PerformingPhysicianName
        "00081090",  # ManufacturerModelName
        "00080070",  # Manufacturer
        "00180015",  # BodyPartExamined
        "0020000E",  # SeriesInstanceUID
        "00200011",  # SeriesNumber
        "00200060",  # Laterality
        "00400244",  # PerformedProcedureStepStartDate
        "00400245",  # PerformedProcedureStepStartTime
        "00400275",  # RequestAttributesSequence
    }
)


def level_attributes(attributes: JsonDict, level: str) -> JsonDict:
    """The study- or series-level subset of an instance's DICOM JSON attributes."""
    if level == "study":
        return {k: v for k, v in attributes.items() if k in STUDY_TAGS or k.startswith("0010")}
    return {k: v for k, v in attributes.items() if k in SERIES_TAGS}


def _cs(values: Iterable[str]) -> JsonDict:
    ordered = sorted({v for v in values if v})
    return {"vr": "CS", "Value": ordered} if ordered else {"vr": "CS"}


def study_derived(
    series_count: int, instance_count: int, modalities: Iterable[str], sop_classes: Iterable[str]
) -> JsonDict:
    """NumberOfStudyRelated{Series,Instances}, ModalitiesInStudy, SOPClassesInStudy."""
    classes = sorted({c for c in sop_classes if c})
    return {
        "00080061": _cs(modalities),
        "00080062": {"vr": "UI", "Value": classes} if classes else {"vr": "UI"},
        "00201206": {"vr": "IS", "Value": [series_count]},
        "00201208": {"vr": "IS", "Value": [instance_count]},
    }


def series_derived(instance_count: int) -> JsonDict:
    """NumberOfSeriesRelatedInstances."""
    return {"00201209": {"vr": "IS", "Value": [instance_count]}}
