"""DICOM JSON to and from the Native DICOM Model XML (``pacsflow.dicom.xml``)."""

from __future__ import annotations

import functools
import re
import warnings
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

import pydicom
import pytest

from pacsflow.dicom.xml import NAMESPACE, dataset_to_xml, xml_to_dataset
from tests.support.corpus import CORPUS, corpus_files

JsonDict = dict[str, Any]
NS = {"d": NAMESPACE}

GOLDEN: JsonDict = {  # keys out of order on purpose: the XML is in tag order
    "7FE00010": {"vr": "OW", "BulkDataURI": "http://x/bulk?frame=1&part=<a>"},
    "00291010": {"vr": "OB", "InlineBinary": "AAECAw=="},
    "00290010": {"vr": "LO", "Value": ["PACSFLOW TEST"]},
    "00100010": {
        "vr": "PN",
        "Value": [
            {
                "Alphabetic": "Yamada^Tarou^Q^Dr.^Jr.",
                "Ideographic": "山田^太郎",
                "Phonetic": "やまだ^たろう",
            }
        ],
    },
    "00100020": {"vr": "LO"},
    "00080008": {"vr": "CS", "Value": ["DERIVED", None, "AXIAL"]},
    "00081140": {
        "vr": "SQ",
        "Value": [
            {
                "00081155": {"vr": "UI", "Value": ["1.2.3.4"]},
                "00081150": {"vr": "UI", "Value": ["1.2.840.10008.5.1.4.1.1.2"]},
            },
            {"00081160": {"vr": "IS", "Value": [2, 3]}},
        ],
    },
    "00209165": {"vr": "AT", "Value": ["00209057", "0020000D"]},
    "00280010": {"vr": "US", "Value": [512]},
    "00280030": {"vr": "DS", "Value": [0.5, 2, 1e-05]},
}

GOLDEN_XML = (
    '<?xml version="1.0" encoding="UTF-8"?>\n'
    '<NativeDicomModel xmlns="http://dicom.nema.org/PS3.19/models/NativeDICOM"'
    ' xml:space="preserve">'
    '<DicomAttribute tag="00080008" vr="CS" keyword="ImageType">'
    '<Value number="1">DERIVED</Value><Value number="2" /><Value number="3">AXIAL</Value>'
    "</DicomAttribute>"
    '<DicomAttribute tag="00081140" vr="SQ" keyword="ReferencedImageSequence">'
    '<Item number="1">'
    '<DicomAttribute tag="00081150" vr="UI" keyword="ReferencedSOPClassUID">'
    '<Value number="1">1.2.840.10008.5.1.4.1.1.2</Value></DicomAttribute>'
    '<DicomAttribute tag="00081155" vr="UI" keyword="ReferencedSOPInstanceUID">'
    '<Value number="1">1.2.3.4</Value></DicomAttribute>'
    "</Item>"
    '<Item number="2">'
    '<DicomAttribute tag="00081160" vr="IS" keyword="ReferencedFrameNumber">'
    '<Value number="1">2</Value><Value number="2">3</Value></DicomAttribute>'
    "</Item>"
    "</DicomAttribute>"
    '<DicomAttribute tag="00100010" vr="PN" keyword="PatientName"><PersonName number="1">'
    "<Alphabetic><FamilyName>Yamada</FamilyName><GivenName>Tarou</GivenName>"
    "<MiddleName>Q</MiddleName><NamePrefix>Dr.</NamePrefix><NameSuffix>Jr.</NameSuffix>"
    "</Alphabetic>"
    "<Ideographic><FamilyName>山田</FamilyName><GivenName>太郎</GivenName></Ideographic>"
    "<Phonetic><FamilyName>やまだ</FamilyName><GivenName>たろう</GivenName></Phonetic>"
    "</PersonName></DicomAttribute>"
    '<DicomAttribute tag="00100020" vr="LO" keyword="PatientID" />'
    '<DicomAttribute tag="00209165" vr="AT" keyword="DimensionIndexPointer">'
    '<Value number="1">00209057</Value><Value number="2">0020000D</Value></DicomAttribute>'
    '<DicomAttribute tag="00280010" vr="US" keyword="Rows"><Value number="1">512</Value>'
    "</DicomAttribute>"
    '<DicomAttribute tag="00280030" vr="DS" keyword="PixelSpacing">'
    '<Value number="1">0.5</Value><Value number="2">2</Value><Value number="3">1e-05</Value>'
    "</DicomAttribute>"
    '<DicomAttribute tag="00290010" vr="LO"><Value number="1">PACSFLOW TEST</Value>'
    "</DicomAttribute>"
    '<DicomAttribute tag="00291010" vr="OB" privateCreator="PACSFLOW TEST">'
    "<InlineBinary>AAECAw==</InlineBinary></DicomAttribute>"
    '<DicomAttribute tag="7FE00010" vr="OW" keyword="PixelData">'
    '<BulkData uri="http://x/bulk?frame=1&amp;part=&lt;a&gt;" /></DicomAttribute>'
    "</NativeDicomModel>"
)


