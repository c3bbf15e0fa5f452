"""The one dictionary VR lookup (``pacsflow.dicom.dictionary``, PS3.5 A.1 c) and its readers."""

from __future__ import annotations

import io

import pydicom
import pytest
from pydicom.dataset import Dataset
from pydicom.uid import ImplicitVRLittleEndian

from pacsflow.dicom.dictionary import dictionary_vr, dictionary_vrs
from pacsflow.dicom.validate import validate_instance
from pacsflow.export.columns import column_for
from pacsflow.query.attributes import resolve
from pacsflow.ups.search import shape, workitem_query
from tests.support.corpus import CORPUS

INSTANCE_PATH = "studies/{study}/series/{series}/instances/{instance}"


@pytest.mark.parametrize(
    ("tag", "vr"),
    [
        (0x7FE00010, "OW"),  # Pixel Data: OB or OW
        (0x60003000, "OW"),  # Overlay Data (60xx,3000), a repeating group: OB or OW
        (0x54001010, "OW"),  # Waveform Data: OB or OW
        (0x00283006, "OW"),  # LUT Data: US or OW
        (0x00281200, "OW"),  # Gray Lookup Table Data: US or SS or OW
        (0x00280106, "US"),  # Smallest Image Pixel Value: US or SS
        (0x00100010, "PN"),
        (0x00400275, "SQ"),
    ],
)
def test_one_vr_per_standard_attribute(tag: int, vr: str) -> None:
    assert dictionary_vr(tag) == vr


@pytest.mark.parametrize("tag", [0x00091001, 0x00090010, 0x0008FFF0])
def test_private_and_unknown_tags_have_none(tag: int) -> None:
    assert dictionary_vr(tag) is None


def test_the_dictionary_lists_every_vr_in_its_order() -> None:
    assert dictionary_vrs(0x00281200) == ("US", "SS", "OW")
    assert dictionary_vrs(0x00100010) == ("PN",)
    assert dictionary_vrs(0x00091001) is None and dictionary_vrs(0x0008FFF0) is None


def test_workitem_search_and_the_export_take_the_same_vr_as_qido() -> None:
    """An empty attribute named by includefield, and an export column, of a US or SS tag."""
    query = workitem_query([("includefield", "00280106")], 100)
    assert shape({}, query)["00280106"] == {"vr": "US"}
    column = column_for("00280106")
    assert column is not None and column.vr == "US"


def test_qido_resolves_names_through_the_same_lookup() -> None:
    assert resolve("LUTData") is not None and resolve("LUTData").vr == "OW"  # type: ignore[union-attr]
    assert resolve("00280106").vr == "US"  # type: ignore[union-attr]


def test_implicit_vr_lut_data_is_bulk_to_the_scan_and_the_metadata_alike() -> None:
    """LUT Data (US or OW) in Implicit VR: the BulkDataURI the metadata names has a byte range."""
    ds = pydicom.dcmread(CORPUS / "transfer-syntax/implicit_le_MR_small.dcm")
    lut = Dataset()
    lut.LUTDescriptor = [1024, 0, 16]
    values = b"".join(n.to_bytes(2, "little") for n in range(1024))
    lut.LUTData = values  # 2048 bytes: above the inline limit
    ds.VOILUTSequence = [lut]
    ds.file_meta.TransferSyntaxUID = ImplicitVRLittleEndian
    out = io.BytesIO()
    ds.save_as(out, implicit_vr=True, little_endian=True, enforce_file_format=True)
    data = out.getvalue()

    validated = validate_instance(data, len(data), INSTANCE_PATH)

    element = validated.metadata["00283010"]["Value"][0]["00283006"]
    assert element["vr"] == "OW"
    path = element["BulkDataURI"].split("/bulkdata/", 1)[1]
    offset, length = validated.bulk[path]
    assert data[offset : offset + length] == values
