"""Validation of stored instances (``pacsflow.dicom.validate``) against the corpus and pydicom."""

from __future__ import annotations

import base64
import csv
import warnings
from pathlib import Path
from typing import Any

import pydicom
import pytest
from pydicom.dataset import Dataset
from pydicom.encaps import generate_frames
from pydicom.uid import UID, DeflatedExplicitVRLittleEndian, ImplicitVRLittleEndian

from pacsflow.dicom.header import PartRejected
from pacsflow.dicom.status import FailureReason
from pacsflow.dicom.uids import (
    NATIVE_TRANSFER_SYNTAXES,
)
from pacsflow.dicom.validate import ValidatedInstance, validate_instance
from tests.support.corpus import CORPUS, corpus_files

# The corpus holds invalid values on purpose (over-long LO, non-conforming UIDs); pydicom warns.
pytestmark = pytest.mark.filterwarnings("ignore::UserWarning:pydicom")

INSTANCE_PATH = "studies/{study}/series/{series}/instances/{instance}"
JsonDict = dict[str, Any]

NOT_A_STUDY_OBJECT = {
    "objects/DICOMDIR_media_directory.dcm",
    "objects/color_palette_hotiron.dcm",
}
# Their File Meta lacks the Type 1 Media Storage SOP Class UID (PS3.10 7.1): the strict scan
# refuses them before the hierarchy check would (see test_scan.py).
META_LACKS_TYPE_1 = {
    "structure/empty_specific_character_set.dcm",
    "structure/private_sq_nested.dcm",
}
# Failure Reasons of malformed files that are not CANNOT_UNDERSTAND (C000).
MALFORMED_REASONS = {
    # its SOP Instance UID is a hex digest, not a UID (PS3.5 9.1)
    "malformed/invalid_sequence_encoding.dcm": FailureReason.DATA_SET_DOES_NOT_MATCH_SOP_CLASS,
}
# pydicom cannot split it (the Basic Offset Table has 5 entries for 4 frames, each off by a few
# bytes); tested on its own below.
XA_4FRAME = "modality/XA_4frame_jpeg_lossless.dcm"


def _rel(path: Path) -> str:
    return path.relative_to(CORPUS).as_posix()


def _read(path: Path) -> Dataset:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return pydicom.dcmread(path, force=True)


def _validate(path: Path) -> ValidatedInstance:
    return validate_instance(path, path.stat().st_size, INSTANCE_PATH)


def _manifest_transfer_syntax() -> dict[str, str]:
    with (CORPUS / "MANIFEST.csv").open() as fp:
        return {row["path"]: row["TransferSyntaxUID"] for row in csv.DictReader(fp)}


