"""A WADO-WS consumer for the tests: zeep reading the served WSDL, and raw SOAP envelopes.

zeep (a real SOAP client) builds every request from the WSDL the server serves at ``?wsdl``
and decodes the MTOM/XOP responses; raw envelopes reach the cases a conforming client never
sends (faults). The corpus study used throughout is CT_small's: five instances in five series
(an image stored Explicit VR Little Endian, a GSPS, a Key Object Selection, an encapsulated PDF
and an HTJ2K image).
"""

from __future__ import annotations

import warnings
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any, TypeVar

import httpx
import pydicom
import zeep
from lxml import etree

from tests.support.corpus import CORPUS

T = TypeVar("T")

CT_STUDY_FILES = (
    "modality/CT_small.dcm",
    "derived/GSPS_for_CT_small.dcm",
    "derived/KOS_key_image_CT_small.dcm",
    "derived/encapsulated_pdf_in_CT_small_study.dcm",
    "derived/htj2k_lossless_CT_small.dcm",
)
MULTIFRAME = "multiframe/enhanced_MR_10frame.dcm"
EXPLICIT_LE = "1.2.840.10008.1.2.1"
HTJ2K_LOSSLESS = "1.2.840.10008.1.2.4.201"
JPEG_LS_LOSSLESS = "1.2.840.10008.1.2.4.80"
JPIP = "1.2.840.10008.1.2.4.94"  # a transfer syntax no instance can be written in here
REPOSITORY = "1.3.6.1.4.1.21367.13.71.101"
SOAP12 = "http://www.w3.org/2003/05/soap-envelope"
SOAP11 = "http://schemas.xmlsoap.org/soap/envelope/"
WSA = "http://www.w3.org/2005/08/addressing"
RAD69_ACTION = "urn:ihe:rad:2009:RetrieveImagingDocumentSet"
NS = {
    "env": SOAP12,
    "s11": SOAP11,
    "wsa": WSA,
    "ihe": "urn:ihe:iti:xds-b:2007",
    "rs": "urn:oasis:names:tc:ebxml-regrep:xsd:rs:3.0",
    "wado": "urn:dicom:wado:ws:2011",
    "xop": "http://www.w3.org/2004/08/xop/include",
}
SUCCESS = "urn:oasis:names:tc:ebxml-regrep:ResponseStatusType:Success"
PARTIAL = "urn:ihe:iti:2007:ResponseStatusType:PartialSuccess"
FAILURE = "urn:oasis:names:tc:ebxml-regrep:ResponseStatusType:Failure"


@dataclass(frozen=True)
class Doc:
    """A corpus file and the UIDs that name it as a document."""

    path: Path
    study: str
    series: str
    sop: str
    transfer_syntax: str

    @property
    def data(self) -> bytes:
        return self.path.read_bytes()


@cache
def doc(relative: str) -> Doc:
    path = CORPUS / relative
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ds = pydicom.dcmread(path, stop_before_pixels=True)
    return Doc(
        path,
        str(ds.StudyInstanceUID),
        str(ds.SeriesInstanceUID),
        str(ds.SOPInstanceUID),
        str(ds.file_meta.TransferSyntaxUID),
    )


def ct_study() -> list[Doc]:
    return [doc(name) for name in CT_STUDY_FILES]


def client(dicomweb_url: str) -> zeep.Client:
    """A zeep client built from the WSDL the server serves."""
    return zeep.Client(f"{dicomweb_url}/wado-ws?wsdl")


def study_requests(items: Iterable[tuple[Doc, dict[str, Any]]], item: str) -> list[dict[str, Any]]:
    """StudyRequest/SeriesRequest/``item`` dictionaries for zeep, in the order given."""
    studies: dict[str, dict[str, list[dict[str, Any]]]] = {}
    for document, extra in items:
        entry = {"RepositoryUniqueId": REPOSITORY, "DocumentUniqueId": document.sop, **extra}
        studies.setdefault(document.study, {}).setdefault(document.series, []).append(entry)
    return [
        {
            "studyInstanceUID": study,
            "SeriesRequest": [
                {"seriesInstanceUID": series, item: entries}
                for series, entries in by_series.items()
            ],
        }
        for study, by_series in studies.items()
    ]


def in_wire_order(items: Sequence[tuple[Doc, T]]) -> list[tuple[Doc, T]]:
    """``items`` in the order a request lists them: grouped by study, then series (stable)."""
    studies = list(dict.fromkeys(d.study for d, _ in items))
    series = list(dict.fromkeys(d.series for d, _ in items))
    return sorted(
        items, key=lambda item: (studies.index(item[0].study), series.index(item[0].series))
    )


def retrieve(soap: zeep.Client, docs: Sequence[Doc], syntaxes: Sequence[str]) -> Any:
    """RetrieveImagingDocumentSet (RAD-69) through zeep."""
    return soap.service.ImagingDocumentSource_RetrieveImagingDocumentSet(
        StudyRequest=study_requests(((d, {}) for d in docs), "DocumentRequest"),
        TransferSyntaxUIDList={"TransferSyntaxUID": list(syntaxes)},
    )


def rendered(soap: zeep.Client, requests: Sequence[tuple[Doc, dict[str, Any]]]) -> Any:
    """RetrieveRenderedImagingDocumentSet through zeep; each request's extra elements given."""
    return soap.service.ImagingDocumentSource_RetrieveRenderedImagingDocumentSet(
        StudyRequest=study_requests(requests, "RenderedDocumentRequest")
    )


