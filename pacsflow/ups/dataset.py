"""Read a Worklist request payload into a checked DICOM JSON data set (PS3.18 Annex F, PS3.19).

The payload of Create, Update, Change State and Request Cancellation (PS3.18 11.4.1.4,
11.6.1.4, 11.7.1.4, 11.8.1.4) is one data set: ``application/dicom+json`` (an object, or an
array holding one) or ``application/dicom+xml`` (the Native DICOM Model). Every attribute is
checked before any rule looks at it: its tag (8 hex digits, not a command or file meta element),
its VR (the data dictionary's), and each value against its VR with pydicom's validators
(PS3.5 Table 6.2-1: lengths, characters, DA/DT/TM forms, UID syntax, number ranges). A payload
that fails is a ``BadRequest`` naming the attribute, so no rule ever sees a malformed value.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any, Final

import orjson
from pydicom import config
from pydicom.datadict import keyword_for_tag
from pydicom.valuerep import validate_value

from pacsflow.dicom.dictionary import dictionary_vrs
from pacsflow.dicom.xml import xml_to_dataset
from pacsflow.errors import BadRequest, UnsupportedMediaType

__all__ = ["JSON_TYPES", "XML_TYPES", "keyword", "parse_payload", "read_dataset"]

JsonDict = dict[str, Any]

JSON_TYPES: Final = frozenset({"application/dicom+json", "application/json"})
XML_TYPES: Final = frozenset({"application/dicom+xml", "application/xml"})
MAX_DEPTH: Final = 8  # nested sequences (the UPS IOD needs four)
_TAG: Final = re.compile(r"^[0-9A-Fa-f]{8}$")
_VRS: Final = frozenset(
    {"AE", "AS", "AT", "CS", "DA", "DS", "DT", "FD", "FL", "IS", "LO", "LT", "OB", "OD", "OF"}
    | {"OL", "OV", "OW", "PN", "SH", "SL", "SQ", "SS", "ST", "SV", "TM", "UC", "UI", "UL", "UN"}
    | {"UR", "US", "UT", "UV"}
)
_NUMBERS: Final = frozenset({"FD", "FL", "SL", "SS", "SV", "UL", "US", "UV"})
_BINARY: Final = frozenset({"OB", "OD", "OF", "OL", "OV", "OW", "UN"})
_PN_GROUPS: Final = frozenset({"Alphabetic", "Ideographic", "Phonetic"})
_SEE_ALSO: Final = re.compile(r"\s*Please see <[^>]*>.*$", re.DOTALL)


def keyword(tag: str) -> str:
    """The keyword of a tag (for messages), or the tag itself."""
    return str(keyword_for_tag(int(tag, 16)) or tag)


def parse_payload(body: bytes, media_type: str) -> JsonDict:
    """The data set of a request body in ``media_type`` (JSON or XML), checked."""
    media_type = media_type.split(";", 1)[0].strip().lower()
    if media_type in JSON_TYPES:
        try:
            document = orjson.loads(body)
        except orjson.JSONDecodeError as exc:
            raise BadRequest(f"the payload is not valid JSON: {exc}") from None
        if isinstance(document, list):
            if len(document) != 1:
                raise BadRequest(f"the payload must hold one data set, not {len(document)}")
            document = document[0]
    elif media_type in XML_TYPES:
        try:
            document = xml_to_dataset(body)
        except (ValueError, SyntaxError) as exc:  # ParseError is a SyntaxError
            raise BadRequest(f"the payload is not a Native DICOM Model document: {exc}") from None
    else:
        raise UnsupportedMediaType(
            f"a workitem payload is application/dicom+json or application/dicom+xml, not"
            f" {media_type or 'absent'}"
        )
    if not isinstance(document, dict):
        raise BadRequest("the payload must be a DICOM JSON data set (an object)")
    return read_dataset(document)


def read_dataset(document: Mapping[str, Any], path: str = "", depth: int = 0) -> JsonDict:
    """``document`` with its tags upper-cased, every attribute checked (see the module)."""
    if depth > MAX_DEPTH:
        raise BadRequest(f"{path or 'the data set'}: sequences nested deeper than {MAX_DEPTH}")
    dataset: JsonDict = {}
    for key, element in document.items():
        if not isinstance(key, str) or not _TAG.match(key):
            raise BadRequest(f"{path}{key!r} is not a tag (8 hexadecimal digits)")
        tag = key.upper()
        where = f"{path}{keyword(tag)} ({tag[:4]},{tag[4:]})"
        if tag[:4] in ("0000", "0002", "FFFE"):
            raise BadRequest(f"{where}: command, file meta and item elements are not attributes")
        if tag in dataset:
            raise BadRequest(f"{where} is given twice")
        dataset[tag] = _element(tag, element, where, depth)
    return dataset


def _element(tag: str, element: Any, where: str, depth: int) -> JsonDict:
    if not isinstance(element, dict):
        raise BadRequest(f"{where}: an attribute is an object with a 'vr'")
    vr = element.get("vr")
    if vr not in _VRS:
        raise BadRequest(f"{where}: {vr!r} is not a VR")
    allowed = dictionary_vrs(int(tag, 16))
    if allowed is not None and vr not in allowed:
        raise BadRequest(f"{where}: the VR is {' or '.join(sorted(allowed))}, not {vr}")
    unknown = set(element) - {"vr", "Value", "InlineBinary", "BulkDataURI"}
    if unknown:
        raise BadRequest(f"{where}: unknown members {sorted(unknown)}")
    if "BulkDataURI" in element:
        raise BadRequest(f"{where}: bulk data by reference is not accepted in a workitem")
    if "InlineBinary" in element:
        if vr not in _BINARY or not isinstance(element["InlineBinary"], str):
            raise BadRequest(f"{where}: InlineBinary is a base64 string of an OB/OW/UN value")
        return {"vr": vr, "InlineBinary": element["InlineBinary"]}
    if "Value" not in element:
        return {"vr": vr}
    values = element["Value"]
    if not isinstance(values, list):
        raise BadRequest(f"{where}: Value must be an array")
    if vr in _BINARY:
        raise BadRequest(f"{where}: a {vr} value is given as InlineBinary")
    if vr == "SQ":
        items = []
        for number, item in enumerate(values, start=1):
            if not isinstance(item, dict):
                raise BadRequest(f"{where}: item {number} is not a data set")
            items.append(read_dataset(item, f"{where} item {number} > ", depth + 1))
        return {"vr": vr, "Value": items}
    return {"vr": vr, "Value": [_value(vr, value, where) for value in values]}


def _value(vr: str, value: Any, where: str) -> Any:
    """One value checked against its VR (``None`` is an empty value, PS3.18 F.2.5)."""
    if value is None:
        return None
    if vr == "PN":
        if not isinstance(value, dict) or not set(value) <= _PN_GROUPS:
            raise BadRequest(f"{where}: a PN value is an object of Alphabetic/Ideographic/Phonetic")
        for group in value.values():
            if not isinstance(group, str):
                raise BadRequest(f"{where}: a person name group is a string")
            _validate(vr, group, where)
        return value
    if vr in _NUMBERS:
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise BadRequest(f"{where}: a {vr} value is a number, not {value!r}")
        _validate(vr, value, where)
        return value
    if vr in ("IS", "DS"):  # numbers in JSON, strings allowed (PS3.18 F.2.3.1)
        if isinstance(value, bool) or not isinstance(value, int | float | str):
            raise BadRequest(f"{where}: a {vr} value is a number, not {value!r}")
        _validate(vr, str(value), where)
        return value
    if not isinstance(value, str):
        raise BadRequest(f"{where}: a {vr} value is a string, not {value!r}")
    _validate(vr, value, where)
    return value


def _validate(vr: str, value: Any, where: str) -> None:
    try:
        validate_value(vr, value, config.RAISE)
    except (ValueError, TypeError) as exc:
        raise BadRequest(f"{where}: {_SEE_ALSO.sub('', str(exc))}") from None
