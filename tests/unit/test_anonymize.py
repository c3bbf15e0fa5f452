"""WADO-URI ``anonymize=yes``: the Basic Application Level Confidentiality Profile
(pacsflow.render.anonymize) on the real corpus and on a built data set.

On every file of ``modality/``, ``charset/``, ``objects/`` and ``derived/``: no attribute of
PS3.15 Table E.1-1 keeps its value (X gone, Z empty, D a dummy, U a new ``2.25.`` UID) at any
depth, no private, curve or overlay attribute is left, the pixel data is byte for byte the
stored one, the result writes and reads back, the stored data set is not changed. Across the
whole corpus, UIDs map one to one and the same way on every call: instances of one series share
one new Series Instance UID, and references between instances still resolve.
"""

from __future__ import annotations

import copy
import io
from collections import defaultdict
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pydicom
import pytest
from pydicom.dataelem import DataElement
from pydicom.dataset import Dataset
from pydicom.multival import MultiValue
from pydicom.sequence import Sequence

from pacsflow.render.anonymize import METHOD, anonymize, anonymized_uid
from pacsflow.render.confidentiality import ACTIONS, EXTENSIONS, TABLE_E1_1
from tests.support.corpus import CORPUS, corpus_files

# Some corpus files hold UIDs and values pydicom warns about when it reads them.
pytestmark = pytest.mark.filterwarnings("ignore:Invalid value for VR UI", "ignore:The value length")
SECRET = "archive-secret"
FOLDERS = ("modality/", "charset/", "objects/", "derived/")
FILES = [p for p in corpus_files() if str(p.relative_to(CORPUS)).startswith(FOLDERS)]
Path_ = tuple[tuple[int, int], ...]
DUMMIES = {"ANONYMIZED", "19000101", "000000", "19000101000000", "0"}


def _id(path: Path) -> str:
    return str(path.relative_to(CORPUS))


def _read(path: Path) -> Dataset:
    return pydicom.dcmread(path, force=True)


def _walk(ds: Dataset, path: Path_ = ()) -> Iterator[tuple[Path_, DataElement]]:
    """Every element of ``ds`` at every depth, with the (sequence tag, item index) path to it."""
    for elem in ds:
        yield path, elem
        if elem.VR == "SQ":
            for index, item in enumerate(elem.value or ()):
                yield from _walk(item, (*path, (int(elem.tag), index)))


def _find(ds: Dataset, path: Path_, tag: int) -> DataElement | None:
    for seq_tag, index in path:
        items = ds.get(seq_tag)
        if items is None or items.VR != "SQ" or index >= len(items.value or ()):
            return None
        ds = items.value[index]
    return ds.get(tag)


def _empty(value: Any) -> bool:
    if isinstance(value, list | MultiValue | Sequence):
        return len(value) == 0
    return value is None or value == b"" or str(value) == ""


def _values(value: Any) -> list[str]:
    return [str(v) for v in (value if isinstance(value, list | MultiValue) else [value])]


@pytest.mark.parametrize("path", FILES, ids=_id)
def test_no_profile_attribute_keeps_its_value(path: Path) -> None:
    ds = _read(path)
    result = anonymize(ds, secret=SECRET)
    checked = 0
    for where, elem in _walk(ds):
        action = ACTIONS.get(int(elem.tag))
        if action in (None, "K") or _empty(elem.value):
            continue
        after = _find(result, where, int(elem.tag))
        name = f"{elem.keyword} ({TABLE_E1_1.get(int(elem.tag), 'extension')}) at {where}"
        checked += 1
        if after is None:  # removed, or inside a sequence that was
            continue
        if action == "X":
            raise AssertionError(f"{name} is still there")
        if action == "Z":
            assert _empty(after.value), name
        elif elem.VR == "SQ":  # D of a sequence: its items de-identified (checked one by one)
            assert after.VR == "SQ", name
        elif elem.VR == "UI":
            for old, new in zip(_values(elem.value), _values(after.value), strict=True):
                assert new == old if old.startswith("1.2.840.10008.") else new != old, name
        else:  # a dummy (which the stored value may happen to be already)
            assert after.value != elem.value or str(after.value) in DUMMIES, name
    assert checked
    assert result.PatientIdentityRemoved == "YES"
    assert METHOD in _values(result.DeidentificationMethod)
    codes = result.DeidentificationMethodCodeSequence
    assert ("113100", "DCM") in [(c.CodeValue, c.CodingSchemeDesignator) for c in codes]