def _facts(path: Path) -> tuple[bool, bool]:
    """Whether pydicom finds a Study Instance UID and Pixel Data in the file."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ds = pydicom.dcmread(path, force=True, defer_size=1024)
        return bool(ds.get("StudyInstanceUID")), "PixelData" in ds


TRANSFER_SYNTAX = _manifest_transfer_syntax()
FACTS = {_rel(p): _facts(p) for p in corpus_files()}
LACKING_STUDY = [
    p
    for p in corpus_files()
    if _rel(p) not in NOT_A_STUDY_OBJECT | META_LACKS_TYPE_1 and not FACTS[_rel(p)][0]
]
VALID = [
    p
    for p in corpus_files()
    if _rel(p) not in NOT_A_STUDY_OBJECT | META_LACKS_TYPE_1 and p not in LACKING_STUDY
]
WITH_PIXELS = [p for p in VALID if FACTS[_rel(p)][1]]
NATIVE = [
    p
    for p in WITH_PIXELS
    if TRANSFER_SYNTAX[_rel(p)] in NATIVE_TRANSFER_SYNTAXES - {DeflatedExplicitVRLittleEndian}
]
ENCAPSULATED = [p for p in WITH_PIXELS if UID(TRANSFER_SYNTAX[_rel(p)]).is_compressed]


@pytest.mark.parametrize("path", corpus_files(malformed=True), ids=_rel)
def test_malformed_file_is_rejected_with_a_failure_reason(path: Path) -> None:
    with pytest.raises(PartRejected) as info:
        _validate(path)

    assert isinstance(info.value.reason, FailureReason)
    assert info.value.reason == MALFORMED_REASONS.get(_rel(path), FailureReason.CANNOT_UNDERSTAND)
    assert info.value.message


@pytest.mark.parametrize("name", sorted(NOT_A_STUDY_OBJECT))
def test_non_patient_objects_are_not_supported(name: str) -> None:
    with pytest.raises(PartRejected) as info:
        _validate(CORPUS / name)

    assert info.value.reason == FailureReason.SOP_CLASS_NOT_SUPPORTED


@pytest.mark.parametrize("path", LACKING_STUDY, ids=_rel)
def test_file_without_study_instance_uid_does_not_match_its_sop_class(path: Path) -> None:
    with pytest.raises(PartRejected) as info:
        _validate(path)

    assert info.value.reason == FailureReason.DATA_SET_DOES_NOT_MATCH_SOP_CLASS
    assert "StudyInstanceUID" in info.value.message


@pytest.mark.parametrize("name", sorted(META_LACKS_TYPE_1))
def test_file_meta_without_type_1_elements_cannot_be_understood(name: str) -> None:
    with pytest.raises(PartRejected) as info:
        _validate(CORPUS / name)

    assert info.value.reason == FailureReason.CANNOT_UNDERSTAND


def test_the_corpus_split_is_what_the_readme_describes() -> None:
    # A guard against parametrizations that silently shrink: 4 JPEG-LS near-lossless files,
    # 2 charset-in-sequence files and 3 structure/ files carry no Study Instance UID.
    assert len(LACKING_STUDY) == 9
    assert len(VALID) == len(corpus_files()) - 13
    assert len(ENCAPSULATED) + len(NATIVE) + 2 == len(WITH_PIXELS)  # + 2 deflated


def _comparable(attributes: JsonDict, encapsulated: bool) -> JsonDict:
    """DICOM JSON with the differences pacsflow documents made equal.

    * Every BulkDataURI compares equal: only that the value is bulk matters.
    * An empty sequence has no "Value" (PS3.18 F.2.5); pydicom writes ``"Value": []``.
    * Encapsulated Pixel Data is always bulk: its fragments are served as frames, never inline;
      pydicom inlines values under its threshold.
    """
    out: JsonDict = {}
    for tag, element in attributes.items():
        if "BulkDataURI" in element or (encapsulated and tag == "7FE00010"):
            element = {"vr": element["vr"], "BulkDataURI": "..."}
        elif element.get("vr") == "SQ":
            items = [_comparable(item, False) for item in element.get("Value", [])]
            element = {"vr": "SQ", "Value": items} if items else {"vr": "SQ"}
        out[tag] = element
    return out


def _private_implicit_bulk(ours: JsonDict, theirs: JsonDict) -> set[str]:
    """Top-level private bulk values of an Implicit VR object whose VR differs.

    pacsflow says UN (it does not decode a bulk value to learn its VR); pydicom asks its private
    dictionary (OB for the Siemens CSA headers). Both are valid DICOM JSON (PS3.18 F.2.3).
    """
    return {
        tag
        for tag, element in ours.items()
        if int(tag[:4], 16) % 2 == 1
        and element == {"vr": "UN", "BulkDataURI": "..."}
        and theirs.get(tag, {}).get("BulkDataURI")
    }


def _bulk_by_length(js: dict[str, Any]) -> dict[str, Any]:
    """pydicom's JSON with binary values over 1024 bytes as BulkDataURI (pacsflow's rule)."""
    out: dict[str, Any] = {}
    for tag, element in js.items():
        if "InlineBinary" in element and len(base64.b64decode(element["InlineBinary"])) > 1024:
            element = {"vr": element["vr"], "BulkDataURI": "..."}
        elif element.get("vr") == "SQ" and element.get("Value"):
            element = {**element, "Value": [_bulk_by_length(item) for item in element["Value"]]}
        out[tag] = element
    return out


@pytest.mark.parametrize("path", VALID, ids=_rel)
def test_metadata_equals_pydicom_json(path: Path) -> None:
    validated = _validate(path)
    ds = _read(path)

    encapsulated = validated.transfer_syntax not in NATIVE_TRANSFER_SYNTAXES
    ours = _comparable(validated.metadata, encapsulated)
    theirs = _comparable(
        _bulk_by_length(ds.to_json_dict(bulk_data_threshold=1 << 62)), encapsulated
    )
    if validated.transfer_syntax == ImplicitVRLittleEndian:
        for tag in _private_implicit_bulk(ours, theirs):
            theirs[tag] = ours[tag]
    assert ours == theirs
    assert not [tag for tag in validated.metadata if tag.startswith("0002")]


@pytest.mark.parametrize("path", VALID, ids=_rel)
def test_bulk_data_uris_name_the_instance(path: Path) -> None:
    validated = _validate(path)

    prefix = (
        f"studies/{validated.study_uid}/series/{validated.series_uid}"
        f"/instances/{validated.sop_uid}/bulkdata/"
    )
    uris = list(_bulk_uris(validated.metadata))
    assert all(uri.startswith(prefix) for uri in uris)
    assert len(set(uris)) == len(uris)


def _bulk_uris(attributes: JsonDict) -> list[str]:
    uris = []
    for element in attributes.values():
        if "BulkDataURI" in element:
            uris.append(element["BulkDataURI"])
        for item in element.get("Value", []) if element.get("vr") == "SQ" else []:
            uris += _bulk_uris(item)
    return uris


@pytest.mark.parametrize("path", VALID, ids=_rel)
def test_identifying_attributes_equal_pydicom(path: Path) -> None:
    validated = _validate(path)
    ds = _read(path)

    assert validated.study_uid == ds.StudyInstanceUID
    assert validated.series_uid == ds.SeriesInstanceUID
    assert validated.sop_uid == ds.SOPInstanceUID
    assert validated.sop_class_uid == ds.SOPClassUID


def _frames(validated: ValidatedInstance, path: Path) -> list[bytes]:
    """Each frame's bytes, read through the frame table."""
    assert validated.frame_table is not None
    data = path.read_bytes()
    return [
        b"".join(data[offset : offset + length] for offset, length in segments)
        for segments in validated.frame_table.frames
    ]