def test_golden_document() -> None:
    assert dataset_to_xml(GOLDEN).decode("utf-8") == GOLDEN_XML


def test_golden_document_reads_back() -> None:
    assert xml_to_dataset(GOLDEN_XML.encode("utf-8")) == GOLDEN


def test_numbers_are_written_as_json_numbers() -> None:
    dataset: JsonDict = {
        "00181318": {"vr": "DS", "Value": [1.0, -0.1, 3, 1.5e300]},
        "00189087": {"vr": "FD", "Value": [0.30000000000000004]},
        "00282000": {"vr": "FL", "Value": [float("inf")]},
        "00720026": {"vr": "SV", "Value": [-(2**63)]},
        "00720027": {"vr": "UV", "Value": [2**64 - 1]},
        "00200013": {"vr": "IS", "Value": ["not a number"]},
    }
    root = ET.fromstring(dataset_to_xml(dataset))
    texts = [v.text for v in root.iterfind(".//d:Value", NS)]
    assert texts[:6] == ["1.0", "-0.1", "3", "1.5e+300", "0.30000000000000004", "not a number"]
    assert texts[6:] == ["inf", str(-(2**63)), str(2**64 - 1)]
    assert xml_to_dataset(dataset_to_xml(dataset)) == dataset


def test_characters_xml_forbids_become_replacement_character() -> None:
    dataset: JsonDict = {
        "00204000": {"vr": "LT", "Value": ["a\x00b\x1bc\x7f\ufffe\ud800 tab\tCRLF\r\nLF\nCR\r"]},
        "00291001": {"vr": "UN", "BulkDataURI": "http://x/\x01"},
    }
    document = dataset_to_xml(dataset)
    ET.fromstring(document)  # well-formed
    back = xml_to_dataset(document)
    assert back["00204000"]["Value"] == ["a\ufffdb\ufffdc\x7f\ufffd\ufffd tab\tCRLF\r\nLF\nCR\r"]
    assert back["00291001"]["BulkDataURI"] == "http://x/\ufffd"


def test_private_creator_only_when_the_data_set_has_it() -> None:
    dataset: JsonDict = {
        "00091010": {"vr": "LO", "Value": ["no creator"]},
        "00190010": {"vr": "LO", "Value": ["ACME 1"]},
        "00190011": {"vr": "LO", "Value": ["ACME 2"]},
        "00191001": {"vr": "LO", "Value": ["one"]},
        "00191101": {"vr": "LO", "Value": ["two"]},
    }
    root = ET.fromstring(dataset_to_xml(dataset))
    attributes = {a.get("tag"): a.attrib for a in root.iterfind("d:DicomAttribute", NS)}
    assert "privateCreator" not in attributes["00091010"]
    assert "privateCreator" not in attributes["00190010"]
    assert attributes["00191001"]["privateCreator"] == "ACME 1"
    assert attributes["00191101"]["privateCreator"] == "ACME 2"
    assert not any("keyword" in a for a in attributes.values())


def test_person_names() -> None:
    dataset: JsonDict = {
        "00081070": {"vr": "PN", "Value": [{"Alphabetic": "^Given"}, None, {"Phonetic": "P"}]},
        "00100010": {"vr": "PN", "Value": [{"Alphabetic": "A^B^C^D^E^F"}]},  # 6 components
    }
    assert xml_to_dataset(dataset_to_xml(dataset)) == dataset
    assert b'<PersonName number="2" />' in dataset_to_xml(dataset)


