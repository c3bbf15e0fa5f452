"""Rendered non-image objects (PS3.18 8.3.5, 10.4.1.1.4; WADO-URI contentType, PS3.18 9.1.2).

A Structured Report (any SR SOP Class: a root ``CONTAINER`` with a Content Sequence) renders as
``text/html`` (one self-contained, escaped HTML5 page: no script, no external resource) or as
``text/plain`` (the same content tree, indented). An encapsulated document renders as its own
media type (``application/pdf``, CDA ``text/xml``, ...) with the value's trailing pad byte
removed. Anything else has no rendered document representation (406).

No Python library renders an SR content tree (DCMTK's dsr2html is C++), so one pass here turns
the tree into a neutral outline (``_Node``) and two small writers print it as HTML or text.
"""

from __future__ import annotations

import codecs
import html
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any, Final

import pydicom
from pydicom.multival import MultiValue
from pydicom.uid import UID, EncapsulatedCDAStorage, EncapsulatedPDFStorage

from pacsflow.errors import BadRequest, NotAcceptable

__all__ = ["SR_MEDIA_TYPES", "is_structured_report", "render_document"]

SR_MEDIA_TYPES: Final = ("text/html", "text/plain")
_DOCUMENT_CLASSES: Final[dict[str, str]] = {
    EncapsulatedPDFStorage: "application/pdf",
    EncapsulatedCDAStorage: "text/xml",
}
_CHARSET_LABEL: Final = re.compile(r"[A-Za-z0-9._:+-]{1,40}")
# C0 controls (but tab, LF, CR) and DEL have no place in HTML or in a text rendering.
_CONTROL: Final = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")
_CSS: Final = (
    "body{font-family:sans-serif;margin:2em}th{text-align:left;padding-right:1em}"
    ".rel,.vt{color:#666;font-size:smaller}.concept{font-weight:bold}.value{white-space:pre-wrap}"
)


@dataclass(frozen=True, slots=True)
class _Node:
    """One content item: how it relates to its parent, what it is, what it says."""

    relationship: str
    value_type: str
    concept: str
    value: str
    children: tuple[_Node, ...]


def is_structured_report(ds: pydicom.Dataset) -> bool:
    """Whether ``ds`` is an SR document: a root CONTAINER with a Content Sequence."""
    return "ContentSequence" in ds and str(ds.get("ValueType", "")) == "CONTAINER"


def render_document(
    ds: pydicom.Dataset, media_type: str, charset: str | None = None
) -> tuple[bytes, str]:
    """The body and Content-Type of ``ds`` rendered as ``media_type`` (PS3.18 8.3.5, 9.1.2).

    Text is UTF-8 unless ``charset`` names another codec Python knows (BadRequest otherwise);
    characters it cannot encode become character references (HTML) or ``?`` (text).
    """
    media = media_type.split(";", 1)[0].strip().lower()
    if is_structured_report(ds):
        if media not in SR_MEDIA_TYPES:
            raise NotAcceptable(f"a structured report renders as {', '.join(SR_MEDIA_TYPES)}")
        label = _charset(charset)
        title, header, root = _outline(ds)
        if media == "text/html":
            body = _html(title, header, root, label).encode(label, "xmlcharrefreplace")
        else:
            body = _plain(title, header, root).encode(label, "replace")
        return body, f"{media}; charset={label}"
    if "EncapsulatedDocument" in ds:
        offered = _document_type(ds)
        if media != offered:
            raise NotAcceptable(f"this encapsulated document renders as {offered}")
        return _document_bytes(ds), offered
    raise NotAcceptable("only structured reports and encapsulated documents render as documents")


def _charset(charset: str | None) -> str:
    """The charset label to encode with (default UTF-8); BadRequest for an unknown one."""
    if charset is None or not charset.strip():
        return "utf-8"
    label = charset.strip()
    if not _CHARSET_LABEL.fullmatch(label):
        raise BadRequest(f"invalid charset {label!r}")
    try:
        codecs.lookup(label)
        "".encode(label)  # a text encoding, not a bytes-to-bytes codec such as base64
    except LookupError as exc:
        raise BadRequest(f"unsupported charset {label!r}") from exc
    return label


