"""DICOM JSON (PS3.18 Annex F) to and from the Native DICOM Model XML (PS3.19 Annex A).

Each attribute becomes ``<DicomAttribute tag vr keyword [privateCreator]>`` holding ``Value``,
``PersonName``, ``Item``, ``BulkData`` or ``InlineBinary`` children, in tag order. Numbers are
written as JSON writes them; characters XML 1.0 forbids become U+FFFD. What the XML cannot tell
apart reads back in the PS3.18 F.2.5 form: an empty value is ``null``, an attribute without
values (an empty sequence too) has no ``Value``, and a person name loses empty components.
"""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from typing import Any, Final

from pydicom.datadict import keyword_for_tag

__all__ = ["NAMESPACE", "NUMERIC_VRS", "dataset_to_xml", "xml_to_dataset"]

NAMESPACE: Final = "http://dicom.nema.org/PS3.19/models/NativeDICOM"
NUMERIC_VRS: Final = frozenset({"DS", "FD", "FL", "IS", "SL", "SS", "SV", "UL", "US", "UV"})
JsonDict = dict[str, Any]

_DECLARATION: Final = b'<?xml version="1.0" encoding="UTF-8"?>\n'
_PN_GROUPS: Final = ("Alphabetic", "Ideographic", "Phonetic")
_PN_COMPONENTS: Final = ("FamilyName", "GivenName", "MiddleName", "NamePrefix", "NameSuffix")
# XML 1.0 section 2.2 Char: tab, LF, CR and the ranges below; anything else (C0 controls, lone
# surrogates, U+FFFE, U+FFFF) would make the document ill-formed.
_NOT_XML_CHAR: Final = re.compile("[^\t\n\r\x20-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")
_INT: Final = re.compile(r"[+-]?\d+")
_FLOAT: Final = re.compile(r"[+-]?(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?|[+-]?(?:inf|nan)")


def dataset_to_xml(dataset: JsonDict) -> bytes:
    """The Native DICOM Model document (UTF-8) of a DICOM JSON data set."""
    root = ET.Element("NativeDicomModel", {"xmlns": NAMESPACE, "xml:space": "preserve"})
    _append_attributes(root, dataset)
    text = ET.tostring(root, encoding="unicode")
    # ElementTree escapes CR in attribute values only; a parser would read a raw CR in character
    # data as LF (XML 1.0 section 2.11), so every CR left in the text is character data.
    return _DECLARATION + text.replace("\r", "&#13;").encode("utf-8")


def xml_to_dataset(document: bytes) -> JsonDict:
    """The DICOM JSON data set of a Native DICOM Model document (the inverse of the above)."""
    root = ET.fromstring(document)
    if _local(root.tag) != "NativeDicomModel":
        raise ValueError(f"not a Native DICOM Model document: root element {root.tag!r}")
    return _read_attributes(root)


def _clean(text: str) -> str:
    return _NOT_XML_CHAR.sub("\ufffd", text)


def _append_attributes(parent: ET.Element, dataset: JsonDict) -> None:
    attributes = {key.upper(): value for key, value in dataset.items()}
    for key in sorted(attributes, key=lambda k: int(k, 16)):
        attribute = attributes[key]
        tag = int(key, 16)
        vr = str(attribute.get("vr", "UN"))
        element = ET.SubElement(parent, "DicomAttribute", _xml_attributes(tag, vr, attributes))
        if "BulkDataURI" in attribute:
            ET.SubElement(element, "BulkData", {"uri": _clean(str(attribute["BulkDataURI"]))})
        elif "InlineBinary" in attribute:
            ET.SubElement(element, "InlineBinary").text = _clean(str(attribute["InlineBinary"]))
        for number, value in enumerate(attribute.get("Value") or (), start=1):
            numbered = {"number": str(number)}
            if vr == "SQ":
                _append_attributes(ET.SubElement(element, "Item", numbered), value or {})
            elif vr == "PN":
                _append_person_name(ET.SubElement(element, "PersonName", numbered), value)
            else:
                ET.SubElement(element, "Value", numbered).text = _value_text(vr, value)


def _xml_attributes(tag: int, vr: str, dataset: JsonDict) -> dict[str, str]:
    out = {"tag": f"{tag:08X}", "vr": vr}
    keyword = str(keyword_for_tag(tag))
    if keyword:
        out["keyword"] = keyword
    group, element = tag >> 16, tag & 0xFFFF
    if group % 2 and element >= 0x1000:  # (gggg,xxyy) is reserved by (gggg,00xx): PS3.5 7.8.1
        creator = dataset.get(f"{group:04X}00{element >> 8:02X}", {}).get("Value") or [None]
        if isinstance(creator[0], str):
            out["privateCreator"] = _clean(creator[0])
    return out


def _value_text(vr: str, value: Any) -> str | None:
    if value is None:
        return None
    if vr == "AT":
        return f"{value:08X}" if isinstance(value, int) else _clean(str(value)).upper()
    if isinstance(value, float):
        return repr(value)  # as JSON would write it: 1.0, 0.1, 1e-05
    return _clean(str(value))


def _append_person_name(element: ET.Element, value: Any) -> None:
    if isinstance(value, str):  # the DICOM form "Alphabetic=Ideographic=Phonetic"
        value = dict(zip(_PN_GROUPS, value.split("="), strict=False))
    for group in _PN_GROUPS:
        components = str((value or {}).get(group) or "").split("^", len(_PN_COMPONENTS) - 1)
        if not any(components):
            continue
        group_element = ET.SubElement(element, group)
        for name, text in zip(_PN_COMPONENTS, components, strict=False):
            if text:
                ET.SubElement(group_element, name).text = _clean(text)


def _local(tag: str) -> str:
    return tag.rpartition("}")[2]


def _number(element: ET.Element) -> int:
    return int(element.get("number") or 0)


def _read_attributes(parent: ET.Element) -> JsonDict:
    out: JsonDict = {}
    for element in parent:
        if _local(element.tag) != "DicomAttribute":
            continue
        tag, vr = element.get("tag"), element.get("vr")
        if tag is None or vr is None:
            raise ValueError("a DicomAttribute without tag or vr")
        attribute: JsonDict = {"vr": vr}
        values: list[Any] = []
        for child in sorted(element, key=_number):
            name = _local(child.tag)
            if name == "BulkData":
                attribute["BulkDataURI"] = child.get("uri", "")
            elif name == "InlineBinary":
                attribute["InlineBinary"] = child.text or ""
            elif name == "Item":
                values.append(_read_attributes(child))
            elif name == "PersonName":
                values.append(_read_person_name(child))
            elif name == "Value":
                values.append(_read_value(vr, child.text))
        if values:
            attribute["Value"] = values
        out[tag.upper()] = attribute
    return out


def _read_person_name(element: ET.Element) -> dict[str, str] | None:
    value: dict[str, str] = {}
    for group in element:
        components = {_local(child.tag): child.text or "" for child in group}
        text = "^".join(components.get(name, "") for name in _PN_COMPONENTS).rstrip("^")
        if text:
            value[_local(group.tag)] = text
    return value or None


def _read_value(vr: str, text: str | None) -> str | int | float | None:
    if not text:
        return None
    if vr in NUMERIC_VRS:
        number = text.strip()
        if _INT.fullmatch(number):
            return int(number)
        if _FLOAT.fullmatch(number):
            return float(number)
    return text
