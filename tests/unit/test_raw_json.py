"""DICOM JSON from raw bytes (pacsflow.dicom.raw_json) equals pydicom's on the whole corpus."""

from __future__ import annotations

import warnings
from pathlib import Path

import pydicom
import pytest
from pydicom.dataelem import RawDataElement

from pacsflow.dicom.metadata import dataset_to_json
from pacsflow.dicom.raw_json import ascii_compatible, raw_json

CORPUS = Path(__file__).resolve().parents[2] / ".." / "shared" / "data" / "dicom"
FILES = sorted(p for p in CORPUS.rglob("*") if p.is_file() and p.suffix.lower() in ("", ".dcm"))
BASE = "/studies/1/series/2/instances/3"


def _read(path: Path) -> pydicom.Dataset | None:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            return pydicom.dcmread(path, force=True, defer_size=64 * 1024)
        except Exception:
            return None


def test_the_corpus_is_there() -> None:
    assert len(FILES) > 50


@pytest.mark.parametrize("path", FILES, ids=lambda p: str(p.relative_to(CORPUS)))
def test_from_bytes_equals_pydicom(path: Path) -> None:
    fast, reference = _read(path), _read(path)
    if fast is None or reference is None:
        pytest.skip("pydicom cannot read this malformed file (ingest refuses it)")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            expected = dataset_to_json(reference, BASE, from_bytes=False)
        except Exception as exc:
            with pytest.raises(type(exc)):
                dataset_to_json(fast, BASE)
            return
        assert dataset_to_json(fast, BASE) == expected


def _raw(vr: str | None, value: bytes, tag: int = 0x00100020) -> RawDataElement:
    return RawDataElement(tag, vr, len(value), value, 0, vr is None, True)


@pytest.mark.parametrize(
    ("vr", "value", "expected"),
    [
        ("CS", b"ORIGINAL\\PRIMARY\\AXIAL ", ["ORIGINAL", "PRIMARY", "AXIAL"]),
        ("UI", b"1.2.3\x00", ["1.2.3"]),
        ("LO", b"a \\b ", ["a", "b"]),
        ("ST", b"x\\y  ", ["x\\y"]),
        ("AE", b" AET ", ["AET"]),
        ("DS", b"-1.5\\2e3 ", [-1.5, 2000.0]),
        ("IS", b" 12\\-3", [12, -3]),
        ("US", b"\x01\x00\x02\x00", [1, 2]),
        ("FD", b"\x00\x00\x00\x00\x00\x00\xf0?", [1.0]),
        ("PN", b"Doe^John", [{"Alphabetic": "Doe^John"}]),
    ],
)
def test_values(vr: str, value: bytes, expected: list[object]) -> None:
    assert raw_json(_raw(vr, value)) == {"vr": vr, "Value": expected}


@pytest.mark.parametrize(
    ("vr", "value"),
    [
        ("LO", "Müller".encode("latin-1")),  # not ASCII: the character set decides
        ("PN", b"Yamada^Tarou=\x1b$B;3ED\x1b(B"),  # component groups and escapes
        ("DS", b"1.0\\\\2"),  # an empty value among numbers
        ("DS", b"nan"),
        ("OB", b"\x00\x01"),
        ("US", b"\x01"),  # not a whole number of values
        ("UN", b"abc"),
    ],
)
def test_left_to_pydicom(vr: str, value: bytes) -> None:
    assert raw_json(_raw(vr, value)) is None


def test_empty_and_implicit() -> None:
    assert raw_json(_raw("SH", b"  ")) == {"vr": "SH"}
    assert raw_json(_raw("US", b"")) == {"vr": "US"}
    assert raw_json(_raw(None, b"CT", tag=0x00080060)) == {"vr": "CS", "Value": ["CT"]}
    assert raw_json(_raw(None, b"\x01\x00", tag=0x00280106)) is None  # US or SS
    assert raw_json(_raw(None, b"ab", tag=0x00091010)) is None  # private


def test_character_sets() -> None:
    assert ascii_compatible(None)
    assert ascii_compatible(b"ISO_IR 100 ")
    assert ascii_compatible(["", "ISO_IR 192"])
    assert not ascii_compatible("ISO 2022 IR 6\\ISO 2022 IR 87")
    assert not ascii_compatible("ISO_IR 13")