def _document_type(ds: pydicom.Dataset) -> str:
    """The media type of an encapsulated document (by SOP Class, else its declared MIME type)."""
    by_class = _DOCUMENT_CLASSES.get(str(ds.get("SOPClassUID", "")))
    declared = str(ds.get("MIMETypeOfEncapsulatedDocument", "") or "").strip().lower()
    return by_class or declared or "application/octet-stream"


def _document_bytes(ds: pydicom.Dataset) -> bytes:
    """The encapsulated document without the pad byte that made its value length even."""
    data = bytes(ds.EncapsulatedDocument)
    declared = ds.get("EncapsulatedDocumentLength")
    if declared is not None and 0 <= int(declared) <= len(data):
        return data[: int(declared)]
    if len(data) % 2 == 0 and data.endswith(b"\x00"):
        return data[:-1]
    return data


def _values(value: Any) -> list[Any]:
    """A DICOM value as a list (empty for an absent or empty value)."""
    if value is None or value == "":
        return []
    if isinstance(value, list | tuple | MultiValue):
        return list(value)
    return [value]


def _clean(text: Any) -> str:
    return _CONTROL.sub("", str(text))


def _first(item: pydicom.Dataset, keyword: str) -> pydicom.Dataset | None:
    items = item.get(keyword) or []
    return items[0] if len(items) else None


def _meaning(item: pydicom.Dataset, keyword: str) -> str:
    code = _first(item, keyword)
    return "" if code is None else _clean(code.get("CodeMeaning", ""))


def _code(item: pydicom.Dataset, keyword: str) -> str:
    """A coded entry as ``meaning (value, scheme)``."""
    code = _first(item, keyword)
    if code is None:
        return ""
    value = code.get("CodeValue") or code.get("LongCodeValue") or code.get("URNCodeValue") or ""
    scheme = code.get("CodingSchemeDesignator", "")
    return _clean(f"{code.get('CodeMeaning', '')} ({value}, {scheme})")


def _person(value: Any) -> str:
    """A person name as ``Family, Given Middle`` for each of its component groups."""
    groups = []
    for group in str(value or "").split("="):
        family, *rest = group.split("^")
        given = " ".join(part for part in rest if part)
        if family or given:
            groups.append(f"{family}, {given}" if family and given else family or given)
    return _clean(" = ".join(groups))


def _date(value: Any) -> str:
    text = str(value or "")
    return f"{text[:4]}-{text[4:6]}-{text[6:8]}" if re.fullmatch(r"\d{8}", text) else text


def _time(value: Any) -> str:
    text = str(value or "")
    match = re.fullmatch(r"(\d\d)(\d\d)?(\d\d)?(\.\d+)?", text)
    if match is None:
        return text
    hours, minutes, seconds, fraction = match.groups()
    return ":".join(p for p in (hours, minutes or "00", seconds) if p) + (fraction or "")


def _datetime(value: Any) -> str:
    text = str(value or "")
    match = re.fullmatch(r"(\d{8})([\d.]*)([+-]\d{4})?", text)
    if match is None:
        return text
    day, clock, zone = match.groups()
    return " ".join(p for p in (_date(day), _time(clock) if clock else "", zone or "") if p)


def _numbers(values: Iterable[Any]) -> str:
    return ", ".join(f"{float(v):g}" for v in values)


def _uid(value: Any) -> str:
    uid = UID(str(value))
    return f"{uid.name} ({uid})" if uid.name != uid else str(uid)


