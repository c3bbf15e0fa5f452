"""The typed content of the three WADO-WS requests, read from payloads their schema accepted.

Every request lists documents under StudyRequest/@studyInstanceUID and
SeriesRequest/@seriesInstanceUID (RAD TF-3 4.69.4.1.2; PS3.18 2016 6.4.1.1, 6.4.2.1, 6.4.3.1);
each document carries its RepositoryUniqueId, DocumentUniqueId (the SOP Instance UID) and an
optional HomeCommunityId, which the response repeats.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Final

from lxml import etree

from pacsflow.ws.names import IHE, IHE_RAD, WADO

__all__ = [
    "RENDERING_PARAMETERS",
    "DocumentRef",
    "InformationRequest",
    "RenderedRequest",
    "document_refs",
    "information_requests",
    "rendered_requests",
    "transfer_syntaxes",
]

# The rendering parameters of a RenderedDocumentRequest (PS3.18 2016 8.1, 8.2), in schema order.
RENDERING_PARAMETERS: Final = (
    "Annotation",
    "Rows",
    "Columns",
    "Region",
    "WindowWidth",
    "WindowCenter",
    "ImageQuality",
    "PresentationUID",
    "PresentationSeriesUID",
    "Anonymize",
    "FrameNumber",
)


@dataclass(frozen=True, slots=True)
class DocumentRef:
    """One requested document: its study, series and SOP Instance UID and where it is asked."""

    study: str
    series: str
    sop: str
    repository: str
    home: str | None = None


@dataclass(frozen=True, slots=True)
class RenderedRequest:
    """A RenderedDocumentRequest: the document, its rendering parameters and media types."""

    ref: DocumentRef
    parameters: dict[str, str] = field(default_factory=dict)
    content_types: tuple[str, ...] = ()
    charsets: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class InformationRequest:
    """A metadata DocumentRequest: the document, a frame and XPath expressions with the
    namespace prefixes in scope where each was written."""

    ref: DocumentRef
    frame: str | None = None
    xpaths: tuple[tuple[str, dict[str, str]], ...] = ()


def _text(element: etree._Element | None) -> str | None:
    return None if element is None else (element.text or "").strip()


def _documents(payload: etree._Element, item: str) -> list[tuple[DocumentRef, etree._Element]]:
    """(reference, element) of each ``item`` element under Study/SeriesRequest, in order."""
    namespace = etree.QName(payload).namespace
    found = []
    for study in payload.iterfind(f"{{{namespace}}}StudyRequest"):
        for series in study.iterfind(f"{{{namespace}}}SeriesRequest"):
            for element in series.iterfind(item):
                ref = DocumentRef(
                    str(study.get("studyInstanceUID", "")).strip(),
                    str(series.get("seriesInstanceUID", "")).strip(),
                    _text(element.find(f"{{{IHE}}}DocumentUniqueId")) or "",
                    _text(element.find(f"{{{IHE}}}RepositoryUniqueId")) or "",
                    _text(element.find(f"{{{IHE}}}HomeCommunityId")),
                )
                found.append((ref, element))
    return found


def document_refs(payload: etree._Element) -> list[DocumentRef]:
    """The documents of a RetrieveImagingDocumentSetRequest (RAD TF-3 4.69.4.1.2)."""
    return [ref for ref, _ in _documents(payload, f"{{{IHE}}}DocumentRequest")]


def transfer_syntaxes(payload: etree._Element) -> list[str]:
    """TransferSyntaxUIDList, in the order given (the consumer's preference)."""
    path = f"{{{IHE_RAD}}}TransferSyntaxUIDList/{{{IHE_RAD}}}TransferSyntaxUID"
    return [text for e in payload.iterfind(path) if (text := _text(e))]


def rendered_requests(payload: etree._Element) -> list[RenderedRequest]:
    """The RenderedDocumentRequests of a Retrieve Rendered request (PS3.18 2016 6.4.2.1)."""
    requests = []
    for ref, element in _documents(payload, f"{{{WADO}}}RenderedDocumentRequest"):
        parameters = {
            name: text
            for name in RENDERING_PARAMETERS
            if (text := _text(element.find(f"{{{WADO}}}{name}"))) is not None
        }
        types = element.iterfind(f"{{{WADO}}}ContentTypeList/{{{WADO}}}ContentType")
        charsets = element.iterfind(f"{{{WADO}}}CharsetList/{{{WADO}}}Charset")
        requests.append(
            RenderedRequest(
                ref,
                parameters,
                tuple(t for e in types if (t := _text(e))),
                tuple(c for e in charsets if (c := _text(e))),
            )
        )
    return requests


def information_requests(payload: etree._Element) -> list[InformationRequest]:
    """The DocumentRequests of a metadata request (PS3.18 2016 6.4.3.1)."""
    requests = []
    for ref, element in _documents(payload, f"{{{WADO}}}DocumentRequest"):
        xpaths = tuple(
            ((e.text or "").strip(), {p: ns for p, ns in e.nsmap.items() if p is not None})
            for e in element.iterfind(f"{{{WADO}}}XPathList/{{{WADO}}}XPath")
        )
        frame = _text(element.find(f"{{{WADO}}}FrameNumber"))
        requests.append(InformationRequest(ref, frame, xpaths))
    return requests
