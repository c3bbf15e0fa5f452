"""Rendered documents (pacsflow.render.document) on the real corpus and on built reports.

Every SR of the corpus (Basic Text, Enhanced, Comprehensive, Key Object Selection) renders as
an HTML page that ``html.parser`` reads without a script or an external resource and as plain
text, both holding every concept name and value pydicom sees in the content tree. The
encapsulated PDF renders as its own bytes less the pad byte; images and wrong media types are
refused (406), unknown charsets too (400).
"""

from __future__ import annotations

import csv
import html
import html.parser
from io import BytesIO
from pathlib import Path
from typing import Any

import pydicom
import pytest
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.multival import MultiValue
from pydicom.sequence import Sequence
from pydicom.uid import ExplicitVRLittleEndian

from pacsflow.errors import BadRequest, NotAcceptable
from pacsflow.render.document import is_structured_report, render_document
from tests.support.corpus import CORPUS, corpus_files

PDF_CLASS = "1.2.840.10008.5.1.4.1.1.104.1"


def _manifest() -> dict[Path, dict[str, str]]:
    with (CORPUS / "MANIFEST.csv").open() as fp:
        return {CORPUS / row["path"]: row for row in csv.DictReader(fp)}


MANIFEST = _manifest()
SR_FILES = [
    p
    for p in corpus_files()
    if "SR Storage" in MANIFEST[p]["SOPClassName"] or "Key Object" in MANIFEST[p]["SOPClassName"]
]
PDF_FILES = [p for p in corpus_files() if MANIFEST[p]["SOPClassUID"] == PDF_CLASS]
IMAGE_FILES = [p for p in corpus_files() if MANIFEST[p]["Rows"]][::10]


def _id(path: Path) -> str:
    return str(path.relative_to(CORPUS))