def metadata(soap: zeep.Client, requests: Sequence[tuple[Doc, dict[str, Any]]]) -> Any:
    """RetrieveImagingDocumentSetMetadata through zeep."""
    return soap.service.ImagingDocumentSource_RetrieveImagingDocumentSetMetadata(
        StudyRequest=study_requests(requests, "DocumentRequest")
    )


def errors(result: Any) -> list[tuple[str, str]]:
    """(errorCode, location) of each RegistryError of a zeep response."""
    listing = result.RegistryResponse.RegistryErrorList
    return [(e.errorCode, e.location) for e in (listing.RegistryError if listing else [])]


def rad69_payload(docs: Sequence[Doc], syntaxes: Sequence[str]) -> str:
    """A RetrieveImagingDocumentSetRequest element, as XML text."""
    studies = []
    for entry in study_requests(((d, {}) for d in docs), "DocumentRequest"):
        series = "".join(
            f'<SeriesRequest seriesInstanceUID="{s["seriesInstanceUID"]}">'
            + "".join(
                "<iti:DocumentRequest>"
                f"<iti:RepositoryUniqueId>{d['RepositoryUniqueId']}</iti:RepositoryUniqueId>"
                f"<iti:DocumentUniqueId>{d['DocumentUniqueId']}</iti:DocumentUniqueId>"
                "</iti:DocumentRequest>"
                for d in s["DocumentRequest"]
            )
            + "</SeriesRequest>"
            for s in entry["SeriesRequest"]
        )
        studies.append(
            f'<StudyRequest studyInstanceUID="{entry["studyInstanceUID"]}">{series}</StudyRequest>'
        )
    listed = "".join(f"<TransferSyntaxUID>{ts}</TransferSyntaxUID>" for ts in syntaxes)
    return (
        '<RetrieveImagingDocumentSetRequest xmlns="urn:ihe:rad:xdsi-b:2009"'
        ' xmlns:iti="urn:ihe:iti:xds-b:2007">'
        + "".join(studies)
        + f"<TransferSyntaxUIDList>{listed}</TransferSyntaxUIDList>"
        "</RetrieveImagingDocumentSetRequest>"
    )


def envelope(payload: str, headers: str = "", namespace: str = SOAP12) -> bytes:
    """A raw SOAP envelope around ``payload`` (text), with header blocks ``headers``."""
    return (
        f'<?xml version="1.0" encoding="UTF-8"?><s:Envelope xmlns:s="{namespace}"'
        f' xmlns:a="{WSA}"><s:Header>{headers}</s:Header><s:Body>{payload}</s:Body></s:Envelope>'
    ).encode()


def post(url: str, body: bytes, content_type: str, **headers: str) -> httpx.Response:
    """POST a raw SOAP message to the endpoint."""
    return httpx.post(
        f"{url}/wado-ws",
        content=body,
        headers={"content-type": content_type, **headers},
        timeout=60,
    )


def soap12(action: str | None = RAD69_ACTION) -> str:
    return "application/soap+xml; charset=utf-8" + (f'; action="{action}"' if action else "")


@dataclass(frozen=True)
class Fault:
    """A fault as received: HTTP status, content type and what the envelope says."""

    status: int
    media_type: str
    code: str
    subcodes: tuple[str, ...]
    reason: str
    root: etree._Element


def fault(response: httpx.Response) -> Fault:
    """Read a SOAP 1.2 (or 1.1) fault response."""
    root = etree.fromstring(response.content)
    media = response.headers["content-type"].split(";")[0]
    if root.tag == f"{{{SOAP11}}}Envelope":
        code = root.findtext("s11:Body/s11:Fault/faultcode", namespaces=NS) or ""
        reason = root.findtext("s11:Body/s11:Fault/faultstring", namespaces=NS) or ""
        return Fault(response.status_code, media, code, (), reason, root)
    found = root.find("env:Body/env:Fault", NS)
    assert found is not None, response.text
    code = found.findtext("env:Code/env:Value", namespaces=NS) or ""
    subcodes = tuple(v.text or "" for v in found.iterfind(".//env:Subcode/env:Value", NS))
    reason = found.findtext("env:Reason/env:Text", namespaces=NS) or ""
    return Fault(response.status_code, media, code, subcodes, reason, root)


def mtom_parts(response: httpx.Response) -> list[tuple[dict[str, str], bytes]]:
    """(headers, bytes) of each part of an MTOM response, split exactly at the boundaries."""
    content_type = response.headers["content-type"]
    boundary = next(
        p.split("=", 1)[1].strip('"')
        for p in (x.strip() for x in content_type.split(";"))
        if p.startswith("boundary=")
    )
    body = response.content
    delimiter = f"--{boundary}".encode()
    closing = b"\r\n" + delimiter + b"--\r\n"
    assert body.startswith(delimiter) and body.endswith(closing)
    parts = []
    for chunk in body[len(delimiter) : -len(closing)].split(b"\r\n" + delimiter):
        head, _, data = chunk.removeprefix(b"\r\n").partition(b"\r\n\r\n")
        headers = dict(line.split(": ", 1) for line in head.decode().split("\r\n"))
        parts.append(({k.lower(): v for k, v in headers.items()}, data))
    return parts