def test_rejects_another_document() -> None:
    with pytest.raises(ValueError, match="Native DICOM Model"):
        xml_to_dataset(b"<Other/>")


# -- the corpus ------------------------------------------------------------------------------

FILES = corpus_files()
CHARSET = [p for p in FILES if p.parent.name == "charset"]


def _rel(path: Path) -> str:
    return path.relative_to(CORPUS).as_posix()


@functools.cache
def _json(path: Path) -> JsonDict | None:
    """pydicom's DICOM JSON of a corpus file; None when pydicom cannot read or convert it."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            ds = pydicom.dcmread(path, defer_size=1024, force=True)
            js: JsonDict = ds.to_json_dict(
                bulk_data_threshold=1024, bulk_data_element_handler=lambda _el: "http://x/bulk"
            )
    except Exception:
        return None
    return js


def _canonical(dataset: JsonDict) -> JsonDict:
    """pydicom's JSON in the PS3.18 F.2.5 form that is all PS3.19 can carry: an empty value in a
    multi-valued attribute is null (pydicom writes ""), an empty sequence has no Value (pydicom
    writes []), and a person name has no trailing empty components ("OB^^^^" is "OB")."""
    out: JsonDict = {}
    for key, attribute in dataset.items():
        attribute = dict(attribute)
        values = attribute.pop("Value", None)
        if values:
            if attribute["vr"] == "SQ":
                values = [_canonical(item) for item in values]
            elif attribute["vr"] == "PN":
                values = [_canonical_name(v) for v in values]
            else:
                values = [None if v == "" else v for v in values]
            attribute["Value"] = values
        out[key] = attribute
    return out


def _canonical_name(value: dict[str, str] | None) -> dict[str, str] | None:
    groups = {g: text.rstrip("^") for g, text in (value or {}).items() if text.rstrip("^")}
    return groups or None


def test_every_corpus_file_converts() -> None:
    unread = [_rel(p) for p in FILES if _json(p) is None]
    assert len(FILES) > 100
    assert not unread
    assert len(CHARSET) == 17 and all(_json(p) is not None for p in CHARSET)


@pytest.mark.parametrize("path", FILES, ids=_rel)
def test_corpus_round_trip(path: Path) -> None:
    js = _json(path)
    assert js is not None, "pydicom cannot read or convert this file"
    assert xml_to_dataset(dataset_to_xml(js)) == _canonical(js)


@pytest.mark.parametrize("path", CHARSET, ids=_rel)
def test_charset_round_trip(path: Path) -> None:
    js = _json(path)
    assert js is not None
    document = dataset_to_xml(js)
    root = ET.fromstring(document)
    assert xml_to_dataset(document) == _canonical(js)
    # the decoded text is in the XML as UTF-8, not as character references or U+FFFD
    text = document.decode("utf-8")
    assert "\ufffd" not in text and "&#" not in text
    assert any(ord(c) > 0x7F for c in text)
    names = [e.text or "" for e in root.iterfind(".//d:PersonName//*", NS) if len(e) == 0]
    assert names and all(n in text for n in names)


TAG = re.compile(r"[0-9A-F]{8}")
VR = re.compile(r"[A-Z]{2}")


@pytest.mark.parametrize("path", FILES, ids=_rel)
def test_corpus_document_structure(path: Path) -> None:
    js = _json(path)
    assert js is not None, "pydicom cannot read or convert this file"
    root = ET.fromstring(dataset_to_xml(js))
    assert root.tag == f"{{{NAMESPACE}}}NativeDicomModel"
    attributes = list(root.iter(f"{{{NAMESPACE}}}DicomAttribute"))
    assert attributes
    for attribute in attributes:
        assert TAG.fullmatch(attribute.get("tag", "")), attribute.attrib
        assert VR.fullmatch(attribute.get("vr", "")), attribute.attrib
    for parent in [root, *root.iter(f"{{{NAMESPACE}}}Item")]:
        tags = [a.get("tag", "") for a in parent.iterfind("d:DicomAttribute", NS)]
        assert tags == sorted(tags)
