"""Reading a STOW part's header from its first bytes (``pacsflow.dicom.header``)."""

from __future__ import annotations

import warnings
from pathlib import Path

import pydicom
import pytest

from pacsflow.dicom.header import HeaderIncomplete, PartHeader, PartRejected, read_part_header
from pacsflow.dicom.status import FailureReason
from tests.support.corpus import CORPUS, corpus_files

# Their File Meta lacks Type 1 elements (PS3.10 7.1); the strict scan refuses them (test_scan.py).
META_LACKS_TYPE_1 = {
    "structure/empty_specific_character_set.dcm",
    "structure/private_sq_nested.dcm",
}
GOOD = [p for p in corpus_files() if p.relative_to(CORPUS).as_posix() not in META_LACKS_TYPE_1]


def _rel(path: Path) -> str:
    return path.relative_to(CORPUS).as_posix()


def _prefix_sizes(size: int) -> list[int]:
    """Every size up to 2 KiB (preamble, File Meta and the first elements, byte by byte), then
    growing by a factor of 4."""
    sizes = set(range(min(size, 2048)))
    step = 4096
    while step < size:
        sizes.add(step)
        step *= 4
    return sorted(sizes)


@pytest.mark.parametrize("path", GOOD, ids=_rel)
def test_growing_prefixes_are_incomplete_or_give_the_whole_header(path: Path) -> None:
    data = path.read_bytes()
    whole = read_part_header(data, complete=True)

    for size in _prefix_sizes(len(data)):
        try:
            header = read_part_header(data[:size], complete=False)
        except HeaderIncomplete:
            continue
        assert header == whole, f"prefix of {size} bytes"
    if not whole.missing():  # else only the end of the part tells that nothing more comes
        assert read_part_header(data, complete=False) == whole


@pytest.mark.parametrize("path", GOOD, ids=_rel)
def test_whole_file_gives_the_uids_pydicom_reads(path: Path) -> None:
    header = read_part_header(path.read_bytes(), complete=True)

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ds = pydicom.dcmread(path, force=True, stop_before_pixels=True)
        expected = PartHeader(
            study_uid=str(ds.get("StudyInstanceUID", "")),
            series_uid=str(ds.get("SeriesInstanceUID", "")),
            sop_uid=str(ds.get("SOPInstanceUID", "")),
            sop_class_uid=str(ds.get("SOPClassUID", "")),
            transfer_syntax=header.transfer_syntax,
            has_file_meta=header.has_file_meta,
        )
    assert header == expected
    if "TransferSyntaxUID" in ds.file_meta:
        assert header.transfer_syntax == ds.file_meta.TransferSyntaxUID


def test_missing_names_the_absent_attributes() -> None:
    header = read_part_header(
        (CORPUS / "transfer-syntax/jpegls_near_lossless_8bit.dcm").read_bytes(), complete=True
    )

    assert header.sop_uid
    assert header.missing() == [
        "Study Instance UID (0020,000D)",
        "Series Instance UID (0020,000E)",
    ]


@pytest.mark.parametrize(
    "data",
    [
        b"",
        b"DICM",
        b"This is not a DICOM file, only text with a .dcm name.\n" * 4,
        b"%PDF-1.4\n%\xe2\xe3\xcf\xd3\n1 0 obj\n<< /Type /Catalog >>\nendobj\n" * 4,
        b"GIF89a\x01\x00\x01\x00\x80\x00\x00" + bytes(300),
        bytes(128) + b"DICM",
        bytes(128) + b"DICM" + b"\x02\x00\x10\x00UI\x40\x00",
        (CORPUS / "malformed/gen_not_dicom_text.dcm").read_bytes(),
    ],
    ids=["empty", "DICM", "text", "PDF", "GIF", "preamble only", "cut File Meta", "corpus text"],
)
def test_not_dicom_with_complete_raises_part_rejected(data: bytes) -> None:
    with pytest.raises(PartRejected) as info:
        read_part_header(data, complete=True)

    assert info.value.reason == FailureReason.CANNOT_UNDERSTAND


@pytest.mark.parametrize(
    "data",
    [
        b"hello world",
        b'{"00100010": {"vr": "PN", "Value": [{"Alphabetic": "DOE^JOHN"}]}}',
        b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\x00\x00\x00\x01\x00\x00\x00\x01\x08\x02\x00\x00\x00",
    ],
    ids=["short text", "JSON", "PNG"],
)
def test_not_dicom_starting_with_a_high_tag_raises_part_rejected(data: bytes) -> None:
    with pytest.raises(PartRejected):
        read_part_header(data, complete=True)