@pytest.mark.parametrize("path", VALID, ids=_rel)
def test_frame_table_has_number_of_frames(path: Path) -> None:
    validated = _validate(path)
    ds = _read(path)

    if "PixelData" not in ds or validated.transfer_syntax == DeflatedExplicitVRLittleEndian:
        # No pixels, or offsets into the inflated stream that a byte range cannot address.
        assert validated.frame_table is None
        return
    assert validated.frame_table is not None
    assert len(validated.frame_table.frames) == int(ds.get("NumberOfFrames") or 1)
    assert validated.frame_table.transfer_syntax == validated.transfer_syntax


@pytest.mark.parametrize("path", NATIVE, ids=_rel)
def test_native_frames_equal_pydicom_pixel_data(path: Path) -> None:
    validated = _validate(path)
    pixel_data = _read(path).PixelData

    frames = _frames(validated, path)
    assert validated.frame_table is not None
    assert not validated.frame_table.encapsulated
    size = len(frames[0])
    assert all(len(frame) == size for frame in frames)
    assert frames == [pixel_data[i * size : (i + 1) * size] for i in range(len(frames))]
    assert len(pixel_data) >= size * len(frames)


@pytest.mark.parametrize("path", [p for p in ENCAPSULATED if _rel(p) != XA_4FRAME], ids=_rel)
def test_encapsulated_frames_equal_pydicom_frames(path: Path) -> None:
    validated = _validate(path)
    ds = _read(path)
    count = int(ds.get("NumberOfFrames") or 1)
    expected = list(generate_frames(ds.PixelData, number_of_frames=count))
    assert len(expected) == count  # pydicom can split every file but XA_4FRAME

    assert validated.frame_table is not None
    assert validated.frame_table.encapsulated
    assert _frames(validated, path) == expected


def test_xa_4frame_gives_4_jpeg_frames() -> None:
    path = CORPUS / XA_4FRAME
    validated = _validate(path)

    ds = _read(path)
    assert len(list(generate_frames(ds.PixelData, number_of_frames=4))) == 3  # pydicom's split

    frames = _frames(validated, path)
    assert len(frames) == 4
    assert all(frame.startswith(b"\xff\xd8") for frame in frames)  # JPEG Start Of Image
    assert all(frame.rstrip(b"\x00").endswith(b"\xff\xd9") for frame in frames)
    assert b"".join(frames) == b"".join(generate_frames(ds.PixelData))