@pytest.mark.parametrize("path", FILES, ids=_id)
def test_private_curve_overlay_and_patient_attributes_are_gone(path: Path) -> None:
    result = anonymize(_read(path), secret=SECRET)
    for _, elem in _walk(result):
        group = elem.tag.group
        assert not elem.tag.is_private, elem
        assert not (0x5000 <= group <= 0x50FF or 0x6000 <= group <= 0x60FF), elem
        if group == 0x0010:
            assert elem.keyword in (
                "PatientName",
                "PatientID",
                "PatientBirthDate",
                "PatientSex",
                "PatientSexNeutered",
                "PatientSpeciesDescription",
                "PatientSpeciesCodeSequence",
                "PatientBreedDescription",
                "PatientBreedCodeSequence",
                "QualityControlSubject",
                "AnatomicalOrientationType",
                "ExaminedBodyThickness",
            ), elem
        if elem.keyword in ("PatientName", "PatientID", "PatientBirthDate", "PatientSex"):
            assert _empty(elem.value), elem


@pytest.mark.parametrize("path", FILES, ids=_id)
def test_pixel_data_untouched_and_result_writes_and_reads_back(path: Path) -> None:
    ds = _read(path)
    stored = copy.deepcopy(ds)
    result = anonymize(ds, secret=SECRET)
    assert ds == stored  # the stored object is never changed
    for keyword in ("PixelData", "FloatPixelData", "DoubleFloatPixelData", "WaveformSequence"):
        if keyword in ds:
            assert result[keyword].value == ds[keyword].value
    buffer = io.BytesIO()
    pydicom.dcmwrite(buffer, result)
    again = pydicom.dcmread(io.BytesIO(buffer.getvalue()), force=True)
    assert again.PatientIdentityRemoved == "YES"
    if not str(ds.get("SOPInstanceUID", "1.2.840.10008.")).startswith("1.2.840.10008."):
        assert again.SOPInstanceUID == result.SOPInstanceUID != ds.SOPInstanceUID
        assert str(again.SOPInstanceUID).startswith("2.25.") and len(again.SOPInstanceUID) <= 64
    if "PixelData" in ds:  # as written: an odd length gets its pad byte
        assert again.PixelData[: len(ds.PixelData)] == ds.PixelData
        assert len(again.PixelData) - len(ds.PixelData) in (0, 1)
    meta = getattr(ds, "file_meta", None)
    if meta is not None and meta.get("MediaStorageSOPInstanceUID") == ds.get("SOPInstanceUID"):
        assert again.file_meta.MediaStorageSOPInstanceUID == again.SOPInstanceUID


def test_uids_map_one_to_one_and_the_same_on_every_call() -> None:
    """Across the corpus: one new Study/Series UID per original, identical on two calls."""
    studies: dict[str, set[str]] = defaultdict(set)
    series: dict[str, set[str]] = defaultdict(set)
    instances: dict[str, set[str]] = defaultdict(set)
    sizes: dict[str, set[str]] = defaultdict(set)
    for path in corpus_files():
        ds = _read(path)
        if "SOPInstanceUID" not in ds or "SeriesInstanceUID" not in ds:
            continue
        first, second = anonymize(ds, secret=SECRET), anonymize(ds, secret=SECRET)
        sizes[str(ds.SeriesInstanceUID)].add(str(ds.SOPInstanceUID))
        for keyword, seen in (
            ("StudyInstanceUID", studies),
            ("SeriesInstanceUID", series),
            ("SOPInstanceUID", instances),
        ):
            assert first[keyword].value == second[keyword].value
            seen[str(ds[keyword].value)].add(str(first[keyword].value))
    for seen in (studies, series, instances):
        assert all(len(new) == 1 for new in seen.values())  # one original, one new UID
        assert len({next(iter(new)) for new in seen.values()}) == len(seen)  # and no collision
    assert max(len(sops) for sops in sizes.values()) > 1  # series of several instances


def test_instances_of_one_series_share_one_new_series_uid() -> None:
    paths = [p for p in corpus_files() if p.name.startswith("enhanced_MR_10frame")]
    originals = {str(_read(p).SeriesInstanceUID) for p in paths}
    assert len(paths) >= 4 and len(originals) == 1
    new = {str(anonymize(_read(p), secret=SECRET).SeriesInstanceUID) for p in paths}
    assert len(new) == 1 and new != originals


