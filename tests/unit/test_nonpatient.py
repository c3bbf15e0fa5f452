"""The NPI resource table, the placement of Store parts and their Retrieve URLs (PS3.18 12)."""

from __future__ import annotations

from pydicom.uid import (
    ColorPaletteStorage,
    CTImageStorage,
    HangingProtocolStorage,
    InventoryStorage,
    ProtocolApprovalStorage,
)

from pacsflow.dicom.header import PartHeader
from pacsflow.dicom.status import FailureReason
from pacsflow.dicom.uids import NON_PATIENT_SOP_CLASSES
from pacsflow.nonpatient.resources import RESOURCES, is_npi_site, npi_site, resource_of
from pacsflow.nonpatient.service import NpiPlacement
from pacsflow.stow.response import PartOutcome, StowResult

PALETTES = RESOURCES["color-palettes"]
ROOT = "http://pacsflow/dicom-web"


def header(sop_class: str, sop: str = "1.2.3") -> PartHeader:
    return PartHeader("", "", sop, sop_class, "1.2.840.10008.1.2.1", True)


def test_the_categories_of_table_12_1_1_1() -> None:
    assert sorted(RESOURCES) == [
        "color-palettes",
        "defined-procedure-protocols",
        "hanging-protocols",
        "implant-templates",
        "inventories",
    ]
    assert resource_of(HangingProtocolStorage) is RESOURCES["hanging-protocols"]
    assert resource_of(InventoryStorage) is RESOURCES["inventories"]
    assert resource_of(ProtocolApprovalStorage) is None  # in no category of the current text
    classes = {uid for r in RESOURCES.values() for uid in r.sop_classes}
    assert classes <= set(NON_PATIENT_SOP_CLASSES)  # so the Studies resources refuse them


def test_the_partition_is_no_site() -> None:
    assert npi_site("default") == "default~npi" and is_npi_site("default~npi")
    assert not is_npi_site("default")


def test_a_part_of_the_category_is_filed_under_its_sop_instance_uid() -> None:
    placed = NpiPlacement(PALETTES).place(header(ColorPaletteStorage))
    assert isinstance(placed, PartHeader)
    assert (placed.study_uid, placed.series_uid, placed.sop_uid) == ("1.2.3",) * 3


def test_parts_of_other_categories_or_targets_fail() -> None:
    other = NpiPlacement(PALETTES).place(header(HangingProtocolStorage))
    assert isinstance(other, tuple) and other[0] is FailureReason.SOP_CLASS_NOT_SUPPORTED
    assert "/hanging-protocols" in other[1]
    patient = NpiPlacement(PALETTES).place(header(CTImageStorage))
    assert isinstance(patient, tuple) and "/studies" in patient[1]
    elsewhere = NpiPlacement(PALETTES, "9.9").place(header(ColorPaletteStorage))
    assert isinstance(elsewhere, tuple)
    assert elsewhere[0] is FailureReason.STUDY_INSTANCE_UID_MISMATCH
    bad = NpiPlacement(PALETTES).place(header(ColorPaletteStorage, "1.2.x"))
    assert isinstance(bad, tuple)


def test_retrieve_urls_name_the_npi_resource() -> None:
    part = PartOutcome(1, ColorPaletteStorage, "1.2.3", "1.2.3", "1.2.3", True, True)
    result = StowResult(None, "indexed", [part], resource="color-palettes")
    data = result.to_json(ROOT)
    assert data["00081190"]["Value"] == [f"{ROOT}/color-palettes/1.2.3"]
    assert data["00081199"]["Value"][0]["00081190"]["Value"] == [f"{ROOT}/color-palettes/1.2.3"]
