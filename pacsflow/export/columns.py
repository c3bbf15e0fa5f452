"""DICOM JSON attributes (PS3.18 Annex F) as typed Parquet columns: one column per attribute.

A column is named by the attribute's keyword and typed by its VR in the data dictionary: DA a
date, IS/SS/US/SL/UL/SV/UV an integer, DS/FL/FD a float, PN the PS3.5 6.2 text form
(``Alphabetic=Ideographic=Phonetic``), SQ the DICOM JSON of its items as text, every other VR
text. An attribute whose dictionary VM is not 1 is a list column. A value that does not parse
as its VR (an IS of ``1A``, a date of ``20240231``) is null; values beyond a VM of 1 are
dropped. Private attributes, group lengths, File Meta and binary VRs (OB, OW, OF, OD, OL, OV,
UN) have no column.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import date
from typing import Any, Final

import orjson
import pyarrow as pa
from pydicom.datadict import dictionary_VM, keyword_for_tag

from pacsflow.dicom.dictionary import dictionary_vr

__all__ = ["Column", "column_for"]

JsonDict = dict[str, Any]

_BINARY: Final = frozenset({"OB", "OD", "OF", "OL", "OV", "OW", "UN"})
_INTEGER: Final = frozenset({"IS", "SL", "SS", "SV", "UL", "US", "UV"})
_FLOAT: Final = frozenset({"DS", "FD", "FL"})
_INT64: Final = range(-(2**63), 2**63)


def _date(value: Any) -> date | None:
    text = str(value).strip().replace(".", "")  # ACR-NEMA dates: YYYY.MM.DD
    if len(text) != 8 or not text.isdigit():
        return None
    try:
        return date(int(text[:4]), int(text[4:6]), int(text[6:]))
    except ValueError:
        return None


def _integer(value: Any) -> int | None:
    try:
        number = int(value)
    except (TypeError, ValueError, OverflowError):
        try:
            number = int(float(value))  # an IS written "12.0"
        except (TypeError, ValueError, OverflowError):
            return None
    return number if number in _INT64 else None


def _float(value: Any) -> float | None:
    try:
        return float(value)
    except (TypeError, ValueError):
        return None


def _person_name(value: Any) -> str | None:
    if not isinstance(value, dict):
        return None if value is None else str(value)
    groups = [str(value.get(k, "")) for k in ("Alphabetic", "Ideographic", "Phonetic")]
    return "=".join(groups).rstrip("=")


def _text(value: Any) -> str | None:
    return None if value is None else str(value)


@dataclass(frozen=True, slots=True)
class Column:
    """One attribute as a Parquet column: its name, tag, VR and how one value converts."""

    name: str
    tag: str  # ggggeeee, upper-case hex
    vr: str
    multiple: bool  # a list column (dictionary VM other than 1)
    item_type: pa.DataType
    convert: Callable[[Any], Any]

    @property
    def type(self) -> pa.DataType:
        """The Arrow type of the column."""
        return pa.list_(self.item_type) if self.multiple else self.item_type

    def value(self, attributes: JsonDict) -> Any:
        """The column's value for one entity's DICOM JSON (None when absent or empty)."""
        element = attributes.get(self.tag)
        values = element.get("Value") if isinstance(element, dict) else None
        if not values:
            return None
        if self.vr == "SQ":
            return orjson.dumps(values).decode()
        if self.multiple:
            return [self.convert(v) for v in values]
        return self.convert(values[0])


def _kind(vr: str) -> tuple[pa.DataType, Callable[[Any], Any]]:
    if vr == "DA":
        return pa.date32(), _date
    if vr in _INTEGER:
        return pa.int64(), _integer
    if vr in _FLOAT:
        return pa.float64(), _float
    if vr == "PN":
        return pa.string(), _person_name
    return pa.string(), _text


def column_for(tag: str) -> Column | None:
    """The column of a public attribute ``ggggeeee``; ``None`` for one that has none."""
    number = int(tag, 16)
    group, element = divmod(number, 0x10000)
    if group % 2 or group == 0x0002 or element == 0:
        return None  # private, File Meta, group length
    if (vr := dictionary_vr(number)) is None:
        return None
    vm = dictionary_VM(number)
    keyword = keyword_for_tag(number)
    if vr in _BINARY or not keyword:
        return None
    item_type, convert = _kind(vr)
    multiple = vm != "1" and vr != "SQ"
    return Column(keyword, f"{number:08X}", vr, multiple, item_type, convert)
