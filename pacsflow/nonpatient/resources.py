"""The NPI resource categories of PS3.18 Table 12.1.1-1 and where their instances are kept.

Each category (``npi-name``) holds the Storage SOP Classes of its Information Model (PS3.4
Table GG.3-1: Color Palette X, Defined Procedure Protocol HH, Hanging Protocol U, Implant
Template BB, Inventory); its search returns the attributes of the model (PS3.18 Table 12.6.1-2)
besides those of every result. Protocol Approval Storage has its own Query/Retrieve model
(PS3.4 Annex II) and is in no category of the current text, so it is refused everywhere.

Non-patient instances travel the Studies pipeline (ingest log, validation, object store, index)
in a partition of their own, ``{site}~npi`` (``~`` is not allowed in a site name, so no site
can reach it): Studies searches and retrievals of the site never see them. An NPI instance has
no study or series (its IOD has no Patient IE at its root, PS3.18 12.1), so it is filed under
its SOP Instance UID at both levels: keys, topic key and index entry derive from that UID.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Final

from pydicom.datadict import tag_for_keyword
from pydicom.uid import (
    ColorPaletteStorage,
    CTDefinedProcedureProtocolStorage,
    GenericImplantTemplateStorage,
    HangingProtocolStorage,
    ImplantAssemblyTemplateStorage,
    ImplantTemplateGroupStorage,
    InventoryStorage,
    XADefinedProcedureProtocolStorage,
)

from pacsflow.dicom.header import PartHeader

__all__ = [
    "RESOURCES",
    "NpiResource",
    "file_under_instance",
    "is_npi_site",
    "npi_site",
    "owner_site",
    "resource_of",
]

_SUFFIX: Final = "~npi"


@dataclass(frozen=True, slots=True)
class NpiResource:
    """One row of PS3.18 Table 12.1.1-1: the ``npi-name``, its SOP Classes and return keys."""

    name: str
    title: str
    model: str  # the PS3.4 section of its Information Model (Inventory: its SOP Class table)
    sop_classes: frozenset[str]
    return_tags: tuple[str, ...]  # besides SOPClassUID, SOPInstanceUID, RetrieveURL

    def __str__(self) -> str:
        return self.title


def _tags(*keywords: str) -> tuple[str, ...]:
    """The tags (``ggggeeee``) of data dictionary keywords."""
    return tuple(f"{tag_for_keyword(k):08X}" for k in keywords)


_COMMON: Final = ("SpecificCharacterSet", "InstanceCreationDate", "InstanceCreationTime")
RESOURCES: Final[dict[str, NpiResource]] = {
    r.name: r
    for r in (
        NpiResource(
            "color-palettes",
            "Color Palette",
            "X.1.3",
            frozenset({ColorPaletteStorage}),
            _tags(*_COMMON, "ContentLabel", "ContentDescription", "ContentCreatorName"),
        ),
        NpiResource(
            "defined-procedure-protocols",
            "Defined Procedure Protocol",
            "HH.1.3",
            frozenset({CTDefinedProcedureProtocolStorage, XADefinedProcedureProtocolStorage}),
            _tags(
                *_COMMON,
                "Manufacturer",
                "Modality",
                "ProtocolName",
                "PotentialScheduledProtocolCodeSequence",
                "ContentLabel",
                "ContentDescription",
                "ContentCreatorName",
            ),
        ),
        NpiResource(
            "hanging-protocols",
            "Hanging Protocol",
            "U.1.3",
            frozenset({HangingProtocolStorage}),
            _tags(
                *_COMMON,
                "HangingProtocolName",
                "HangingProtocolDescription",
                "HangingProtocolLevel",
                "HangingProtocolCreator",
                "HangingProtocolCreationDateTime",
                "HangingProtocolDefinitionSequence",
                "HangingProtocolUserIdentificationCodeSequence",
                "NumberOfPriorsReferenced",
            ),
        ),
        NpiResource(
            "implant-templates",
            "Implant Template",
            "BB.1.3",
            frozenset(
                {
                    GenericImplantTemplateStorage,
                    ImplantAssemblyTemplateStorage,
                    ImplantTemplateGroupStorage,
                }
            ),
            _tags(
                *_COMMON,
                "Manufacturer",
                "ImplantName",
                "ImplantPartNumber",
                "ImplantSize",
                "EffectiveDateTime",
                "ImplantTargetAnatomySequence",
                "ImplantAssemblyTemplateName",
                "ImplantTemplateGroupName",
            ),
        ),
        NpiResource(
            "inventories",
            "Inventory",
            "GG.3",
            frozenset({InventoryStorage}),
            _tags(
                *_COMMON,
                "InventoryPurpose",
                "InventoryInstanceDescription",
                "InventoryLevel",
                "InventoryCompletionStatus",
                "ContentDate",
            ),
        ),
    )
}
_BY_CLASS: Final = {uid: r for r in RESOURCES.values() for uid in r.sop_classes}


def resource_of(sop_class_uid: str) -> NpiResource | None:
    """The category whose resources hold instances of ``sop_class_uid``, or ``None``."""
    return _BY_CLASS.get(sop_class_uid)


def npi_site(site: str) -> str:
    """The partition that keeps the non-patient instances of ``site``."""
    return site + _SUFFIX


def is_npi_site(site: str) -> bool:
    """True for a partition of non-patient instances (``npi_site``)."""
    return site.endswith(_SUFFIX)


def owner_site(site: str) -> str:
    """The site a partition belongs to: ``site`` itself, or the site of an ``npi_site``."""
    return site.removesuffix(_SUFFIX)


def file_under_instance(header: PartHeader) -> PartHeader:
    """The header of an NPI part filed under its SOP Instance UID as study and series."""
    return replace(header, study_uid=header.sop_uid, series_uid=header.sop_uid)