def test_references_between_instances_still_resolve() -> None:
    ct = anonymize(_read(CORPUS / "modality/CT_small.dcm"), secret=SECRET)
    kos = anonymize(_read(CORPUS / "derived/KOS_key_image_CT_small.dcm"), secret=SECRET)
    gsps = anonymize(_read(CORPUS / "derived/GSPS_for_CT_small.dcm"), secret=SECRET)
    pdf = anonymize(_read(CORPUS / "derived/encapsulated_pdf_in_CT_small_study.dcm"), secret=SECRET)
    referenced = {
        str(e.value)
        for ds in (kos, gsps)
        for _, e in _walk(ds)
        if e.keyword == "ReferencedSOPInstanceUID"
    }
    assert str(ct.SOPInstanceUID) in referenced
    assert ct.StudyInstanceUID == kos.StudyInstanceUID == pdf.StudyInstanceUID
    assert ct.SeriesInstanceUID in {
        str(e.value) for _, e in _walk(gsps) if e.keyword == "SeriesInstanceUID"
    }


def test_another_secret_gives_other_uids() -> None:
    ds = _read(CORPUS / "modality/CT_small.dcm")
    assert anonymize(ds, secret="a").SOPInstanceUID != anonymize(ds, secret="b").SOPInstanceUID
    assert (
        anonymized_uid("1.2.3", "a") == anonymized_uid("1.2.3", "a") != anonymized_uid("1.2.3", "b")
    )
    assert anonymized_uid("1.2.840.10008.1.2.1", "a") == "1.2.840.10008.1.2.1"
    with pytest.raises(ValueError):
        anonymize(ds, secret="")


def _item(**values: Any) -> Dataset:
    item = Dataset()
    for keyword, value in values.items():
        setattr(item, keyword, value)
    return item


def _built() -> Dataset:
    ds = Dataset()
    ds.SpecificCharacterSet = "ISO_IR 192"
    ds.SOPClassUID = "1.2.840.10008.5.1.4.1.1.88.33"
    ds.SOPInstanceUID = "1.2.3.4.5"
    ds.StudyInstanceUID, ds.SeriesInstanceUID, ds.FrameOfReferenceUID = "1.2.3", "1.2.3.4", "9.8"
    ds.PatientName, ds.PatientID, ds.PatientBirthDate = "Müller^Jürgen", "PID-1", "19700101"
    ds.PatientAge, ds.OtherPatientIDs, ds.PatientAddress = "054Y", "OTHER-7", "Hauptstr. 1"
    ds.PatientSpeciesDescription, ds.PatientSizeCodeSequence = (
        "Homo sapiens",
        [_item(CodeValue="L")],
    )
    ds.InstitutionName, ds.ContentDate, ds.StudyDate = "Klinikum Nord", "20240102", "20240102"
    ds.ImageComments, ds.DeviceSerialNumber = "Patient Jürgen Müller, bed 7", "SN-1234"
    ds.DeidentificationMethod = "Earlier method"
    ds.PaletteColorLookupTableUID = "1.2.840.10008.1.5.1"
    ds.add_new(0x00640003, "UI", "9.8")  # Source Frame of Reference UID: not in the table
    ds.add_new(0x00091010, "LO", "private")
    ds.add_new(0x60003000, "OW", b"\x01\x02")
    ds.add_new(0x60000010, "US", 8)
    ds.add_new(0x50000005, "US", 1)
    ds.ReferencedImageSequence = [
        _item(
            ReferencedSOPClassUID="1.2.840.10008.5.1.4.1.1.2", ReferencedSOPInstanceUID="1.2.3.4.6"
        )
    ]
    ds.ReferencedStudySequence = [_item(ReferencedSOPInstanceUID="1.2.3")]
    ds.RequestAttributesSequence = [_item(RequestedProcedureID="RP-1")]
    person = _item(PersonIdentificationCodeSequence=[_item(CodeValue="J.M.", CodeMeaning="J M")])
    ds.OperatorIdentificationSequence = [person]
    ds.VerifyingObserverSequence = [
        _item(VerifyingObserverName="Doe^John", VerifyingOrganization="Klinikum Nord")
    ]
    ds.VerifyingObserverSequence[0].VerificationDateTime = "20240102120000"
    concept = [_item(CodeValue="121071", CodingSchemeDesignator="DCM", CodeMeaning="Finding")]
    text = _item(RelationshipType="CONTAINS", ValueType="TEXT", TextValue="Jürgen Müller, 54")
    text.ConceptNameCodeSequence = concept
    text.add_new(0x00111001, "LO", "private in an item")
    name = _item(RelationshipType="HAS OBS CONTEXT", ValueType="PNAME", PersonName="Doe^John")
    uid = _item(RelationshipType="HAS OBS CONTEXT", ValueType="UIDREF", UID="1.2.3")
    ds.ValueType, ds.ContentSequence = "CONTAINER", [name, uid, text]
    return ds