def _num(item: pydicom.Dataset) -> str:
    measured = _first(item, "MeasuredValueSequence")
    if measured is None:
        return _code(item, "NumericValueQualifierCodeSequence") or "(no value)"
    number = str(measured.get("NumericValue", ""))
    units = _first(measured, "MeasurementUnitsCodeSequence")
    if units is None:
        return number
    symbol, meaning = str(units.get("CodeValue", "")), str(units.get("CodeMeaning", ""))
    if symbol == "1":  # UCUM's "no units"
        return _clean(f"{number} ({meaning})")
    return _clean(f"{number} {symbol}" + (f" ({meaning})" if meaning != symbol else ""))


def _reference(item: pydicom.Dataset) -> str:
    """A COMPOSITE, IMAGE or WAVEFORM reference: SOP Class, Instance, frames, channels."""
    ref = _first(item, "ReferencedSOPSequence")
    if ref is None:
        return "(no reference)"
    text = f"{_uid(ref.get('ReferencedSOPClassUID', ''))}, instance "
    text += str(ref.get("ReferencedSOPInstanceUID", ""))
    for keyword, label in (
        ("ReferencedFrameNumber", "frames"),
        ("ReferencedSegmentNumber", "segments"),
        ("ReferencedWaveformChannels", "channels"),
    ):
        if values := _values(ref.get(keyword)):
            text += f"; {label} {', '.join(str(v) for v in values)}"
    state = _first(ref, "ReferencedSOPSequence")
    if state is not None:
        text += f"; presentation {_uid(state.get('ReferencedSOPClassUID', ''))}, instance "
        text += str(state.get("ReferencedSOPInstanceUID", ""))
    return text


def _scoord(item: pydicom.Dataset) -> str:
    text = f"{item.get('GraphicType', '')} {_numbers(_values(item.get('GraphicData')))}"
    if "ReferencedFrameOfReferenceUID" in item:
        text += f" in frame of reference {item.ReferencedFrameOfReferenceUID}"
    return text


def _tcoord(item: pydicom.Dataset) -> str:
    text = str(item.get("TemporalRangeType", ""))
    if positions := _values(item.get("ReferencedSamplePositions")):
        return f"{text} sample positions {', '.join(str(p) for p in positions)}"
    if offsets := _values(item.get("ReferencedTimeOffsets")):
        return f"{text} time offsets {_numbers(offsets)}"
    moments = _values(item.get("ReferencedDateTime"))
    return f"{text} at {', '.join(_datetime(m) for m in moments)}"


_VALUES: Final[dict[str, Callable[[pydicom.Dataset], str]]] = {
    "TEXT": lambda item: _clean(item.get("TextValue", "")).rstrip(),
    "CODE": lambda item: _code(item, "ConceptCodeSequence"),
    "NUM": _num,
    "DATETIME": lambda item: _datetime(item.get("DateTime")),
    "DATE": lambda item: _date(item.get("Date")),
    "TIME": lambda item: _time(item.get("Time")),
    "UIDREF": lambda item: str(item.get("UID", "")),
    "PNAME": lambda item: _person(item.get("PersonName")),
    "COMPOSITE": _reference,
    "IMAGE": _reference,
    "WAVEFORM": _reference,
    "SCOORD": _scoord,
    "SCOORD3D": _scoord,
    "TCOORD": _tcoord,
    "CONTAINER": lambda item: "",
}


def _node(item: pydicom.Dataset) -> _Node:
    value_type = str(item.get("ValueType", ""))
    if not value_type and "ReferencedContentItemIdentifier" in item:
        path = ".".join(str(i) for i in _values(item.ReferencedContentItemIdentifier))
        value_type, value = "reference", f"see content item {path}"
    else:
        render = _VALUES.get(value_type)
        value = render(item) if render else f"(value type {value_type} is not rendered)"
    return _Node(
        relationship=str(item.get("RelationshipType", "")),
        value_type=value_type,
        concept=_meaning(item, "ConceptNameCodeSequence"),
        value=value,
        children=tuple(_node(child) for child in item.get("ContentSequence", [])),
    )


