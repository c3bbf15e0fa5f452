"""DICOM JSON of a raw element straight from its bytes (PS3.18 F.2.2, F.2.3, F.2.7).

pydicom converts each element to Python values (``DataElement``, ``MultiValue``, ``DSfloat``,
``UID``) before ``to_json_dict`` turns them into JSON again; for the few dozen short elements
of an image header that costs more than the rest of ingest's validation. ``raw_json`` encodes
the common case itself: ASCII values of the string, decimal and binary number VRs in a data set
whose Specific Character Set (0008,0005) leaves ASCII as it is (PS3.5 6.1.2.3). Everything
else (person names with components, non-ASCII text, other character sets, ambiguous VRs, binary
values, sequences) gives ``None`` and is encoded by pydicom. The output equals pydicom's for
every element it encodes: ``tests/unit/test_raw_json.py`` checks that over the corpus.
"""

from __future__ import annotations

import re
import struct
from typing import Any, Final

from pydicom.dataelem import RawDataElement

from pacsflow.dicom.dictionary import dictionary_vrs

__all__ = ["ascii_compatible", "raw_json"]

# Specific Character Set values under which an ASCII byte is that ASCII character (PS3.3
# C.12.1.1.2): the default repertoire, ISO 8859-1 and UTF-8.
_ASCII_CHARSETS: Final = frozenset({"", "ISO_IR 6", "ISO 2022 IR 6", "ISO_IR 100", "ISO_IR 192"})
_SPLIT_STRIPPED: Final = frozenset({"AS", "CS", "DA", "DT", "TM", "UI"})  # pydicom multi_string
_TEXT: Final = frozenset({"LO", "SH", "UC"})  # each value right-stripped
_SINGLE: Final = frozenset({"LT", "ST", "UT"})  # one value, backslashes kept
_NUMBERS: Final = {"US": "H", "SS": "h", "UL": "L", "SL": "l", "FL": "f", "FD": "d"}
_DS: Final = re.compile(r"[+-]?(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?")
_IS: Final = re.compile(r"[+-]?\d+")


def ascii_compatible(charset: Any) -> bool:
    """True if a Specific Character Set value leaves ASCII bytes as ASCII characters."""
    if charset is None:
        return True
    if isinstance(charset, bytes):
        charset = charset.decode("ascii", "replace")
    if isinstance(charset, str):
        charset = charset.split("\\")
    return all(str(v).strip(" \x00") in _ASCII_CHARSETS for v in charset)


def raw_json(raw: RawDataElement) -> dict[str, Any] | None:
    """The DICOM JSON object of ``raw``, or ``None`` where pydicom must encode it."""
    vr = raw.VR or _implicit_vr(raw.tag)
    value = raw.value
    if vr is None or not isinstance(value, bytes):
        return None
    if vr in _NUMBERS:
        return _numbers(vr, value, raw.is_little_endian)
    if not value.isascii() or b"\x1b" in value:
        return None
    text = value.decode("ascii")
    if vr in _SPLIT_STRIPPED:
        values = text.rstrip(" \x00").split("\\")
    elif vr in _TEXT:
        values = [v.rstrip("\x00 ") for v in text.split("\\")]
    elif vr in _SINGLE:
        values = [text.rstrip("\x00 ")]
    elif vr == "AE":
        values = [v.strip() for v in text.split("\\")]
    elif vr == "PN":
        return _person_name(text)
    elif vr in ("DS", "IS"):
        return _decimal(vr, text)
    else:
        return None
    if len(values) == 1 and not values[0]:
        return {"vr": vr}
    return {"vr": vr, "Value": values}


def _implicit_vr(tag: int) -> str | None:
    """The dictionary's VR where it names one (PS3.5 A.1); ``None`` for a private, unknown
    or ambiguous (``US or SS``) one, which pydicom resolves with the data set."""
    vrs = dictionary_vrs(tag)
    return vrs[0] if vrs is not None and len(vrs) == 1 else None


def _numbers(vr: str, value: bytes, little_endian: bool) -> dict[str, Any] | None:
    code = _NUMBERS[vr]
    size = struct.calcsize("<" + code)
    if len(value) % size or not little_endian:
        return None
    if not value:
        return {"vr": vr}
    numbers = struct.unpack(f"<{len(value) // size}{code}", value)
    return {"vr": vr, "Value": [float(n) for n in numbers] if vr in ("FL", "FD") else list(numbers)}


def _decimal(vr: str, text: str) -> dict[str, Any] | None:
    values = [v.strip(" \x00") for v in text.rstrip(" \x00").split("\\")]
    if len(values) == 1 and not values[0]:
        return {"vr": vr}
    pattern = _DS if vr == "DS" else _IS
    if not all(pattern.fullmatch(v) for v in values):
        return None
    if vr == "IS":
        return {"vr": vr, "Value": [int(v) for v in values]}
    return {"vr": vr, "Value": [float(v) for v in values]}


def _person_name(text: str) -> dict[str, Any] | None:
    values = text.rstrip("\x00 ").split("\\")
    if any("=" in v or not v for v in values):
        return None  # component groups and empty names: pydicom's PersonName decides
    return {"vr": "PN", "Value": [{"Alphabetic": v} for v in values]}