def test_each_action_on_a_built_data_set() -> None:
    ds = _built()
    result = anonymize(ds, secret=SECRET)
    assert result.PatientName == "" and result.PatientID == "" and result.PatientBirthDate == ""
    for keyword in ("PatientAge", "OtherPatientIDs", "PatientAddress", "ImageComments"):
        assert keyword not in result
    assert "RequestAttributesSequence" not in result and "PatientSizeCodeSequence" not in result
    assert result.PatientSpeciesDescription == "Homo sapiens"
    assert result.InstitutionName == "ANONYMIZED" and result.DeviceSerialNumber == "ANONYMIZED"
    assert result.ContentDate == "19000101" and result.StudyDate == ""
    assert result.SOPInstanceUID == anonymized_uid("1.2.3.4.5", SECRET)
    assert result.StudyInstanceUID == anonymized_uid("1.2.3", SECRET)
    assert result[0x00640003].value == result.FrameOfReferenceUID == anonymized_uid("9.8", SECRET)
    assert result.PaletteColorLookupTableUID == "1.2.840.10008.1.5.1"  # well-known: kept
    assert result.SOPClassUID == ds.SOPClassUID
    assert [e.tag for e in result if e.tag.is_private or e.tag.group in (0x5000, 0x6000)] == []
    image = result.ReferencedImageSequence[0]
    assert image.ReferencedSOPClassUID == "1.2.840.10008.5.1.4.1.1.2"
    assert image.ReferencedSOPInstanceUID == anonymized_uid("1.2.3.4.6", SECRET)
    assert len(result.ReferencedStudySequence) == 0
    code = result.OperatorIdentificationSequence[0].PersonIdentificationCodeSequence
    assert (
        len(code) == 1 and code[0].CodeValue == "ANONYMIZED" and code[0].CodeMeaning == "ANONYMIZED"
    )
    observer = result.VerifyingObserverSequence[0]
    assert observer.VerifyingObserverName == "ANONYMIZED"
    assert observer.VerifyingOrganization == "ANONYMIZED"
    assert observer.VerificationDateTime == "19000101000000"
    name, uid, text = result.ContentSequence
    assert name.PersonName == "ANONYMIZED"
    assert str(uid.UID) == str(result.StudyInstanceUID)
    assert (
        text.TextValue == "ANONYMIZED" and text.ConceptNameCodeSequence[0].CodeMeaning == "Finding"
    )
    assert not [e for e in text if e.tag.is_private]
    assert result.DeidentificationMethod == ["Earlier method", METHOD]
    assert result.LongitudinalTemporalInformationModified == "REMOVED"
    assert ds.PatientName == "Müller^Jürgen" and ds[0x00091010].value == "private"  # unchanged


def test_table_covers_the_patient_identification_rows() -> None:
    expected = {
        "PatientName": "Z",
        "PatientID": "Z",
        "PatientBirthDate": "Z",
        "PatientSex": "Z",
        "OtherPatientIDs": "X",
        "OtherPatientIDsSequence": "X",
        "OtherPatientNames": "X",
        "PatientAddress": "X",
        "PatientBirthName": "X",
        "PatientMotherBirthName": "X",
        "PatientTelephoneNumbers": "X",
        "AccessionNumber": "Z",
        "StudyID": "Z",
        "StudyDate": "Z",
        "InstitutionName": "X/Z/D",
        "InstitutionAddress": "X",
        "ReferringPhysicianName": "Z",
        "PerformingPhysicianName": "X",
        "OperatorsName": "X/Z/D",
        "DeviceSerialNumber": "X/Z/D",
        "StationName": "X/Z/D",
        "StudyInstanceUID": "U",
        "SeriesInstanceUID": "U",
        "SOPInstanceUID": "U",
        "FrameOfReferenceUID": "U",
        "ReferencedSOPInstanceUID": "U",
        "ImageComments": "X",
        "PatientComments": "X",
        "ContentSequence": "D",
    }
    by_keyword = {pydicom.datadict.keyword_for_tag(tag): code for tag, code in TABLE_E1_1.items()}
    assert {k: by_keyword.get(k) for k in expected} == expected
    assert len(TABLE_E1_1) >= 450 and not set(EXTENSIONS) & set(TABLE_E1_1)