def _outline(ds: pydicom.Dataset) -> tuple[str, list[tuple[str, str]], _Node]:
    """The title, the patient/study/document header and the content tree of an SR."""
    root = _node(ds)
    title = root.concept or UID(str(ds.get("SOPClassUID", ""))).name or "Structured Report"
    observers = [
        f"{_person(o.get('VerifyingObserverName'))} ({_clean(o.get('VerifyingOrganization', ''))}"
        f", {_datetime(o.get('VerificationDateTime'))})"
        for o in ds.get("VerifyingObserverSequence", [])
    ]
    header = [
        ("Patient", _person(ds.get("PatientName"))),
        ("Patient ID", _clean(ds.get("PatientID", ""))),
        ("Birth date", _date(ds.get("PatientBirthDate"))),
        ("Sex", _clean(ds.get("PatientSex", ""))),
        ("Study", _clean(ds.get("StudyDescription", ""))),
        ("Study date", f"{_date(ds.get('StudyDate'))} {_time(ds.get('StudyTime'))}".strip()),
        ("Accession number", _clean(ds.get("AccessionNumber", ""))),
        ("Series", _clean(ds.get("SeriesDescription", ""))),
        ("Document", _uid(ds.get("SOPClassUID", ""))),
        ("Content date", f"{_date(ds.get('ContentDate'))} {_time(ds.get('ContentTime'))}".strip()),
        ("Completion", _clean(ds.get("CompletionFlag", ""))),
        ("Verification", _clean(ds.get("VerificationFlag", ""))),
        ("Verified by", "; ".join(observers)),
        ("Study Instance UID", str(ds.get("StudyInstanceUID", ""))),
        ("SOP Instance UID", str(ds.get("SOPInstanceUID", ""))),
    ]
    return title, [(label, value) for label, value in header if value], root


def _html_items(nodes: tuple[_Node, ...]) -> str:
    if not nodes:
        return ""
    items = []
    for node in nodes:
        value = f': <span class="value">{html.escape(node.value)}</span>' if node.value else ""
        items.append(
            f'<li><span class="rel">{html.escape(node.relationship)}</span> '
            f'<span class="concept">{html.escape(node.concept)}</span> '
            f'<span class="vt">{html.escape(node.value_type)}</span>'
            f"{value}{_html_items(node.children)}</li>\n"
        )
    return f"<ul>\n{''.join(items)}</ul>\n"


def _html(title: str, header: list[tuple[str, str]], root: _Node, charset: str) -> str:
    """An HTML5 page: title, header table, the content tree as nested lists."""
    rows = "".join(
        f"<tr><th>{html.escape(label)}</th><td>{html.escape(value)}</td></tr>\n"
        for label, value in header
    )
    return (
        '<!DOCTYPE html>\n<html lang="en">\n<head>\n'
        f'<meta charset="{html.escape(charset)}">\n<title>{html.escape(title)}</title>\n'
        f"<style>{_CSS}</style>\n</head>\n<body>\n<h1>{html.escape(title)}</h1>\n"
        f'<table class="header">\n{rows}</table>\n{_html_items(root.children)}</body>\n</html>\n'
    )


def _plain_items(nodes: tuple[_Node, ...], depth: int) -> Iterable[str]:
    indent = "  " * depth
    for node in nodes:
        head = " ".join(p for p in (f"[{node.relationship}]", node.concept) if p)
        line = f"{indent}{head} ({node.value_type})"
        if lines := [text.rstrip() for text in node.value.rstrip().splitlines()]:
            line += f": {lines[0]}" + "".join(f"\n{indent}    {rest}" for rest in lines[1:])
        yield line
        yield from _plain_items(node.children, depth + 1)


def _plain(title: str, header: list[tuple[str, str]], root: _Node) -> str:
    """The title, the header as ``label: value`` lines, the content tree indented."""
    lines = [title, "=" * len(title), *(f"{label}: {value}" for label, value in header), ""]
    return "\n".join([*lines, *_plain_items(root.children, 0)]) + "\n"