class _Page(html.parser.HTMLParser):
    """Collects the tags, the attributes that could load something, and the text of a page."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.tags: list[str] = []
        self.links: list[tuple[str, str | None]] = []
        self.text: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append(tag)
        self.links += [(k, v) for k, v in attrs if k in ("src", "href") or k.startswith("on")]

    def handle_data(self, data: str) -> None:
        self.text.append(data)


def _parse(body: bytes, encoding: str = "utf-8") -> _Page:
    page = _Page()
    page.feed(body.decode(encoding))
    page.close()
    return page


def _words(text: str) -> str:
    return " ".join(text.split())


def _values(value: Any) -> list[Any]:
    if value is None or value == "":
        return []
    return list(value) if isinstance(value, list | MultiValue) else [value]


def _expected(items: Sequence) -> list[str]:
    """The concept names and values of a content tree as pydicom reads them."""
    found: list[str] = []
    for item in items:
        for keyword in ("ConceptNameCodeSequence", "ConceptCodeSequence"):
            found += [str(code.CodeMeaning) for code in item.get(keyword, [])]
        found += [str(item[k].value) for k in ("TextValue", "UID") if item.get(k)]
        if item.get("PersonName"):
            found += [p for p in str(item.PersonName).replace("=", "^").split("^") if p]
        for measured in item.get("MeasuredValueSequence", []):
            found.append(str(measured.NumericValue))
            found += [str(u.CodeMeaning) for u in measured.MeasurementUnitsCodeSequence]
        for ref in item.get("ReferencedSOPSequence", []):
            found += [str(ref.ReferencedSOPClassUID), str(ref.ReferencedSOPInstanceUID)]
            found += [str(n) for n in _values(ref.get("ReferencedFrameNumber"))]
        if "GraphicType" in item:
            found.append(str(item.GraphicType))
            found += [f"{float(v):g}" for v in item.GraphicData]
        if "TemporalRangeType" in item:
            found.append(str(item.TemporalRangeType))
        for keyword, fmt in (("Date", "{0}-{1}-{2}"), ("Time", "{3}:{4}:{5}")):
            if raw := str(item.get(keyword, "")):
                found.append(fmt.format(raw[:4], raw[4:6], raw[6:8], raw[:2], raw[2:4], raw[4:6]))
        if "RelationshipType" in item:
            found.append(str(item.RelationshipType))
        found += _expected(item.get("ContentSequence", []))
    return [_words(v) for v in found if _words(v)]


@pytest.mark.parametrize("path", SR_FILES, ids=_id)
def test_sr_renders_as_html_with_every_concept_and_value(path: Path) -> None:
    ds = pydicom.dcmread(path)
    assert is_structured_report(ds)
    body, content_type = render_document(ds, "text/html")
    assert content_type == "text/html; charset=utf-8"
    assert body.startswith(b"<!DOCTYPE html>")
    page = _parse(body)
    assert "script" not in page.tags and not page.links
    assert {"html", "head", "title", "body", "h1", "table"} <= set(page.tags)
    text = _words(" ".join(page.text))
    title = html.escape(str(ds.ConceptNameCodeSequence[0].CodeMeaning))
    assert f"<title>{title}</title>" in body.decode() and f"<h1>{title}</h1>" in body.decode()
    missing = [value for value in _expected(ds.ContentSequence) if value not in text]
    assert not missing


@pytest.mark.parametrize("path", SR_FILES, ids=_id)
def test_sr_renders_as_plain_text_with_every_concept_and_value(path: Path) -> None:
    ds = pydicom.dcmread(path)
    body, content_type = render_document(ds, "text/plain")
    assert content_type == "text/plain; charset=utf-8"
    text = body.decode("utf-8")
    assert text.splitlines()[0] == str(ds.ConceptNameCodeSequence[0].CodeMeaning)
    assert "<" not in text.replace("<>", "")  # no markup (one OFFIS text holds "<>")
    words = _words(text)
    assert not [value for value in _expected(ds.ContentSequence) if value not in words]
    if ds.get("PatientID"):
        assert f"Patient ID: {ds.PatientID}" in text


def test_nested_tree_shows_depth_references_and_coordinates() -> None:
    ds = pydicom.dcmread(CORPUS / "objects/SR_comprehensive_nested.dcm")
    text = render_document(ds, "text/plain")[0].decode()
    assert "  [HAS PROPERTIES] SCoord Code (SCOORD): CIRCLE 0, 0, 255, 255" in text
    assert "[HAS PROPERTIES] TCoord Code (TCOORD): SEGMENT time offsets 1, 2.5" in text
    assert "(reference): see content item 1.3.2" in text
    assert "CT Image Storage (1.2.840.10008.5.1.4.1.1.2), instance 1.2.3.4.5.0; frames 5, 2" in text
    assert "presentation Grayscale Softcopy Presentation State Storage" in text
    assert "Hemodynamic Waveform Storage" in text and "channels 5, 3, 2, 0" in text
    assert "Diameter (NUM): 3 cm (Length Unit)" in text
    assert "DateTime (DATETIME): 2000-12-06 12:00:00" in text
    assert "Verified by: Riesmeier, Jörg (OFFIS e.V., 2001-02-13 18:47:46)" in text
    page = render_document(ds, "text/html")[0].decode()
    assert page.count("<ul>") == page.count("</ul>") >= 5


def _report(text: str, name: str = "Müller^Jürgen", charset: str = "ISO_IR 192") -> Dataset:
    """A Comprehensive SR with one TEXT and one PNAME item, built in memory."""
    ds = Dataset()
    ds.SpecificCharacterSet = charset
    ds.SOPClassUID = "1.2.840.10008.5.1.4.1.1.88.33"
    ds.SOPInstanceUID = "1.2.3.4"
    ds.PatientName = name
    ds.PatientID = "<b>ID</b>"
    ds.ValueType = "CONTAINER"
    ds.ContinuityOfContent = "SEPARATE"
    ds.ConceptNameCodeSequence = [_code("18748-4", "LN", "Diagnostic <Imaging> Report")]
    finding = Dataset()
    finding.RelationshipType = "CONTAINS"
    finding.ValueType = "TEXT"
    finding.ConceptNameCodeSequence = [_code("121071", "DCM", "Finding")]
    finding.TextValue = text
    observer = Dataset()
    observer.RelationshipType = "HAS OBS CONTEXT"
    observer.ValueType = "PNAME"
    observer.ConceptNameCodeSequence = [_code("121008", "DCM", "Person Observer Name")]
    observer.PersonName = name
    ds.ContentSequence = [observer, finding]
    return ds


def _code(value: str, scheme: str, meaning: str) -> Dataset:
    code = Dataset()
    code.CodeValue, code.CodingSchemeDesignator, code.CodeMeaning = value, scheme, meaning
    return code


def test_dicom_text_is_escaped_and_never_markup() -> None:
    ds = _report("<script>alert('x')</script> & <img src=x onerror=alert(1)>")
    body = render_document(ds, "text/html")[0]
    page = _parse(body)
    assert page.tags.count("script") == 0 and "img" not in page.tags and not page.links
    assert "b" not in page.tags  # the Patient ID "<b>ID</b>" is text
    text = "".join(page.text)
    assert "<script>alert('x')</script> & <img src=x onerror=alert(1)>" in text
    assert "<b>ID</b>" in text and "Diagnostic <Imaging> Report" in text
    assert b"&lt;script&gt;" in body
    plain = render_document(ds, "text/plain")[0].decode()
    assert "Finding (TEXT): <script>alert('x')</script>" in plain


def test_default_charset_is_utf8_with_every_character() -> None:
    ds = _report("日本語の所見: 異常なし. Grüße aus München")
    body, content_type = render_document(ds, "text/html")
    assert content_type == "text/html; charset=utf-8"
    assert "日本語の所見: 異常なし. Grüße aus München" in body.decode("utf-8")
    assert "Müller, Jürgen" in body.decode("utf-8")


def test_charset_latin1_keeps_german_and_references_japanese_in_html() -> None:
    ds = _report("日本 Grüße")
    body, content_type = render_document(ds, "text/html", "ISO-8859-1")
    assert content_type == "text/html; charset=ISO-8859-1"
    assert b'<meta charset="ISO-8859-1">' in body
    assert "Gr\xfc\xdfe".encode("latin-1") in body and b"&#26085;&#26412; Gr" in body
    assert "日本 Grüße" in "".join(_parse(body, "latin-1").text)
    text, text_type = render_document(ds, "text/plain", "latin1")
    assert text_type == "text/plain; charset=latin1"
    assert "?? Grüße".encode("latin-1") in text


def test_charset_shift_jis_encodes_japanese() -> None:
    ds = _report("日本語の所見", name="Yamada^Tarou=山田^太郎")
    body, content_type = render_document(ds, "text/plain", "shift_jis")
    assert content_type == "text/plain; charset=shift_jis"
    assert "日本語の所見".encode("shift_jis") in body
    assert "Yamada, Tarou = 山田, 太郎" in body.decode("shift_jis")


@pytest.mark.parametrize("charset", ["klingon-8", "base64", "rot13", "utf-8\r\nX-Evil: 1", "a b"])
def test_unknown_charset_is_a_bad_request(charset: str) -> None:
    with pytest.raises(BadRequest):
        render_document(_report("x"), "text/html", charset)


@pytest.mark.parametrize("path", PDF_FILES, ids=_id)
def test_pdf_is_the_encapsulated_document_less_its_pad(path: Path) -> None:
    ds = pydicom.dcmread(path)
    body, content_type = render_document(ds, "application/pdf")
    assert content_type == "application/pdf"
    assert body.startswith(b"%PDF-")
    assert body.rstrip().endswith(b"%%EOF")
    stored = bytes(ds.EncapsulatedDocument)
    assert len(stored) % 2 == 0 and stored.startswith(body)
    if "EncapsulatedDocumentLength" in ds:
        assert len(body) == ds.EncapsulatedDocumentLength
    assert len(stored) - len(body) in (0, 1) and not body.endswith(b"\x00")
    for media_type in ("text/html", "text/plain", "image/jpeg"):
        with pytest.raises(NotAcceptable):
            render_document(ds, media_type)


def test_pdf_without_declared_length_loses_a_trailing_nul_only() -> None:
    ds = pydicom.dcmread(PDF_FILES[0])
    del ds.EncapsulatedDocumentLength
    document = bytes(ds.EncapsulatedDocument)
    assert render_document(ds, "application/pdf")[0] == document.removesuffix(b"\x00")
    ds.EncapsulatedDocument = b"%PDF-1.4\n%%EOF\n\n"  # even length, no pad
    assert render_document(ds, "application/pdf")[0] == b"%PDF-1.4\n%%EOF\n\n"


def test_encapsulated_cda_is_text_xml() -> None:
    ds = Dataset()
    ds.SOPClassUID = "1.2.840.10008.5.1.4.1.1.104.2"
    ds.MIMETypeOfEncapsulatedDocument = "text/XML"
    ds.EncapsulatedDocument = b"<ClinicalDocument/>\x00"
    assert render_document(ds, "text/xml") == (b"<ClinicalDocument/>", "text/xml")
    with pytest.raises(NotAcceptable):
        render_document(ds, "application/pdf")


@pytest.mark.parametrize("path", IMAGE_FILES, ids=_id)
@pytest.mark.parametrize("media_type", ["text/html", "text/plain", "application/pdf"])
def test_images_have_no_document_rendering(path: Path, media_type: str) -> None:
    ds = pydicom.dcmread(path, stop_before_pixels=True)
    with pytest.raises(NotAcceptable):
        render_document(ds, media_type)


@pytest.mark.parametrize("media_type", ["application/pdf", "image/jpeg", "text/xml"])
def test_sr_in_other_media_types_is_not_acceptable(media_type: str) -> None:
    with pytest.raises(NotAcceptable):
        render_document(pydicom.dcmread(SR_FILES[0]), media_type)


def test_media_type_parameters_and_case_are_ignored() -> None:
    body, content_type = render_document(_report("x"), "Text/HTML; q=0.9", "UTF-8")
    assert content_type == "text/html; charset=UTF-8" and body.startswith(b"<!DOCTYPE html>")


def test_rendering_written_and_read_back_report_is_the_same() -> None:
    ds = _report("Grüße")
    ds.file_meta = FileMetaDataset()
    ds.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds.file_meta.MediaStorageSOPClassUID = ds.SOPClassUID
    ds.file_meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
    buffer = BytesIO()
    ds.save_as(buffer, enforce_file_format=True)
    again = pydicom.dcmread(BytesIO(buffer.getvalue()))
    assert render_document(again, "text/plain") == render_document(ds, "text/plain")


def test_corpus_has_the_documents_these_tests_need() -> None:
    assert len(SR_FILES) >= 5 and PDF_FILES and IMAGE_FILES
