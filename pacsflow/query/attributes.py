"""Which attributes a search can match and must return, level by level (PS3.18 10.6).

Levels follow the Study Root model (PS3.4 C.6.2): patient and study attributes are
study-level, ``pacsflow.dicom.levels`` lists the series-level ones, and the instance level
matches on the keys below. Names resolve through pydicom's data dictionary.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

from pydicom.datadict import keyword_for_tag, tag_for_keyword

from pacsflow.dicom.dictionary import dictionary_vr
from pacsflow.dicom.levels import SERIES_TAGS, STUDY_TAGS
from pacsflow.query.model import Level

__all__ = [
    "CONDITIONAL_RETURN_TAGS",
    "DATE_TIME_PAIRS",
    "INSTANCE_MATCH_TAGS",
    "REQUIRED_RETURN_TAGS",
    "Attribute",
    "attribute_level",
    "is_match_key",
    "key_level",
    "resolve",
]

# Transaction UID (0008,1195): the lock of an IN PROGRESS workitem, known only to its owner; a
# search never matches or returns it (PS3.4 CC.2.7.3, PS3.18 11.5.3.3).
TRANSACTION_UID: Final = "00081195"

# Derived attributes (PS3.18 Table 10.6.3-3/-4), computed by the index.
STUDY_DERIVED: Final = frozenset({"00080061", "00080062", "00201206", "00201208"})
SERIES_DERIVED: Final = frozenset({"00201209"})

# Instance-level matching keys: PS3.18 Table 10.6.1-5 plus the dates, numbers and SR/document
# attributes viewers and research pipelines filter on. Every other instance attribute is a
# return key only (includefield), which keeps the instance index small at a million instances.
INSTANCE_MATCH_TAGS: Final = frozenset(
    {
        "00080008",  # ImageType
        "00080012",  # InstanceCreationDate
        "00080013",  # InstanceCreationTime
        "00080016",  # SOPClassUID
        "00080018",  # SOPInstanceUID
        "00080022",  # AcquisitionDate
        "00080023",  # ContentDate
        "0008002A",  # AcquisitionDateTime
        "00080032",  # AcquisitionTime
        "00080033",  # ContentTime
        "00200012",  # AcquisitionNumber
        "00200013",  # InstanceNumber
        "00280008",  # NumberOfFrames
        "00420010",  # DocumentTitle
        "0040A032",  # ObservationDateTime
        "0040A043",  # ConceptNameCodeSequence
        "0040A491",  # CompletionFlag
        "0040A493",  # VerificationFlag
        "00700080",  # ContentLabel
        "00700081",  # ContentDescription
        # Non-Patient Instance models (PS3.18 Table 12.6.1-2; pacsflow.nonpatient.resources)
        "00080401",  # InventoryPurpose
        "00080402",  # InventoryInstanceDescription
        "00080403",  # InventoryLevel
        "00080426",  # InventoryCompletionStatus
        "00221095",  # ImplantName
        "00221097",  # ImplantPartNumber
        "00686210",  # ImplantSize
        "00686226",  # EffectiveDateTime
        "00686230",  # ImplantTargetAnatomySequence
        "00181030",  # ProtocolName
        "00189906",  # PotentialScheduledProtocolCodeSequence
        "00700084",  # ContentCreatorName
        "00720002",  # HangingProtocolName
        "00720004",  # HangingProtocolDescription
        "00720006",  # HangingProtocolLevel
        "00720008",  # HangingProtocolCreator
        "0072000A",  # HangingProtocolCreationDateTime
        "0072000C",  # HangingProtocolDefinitionSequence (>Modality, >Laterality, ...)
        "0072000E",  # HangingProtocolUserIdentificationCodeSequence
        "00760001",  # ImplantAssemblyTemplateName
        "00780001",  # ImplantTemplateGroupName
    }
)

# Date and time attributes matched as one date-time when a request gives both (PS3.4
# C.2.2.2.5.1, combined Date Time range matching).
DATE_TIME_PAIRS: Final = {
    "00080020": "00080030",  # StudyDate, StudyTime
    "00080021": "00080031",  # SeriesDate, SeriesTime
    "00080022": "00080032",  # AcquisitionDate, AcquisitionTime
    "00080023": "00080033",  # ContentDate, ContentTime
    "00080012": "00080013",  # InstanceCreationDate, InstanceCreationTime
    "00100030": "00100032",  # PatientBirthDate, PatientBirthTime
    "00400244": "00400245",  # PerformedProcedureStepStartDate, ...Time
}

# Attributes every result carries (PS3.18 Tables 10.6.3-3, -4 and -5), empty when absent...
REQUIRED_RETURN_TAGS: Final = {
    Level.STUDY: (
        "00080005", "00080020", "00080030", "00080050", "00080056", "00080061", "00080090",
        "00080201", "00081190", "00100010", "00100020", "00100030", "00100040", "0020000D",
        "00200010", "00201206", "00201208",
    ),
    Level.SERIES: (
        "00080005", "00080060", "00080201", "0008103E", "00081190", "0020000E", "00200011",
        "00201209", "00400244", "00400245", "00400275",
    ),
    Level.INSTANCE: (
        "00080005", "00080016", "00080018", "00080056", "00080201", "00081190", "00200013",
        "00280008", "00280010", "00280011", "00280100",
    ),
}  # fmt: skip
# ...except these, returned only when the entity has them ("if present" in the tables).
CONDITIONAL_RETURN_TAGS: Final = frozenset(
    {"00080005", "00080201", "00280008", "00280010", "00280011", "00280100"}
    | {"00400244", "00400245", "00400275"}
)


@dataclass(frozen=True, slots=True)
class Attribute:
    """A data element of the dictionary: tag as 8 uppercase hex digits, VR, keyword."""

    tag: str
    vr: str
    keyword: str


def resolve(name: str) -> Attribute | None:
    """The attribute a keyword or ``ggggeeee`` tag names, or ``None`` if it is not one."""
    if len(name) == 8 and all(c in "0123456789abcdefABCDEF" for c in name):
        number = int(name, 16)
    elif (found := tag_for_keyword(name)) is not None:
        number = found
    else:
        return None
    vr = dictionary_vr(number)
    if vr is None:
        return None
    return Attribute(f"{number:08X}", vr, keyword_for_tag(number) or f"{number:08X}")


def attribute_level(tag: str) -> Level:
    """The level an attribute belongs to in the Study Root model."""
    if tag in STUDY_TAGS or tag in STUDY_DERIVED or tag.startswith("0010"):
        return Level.STUDY
    if tag in SERIES_TAGS or tag in SERIES_DERIVED:
        return Level.SERIES
    return Level.INSTANCE


def key_level(tag: str, searched: Level) -> Level:
    """The level an attribute is matched at in a search for ``searched`` entities.

    The Unified Procedure Step model has one level (PS3.4 CC.2.8): in a workitem search every
    attribute is a workitem attribute.
    """
    return Level.WORKITEM if searched is Level.WORKITEM else attribute_level(tag)


def is_match_key(tag: str, searched: Level | None = None) -> bool:
    """True if searches can match on ``tag`` at its level (see the module docstring).

    A workitem search matches on every attribute but the Transaction UID (PS3.18 11.9: the
    attributes of Table CC.2.5-3 in PS3.4, which covers the whole UPS IOD).
    """
    if searched is Level.WORKITEM:
        return tag != TRANSACTION_UID
    level = attribute_level(tag)
    if tag == "00080005" or tag in {"00201206", "00201208", "00201209"}:
        return False
    if level is Level.INSTANCE:
        return tag in INSTANCE_MATCH_TAGS
    return True
