"""WADO-WS in process (PS3.18 2016 6.4, IHE RAD-69): zeep on the served WSDL, raw envelopes.

The app runs on a real uvicorn socket (tests.service.conftest) over embedded backends with the
ingest processor; STOW stores the corpus files; zeep, in a worker thread (its transport is
synchronous), reads ``?wsdl`` and calls the three operations, decoding the MTOM responses.
Documents are compared byte for byte with the files STOW sent; renderings with what WADO-URI
renders from the same parameters; metadata with WADO-RS's.
"""

from __future__ import annotations

import asyncio
import base64
import io
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any, TypeVar

import numpy as np
import pydicom
import pytest
import zeep
from lxml import etree
from PIL import Image

from pacsflow.config import Settings
from pacsflow.container import build_container
from pacsflow.dicom.xml import xml_to_dataset
from pacsflow.errors import RETRY_AFTER_SECONDS
from streams.runner import run_ingest_processor
from tests.support.dicomweb import multipart
from tests.support.serving import Running, serve
from tests.support.wado_ws import (
    CT_STUDY_FILES,
    EXPLICIT_LE,
    FAILURE,
    HTJ2K_LOSSLESS,
    JPEG_LS_LOSSLESS,
    JPIP,
    MULTIFRAME,
    NS,
    PARTIAL,
    RAD69_ACTION,
    REPOSITORY,
    SOAP11,
    SUCCESS,
    Doc,
    client,
    ct_study,
    doc,
    envelope,
    errors,
    fault,
    in_wire_order,
    metadata,
    mtom_parts,
    post,
    rad69_payload,
    rendered,
    retrieve,
    soap12,
    study_requests,
)

T = TypeVar("T")
SECRET = "wado-ws-test-secret"


async def _store(running: Running, files: list[str]) -> None:
    body, boundary = multipart([doc(name).data for name in files])
    response = await running.client.post(
        f"{running.url}/studies",
        content=body,
        headers={
            "content-type": f'multipart/related; type="application/dicom"; boundary={boundary}'
        },
    )
    assert response.status_code == 200, response.text


async def _archive(tmp_path: Path, store: bool = True, **settings: Any) -> AsyncIterator[Running]:
    container = build_container(Settings(data_dir=tmp_path, **settings))
    await container.start()
    stop = asyncio.Event()
    processor = asyncio.create_task(
        run_ingest_processor(container.bus, container.ingest_context, stop)
    )
    try:
        async for running in serve(container, ("stow", "wado")):
            if store:
                await _store(running, [*CT_STUDY_FILES, MULTIFRAME])
            yield running
    finally:
        stop.set()
        await processor
        await container.close()


@pytest.fixture
async def archive(tmp_path: Path) -> AsyncIterator[Running]:
    """The CT_small study and a 10-frame MR stored; de-identification on."""
    async for running in _archive(tmp_path, anonymize_secret=SECRET):
        yield running


async def call(function: Callable[..., T], *args: Any, **kwargs: Any) -> T:
    """Run a zeep call in a worker thread: the server shares this test's event loop."""
    return await asyncio.to_thread(function, *args, **kwargs)


async def soap_client(running: Running) -> zeep.Client:
    return await call(client, running.url)


# --- the WSDL and its schemas ------------------------------------------------------------------


async def test_zeep_reads_the_served_wsdl_and_schemas(archive: Running) -> None:
    soap = await soap_client(archive)
    [service] = soap.wsdl.services.values()
    [port] = service.ports.values()
    assert port.binding_options["address"] == f"{archive.url}/wado-ws"
    assert sorted(port.binding._operations) == [
        "ImagingDocumentSource_RetrieveImagingDocumentSet",
        "ImagingDocumentSource_RetrieveImagingDocumentSetMetadata",
        "ImagingDocumentSource_RetrieveRenderedImagingDocumentSet",
    ]
    schema = await archive.client.get(f"{archive.url}/wado-ws", params={"xsd": "rs.xsd"})
    assert schema.status_code == 200
    assert schema.headers["content-type"].startswith("text/xml")
    assert etree.fromstring(schema.content).get("targetNamespace") == NS["rs"]
    unknown = await archive.client.get(f"{archive.url}/wado-ws", params={"xsd": "../x.xsd"})
    assert unknown.status_code == 404
    bare = await archive.client.get(f"{archive.url}/wado-ws")
    assert bare.status_code == 400 and "?wsdl" in bare.json()["message"]


# --- RetrieveImagingDocumentSet (RAD-69) -------------------------------------------------------


async def test_a_multi_document_study_comes_back_byte_for_byte(archive: Running) -> None:
    """Every document in its stored syntax (both listed): the very bytes STOW sent."""
    soap = await soap_client(archive)
    study = ct_study()
    result = await call(retrieve, soap, study, [EXPLICIT_LE, HTJ2K_LOSSLESS])
    assert result.RegistryResponse.status == SUCCESS
    assert result.RegistryResponse.RegistryErrorList is None
    got = [(d.DocumentUniqueId, d.RepositoryUniqueId, d.mimeType) for d in result.DocumentResponse]
    assert got == [(d.sop, REPOSITORY, "application/dicom") for d in study]
    for document, response in zip(study, result.DocumentResponse, strict=True):
        assert response.Document == document.data, document.path


async def test_a_document_is_transcoded_to_the_first_listed_syntax_it_can_take(
    archive: Running,
) -> None:
    """Unless its stored syntax is listed (then it goes as stored, whatever the order)."""
    soap = await soap_client(archive)
    htj2k = doc("derived/htj2k_lossless_CT_small.dcm")
    ct = doc("modality/CT_small.dcm")
    result = await call(retrieve, soap, [htj2k, ct], [JPIP, JPEG_LS_LOSSLESS, EXPLICIT_LE])
    assert result.RegistryResponse.status == SUCCESS
    original = pydicom.dcmread(htj2k.path).pixel_array
    transcoded, stored = result.DocumentResponse
    ds = pydicom.dcmread(io.BytesIO(transcoded.Document))
    assert ds.file_meta.TransferSyntaxUID == JPEG_LS_LOSSLESS  # JPIP cannot be written
    assert np.array_equal(ds.pixel_array, original)  # lossless to lossless
    assert stored.Document == ct.data  # its stored syntax is listed: sent as stored
    ele = await call(retrieve, soap, [htj2k], [EXPLICIT_LE])
    ds = pydicom.dcmread(io.BytesIO(ele.DocumentResponse[0].Document))
    assert ds.file_meta.TransferSyntaxUID == EXPLICIT_LE
    assert np.array_equal(ds.pixel_array, original)


async def test_missing_and_misplaced_documents_are_a_partial_success(archive: Running) -> None:
    soap = await soap_client(archive)
    ct, kos = doc("modality/CT_small.dcm"), doc("derived/KOS_key_image_CT_small.dcm")
    unknown = Doc(ct.path, ct.study, ct.series, "1.2.826.0.1.3680043.8.498.1", EXPLICIT_LE)
    misplaced = Doc(kos.path, kos.study, ct.series, kos.sop, EXPLICIT_LE)  # wrong series
    result = await call(retrieve, soap, [unknown, ct, misplaced], [EXPLICIT_LE])
    assert result.RegistryResponse.status == PARTIAL
    assert errors(result) == [
        ("XDSDocumentUniqueIdError", unknown.sop),
        ("urn:dicom:wado:0010", kos.sop),
    ]
    assert [d.DocumentUniqueId for d in result.DocumentResponse] == [ct.sop]
    assert result.DocumentResponse[0].Document == ct.data


async def test_no_document_returned_is_a_failure(archive: Running) -> None:
    soap = await soap_client(archive)
    ct = doc("modality/CT_small.dcm")
    untranscodable = await call(retrieve, soap, [ct], [JPIP])
    assert untranscodable.RegistryResponse.status == FAILURE
    assert errors(untranscodable) == [("urn:dicom:wado:0007", ct.sop)]
    assert untranscodable.DocumentResponse == []
    gone = Doc(ct.path, "1.2.3", "1.2.3.4", "1.2.3.4.5", EXPLICIT_LE)
    unknown = await call(retrieve, soap, [gone], [EXPLICIT_LE])
    assert unknown.RegistryResponse.status == FAILURE
    assert errors(unknown) == [("XDSDocumentUniqueIdError", "1.2.3.4.5")]


async def test_a_bad_transfer_syntax_is_a_fault_zeep_raises(archive: Running) -> None:
    soap = await soap_client(archive)
    with pytest.raises(zeep.exceptions.Fault) as raised:
        await call(retrieve, soap, ct_study()[:1], ["not-a-uid"])
    assert "not a UID" in raised.value.message


async def test_inline_base64_when_the_client_asks_for_plain_soap(archive: Running) -> None:
    ct = doc("modality/CT_small.dcm")
    body = envelope(rad69_payload([ct], [EXPLICIT_LE]))
    plain = await asyncio.to_thread(
        post, archive.url, body, soap12(), accept="application/soap+xml"
    )
    assert plain.status_code == 200
    assert plain.headers["content-type"].startswith("application/soap+xml")
    text = etree.fromstring(plain.content).findtext(".//ihe:Document", namespaces=NS)
    assert base64.b64decode(text or "") == ct.data
    mtom = await asyncio.to_thread(post, archive.url, body, soap12())  # no Accept: MTOM
    root, attachment = mtom_parts(mtom)
    assert root[0]["content-type"].startswith(
        'application/xop+xml; charset=UTF-8; type="application/soap+xml'
    )
    include = etree.fromstring(root[1]).find(".//ihe:Document/xop:Include", NS)
    assert include is not None and include.get("href") == "cid:" + attachment[0]["content-id"][1:-1]
    assert attachment[0]["content-type"] == "application/dicom"
    assert "content-transfer-encoding" not in attachment[0]
    assert attachment[1] == ct.data


async def test_an_mtom_request_with_ws_addressing_is_answered_in_kind(archive: Running) -> None:
    ct = doc("modality/CT_small.dcm")
    headers = (
        f'<a:Action s:mustUnderstand="true">{RAD69_ACTION}</a:Action>'
        "<a:MessageID>urn:uuid:7d0e0c3e-1a2b-4c5d-8e9f-0a1b2c3d4e5f</a:MessageID>"
        "<a:ReplyTo><a:Address>http://www.w3.org/2005/08/addressing/anonymous</a:Address></a:ReplyTo>"
    )
    root = envelope(rad69_payload([ct], [EXPLICIT_LE]), headers)
    package = (
        b"--MIME\r\nContent-Type: application/xop+xml; charset=UTF-8;"
        b' type="application/soap+xml"\r\nContent-ID: <root@consumer>\r\n\r\n'
        + root
        + b"\r\n--MIME--\r\n"
    )
    content_type = (
        'multipart/related; type="application/xop+xml"; boundary=MIME; start="<root@consumer>";'
        f' start-info="application/soap+xml"; action="{RAD69_ACTION}"'
    )
    response = await asyncio.to_thread(post, archive.url, package, content_type)
    assert response.status_code == 200
    envelope_part, document = mtom_parts(response)
    header = etree.fromstring(envelope_part[1]).find("env:Header", NS)
    assert header is not None
    assert header.findtext("wsa:Action", namespaces=NS) == (
        "urn:ihe:iti:2007:RetrieveDocumentSetResponse"
    )
    assert header.find("wsa:Action", NS).get(f"{{{NS['env']}}}mustUnderstand") == "true"
    assert header.findtext("wsa:RelatesTo", namespaces=NS) == (
        "urn:uuid:7d0e0c3e-1a2b-4c5d-8e9f-0a1b2c3d4e5f"
    )
    assert document[1] == ct.data


# --- RetrieveRenderedImagingDocumentSet ----------------------------------------------------------


async def test_renderings_are_what_wado_uri_renders_from_the_same_parameters(
    archive: Running,
) -> None:
    soap = await soap_client(archive)
    ct, mr = doc("modality/CT_small.dcm"), doc(MULTIFRAME)
    png = {"ContentTypeList": {"ContentType": ["image/png"]}}
    asked = [  # in wire order: both CT requests, then the MR one
        (ct, {**png, "Rows": "64", "Columns": "64", "WindowCenter": "40", "WindowWidth": "400"}),
        (ct, {"ContentTypeList": {"ContentType": ["image/jpeg"]}, "ImageQuality": "70"}),
        (mr, {**png, "FrameNumber": "3", "Region": "0.25,0.25,0.75,0.75"}),
    ]
    result = await call(rendered, soap, asked)
    assert result.RegistryResponse.status == SUCCESS
    uri = [
        {"rows": "64", "columns": "64", "windowCenter": "40", "windowWidth": "400"},
        {"imageQuality": "70", "contentType": "image/jpeg"},
        {"frameNumber": "3", "region": "0.25,0.25,0.75,0.75", "contentType": "image/png"},
    ]
    for (document, _), parameters, response in zip(
        asked, uri, result.RenderedDocumentResponse, strict=True
    ):
        assert response.SourceDocumentUniqueId == document.sop
        query = {
            "requestType": "WADO",
            "studyUID": document.study,
            "seriesUID": document.series,
            "objectUID": document.sop,
            "contentType": "image/png",
            **parameters,
        }
        expected = await archive.client.get(f"{archive.url}/wado", params=query)
        assert expected.status_code == 200
        assert response.mimeType == expected.headers["content-type"]
        assert response.Document == expected.content
    first = result.RenderedDocumentResponse[0]
    assert (first.Rows, first.Columns, first.WindowCenter, first.WindowWidth) == (
        "64",
        "64",
        "40",
        "400",
    )
    assert Image.open(io.BytesIO(first.Document)).size == (64, 64)
    assert result.RenderedDocumentResponse[2].FrameNumber == "3"


async def test_anonymize_renders_the_de_identified_object(archive: Running) -> None:
    soap = await soap_client(archive)
    ct = doc("modality/CT_small.dcm")
    asked = {"ContentTypeList": {"ContentType": ["image/png"]}, "Annotation": "patient"}
    plain, anonymized = (
        await call(rendered, soap, [(ct, asked)]),
        await call(rendered, soap, [(ct, {**asked, "Anonymize": "yes"})]),
    )
    assert plain.RegistryResponse.status == anonymized.RegistryResponse.status == SUCCESS
    assert anonymized.RenderedDocumentResponse[0].Anonymize == "yes"
    before = np.asarray(Image.open(io.BytesIO(plain.RenderedDocumentResponse[0].Document)))
    after = np.asarray(Image.open(io.BytesIO(anonymized.RenderedDocumentResponse[0].Document)))
    assert before.shape == after.shape and not np.array_equal(before, after)  # other name burned


async def test_rendering_requests_that_cannot_be_met_get_their_error_codes(
    archive: Running,
) -> None:
    soap = await soap_client(archive)
    ct, mr = doc("modality/CT_small.dcm"), doc(MULTIFRAME)
    pdf = doc("derived/encapsulated_pdf_in_CT_small_study.dcm")
    jpeg = {"ContentTypeList": {"ContentType": ["image/jpeg"]}}
    asked = in_wire_order(
        [
            (mr, {**jpeg, "FrameNumber": "11"}),
            (ct, {**jpeg, "PresentationUID": "1.2.3"}),
            (ct, {"ContentTypeList": {"ContentType": ["video/mp4"]}}),
            (pdf, jpeg),
            (ct, {**jpeg, "WindowCenter": "x", "WindowWidth": "400"}),
            (ct, {**jpeg, "Anonymize": "no"}),
            (pdf, {"ContentTypeList": {"ContentType": ["application/pdf"]}}),
        ]
    )
    result = await call(rendered, soap, asked)
    assert result.RegistryResponse.status == PARTIAL
    codes = {
        mr.sop: ["urn:dicom:wado:0018"],
        ct.sop: ["urn:dicom:wado:0013", "urn:dicom:wado:0006", *["urn:dicom:wado:0012"] * 2],
        pdf.sop: ["urn:dicom:wado:0007"],
    }
    expected = [(code, d.sop) for d in dict.fromkeys(d for d, _ in asked) for code in codes[d.sop]]
    assert errors(result) == expected
    reasons = [e.codeContext for e in result.RegistryResponse.RegistryErrorList.RegistryError]
    assert any("WindowCenter" in reason for reason in reasons)
    [document] = result.RenderedDocumentResponse
    assert document.mimeType == "application/pdf"
    assert document.Document == pydicom.dcmread(pdf.path).EncapsulatedDocument.rstrip(b"\0")


# --- RetrieveImagingDocumentSetMetadata ----------------------------------------------------------


async def test_metadata_is_the_wado_rs_metadata_as_ps319_xml(archive: Running) -> None:
    soap = await soap_client(archive)
    study = [*ct_study(), doc(MULTIFRAME)]
    result = await call(metadata, soap, [(d, {}) for d in study])
    assert result.RegistryResponse.status == SUCCESS
    for document, response in zip(study, result.DocumentInformationResponse, strict=True):
        assert (response.DocumentUniqueId, response.mimeType) == (
            document.sop,
            "application/dicom+xml",
        )
        path = f"studies/{document.study}/series/{document.series}/instances/{document.sop}"
        expected = (await archive.client.get(f"{archive.url}/{path}/metadata")).json()[0]
        assert xml_to_dataset(response.Document) == expected
        if "7FE00010" in expected:  # no pixel data: a BulkData reference instead
            root = etree.fromstring(response.Document)
            pixels = root.find("{*}DicomAttribute[@tag='7FE00010']")
            assert pixels is not None and pixels.find("{*}InlineBinary") is None
            assert pixels.find("{*}BulkData").get("uri").startswith(f"{archive.url}/studies/")


async def test_metadata_xpath_results_and_their_errors(archive: Running) -> None:
    soap = await soap_client(archive)
    ct, mr = doc("modality/CT_small.dcm"), doc(MULTIFRAME)
    xpaths = {
        "XPath": [
            "/dcm:NativeDicomModel/dcm:DicomAttribute[@keyword='Modality']/dcm:Value/text()",
            "count(/dcm:NativeDicomModel/dcm:DicomAttribute[@tag='7FE00010']/dcm:InlineBinary)",
            "//dcm:DicomAttribute[@keyword='PatientName']/dcm:PersonName/dcm:Alphabetic/dcm:FamilyName",
            "//dcm:DicomAttribute[@keyword='NoSuchKeyword']",
        ]
    }
    result = await call(
        metadata,
        soap,
        [
            (ct, {"XPathList": xpaths}),
            (
                mr,
                {
                    "FrameNumber": "10",
                    "XPathList": {
                        "XPath": ["string(//dcm:DicomAttribute[@tag='00280008']/dcm:Value)"]
                    },
                },
            ),
            (mr, {"FrameNumber": "11"}),
            (ct, {"XPathList": {"XPath": ["//dcm:DicomAttribute["]}}),
        ],
    )
    assert result.RegistryResponse.status == PARTIAL  # in wire order: the CT's, then the MR's
    assert errors(result) == [("urn:dicom:wado:0012", ct.sop), ("urn:dicom:wado:0018", mr.sop)]
    first, second = result.DocumentInformationResponse
    modality, inline, family, nothing = first.XPathResponseList.XPathResponse
    assert (modality, inline) == (b"CT", b"0")
    assert not nothing  # an empty XPathResponse (zeep reads it as None)
    name = pydicom.dcmread(ct.path, stop_before_pixels=True).PatientName.family_name
    assert etree.fromstring(family).text == name
    assert second.FrameNumber == "10" and second.XPathResponseList.XPathResponse == [b"10"]


# --- faults, with raw envelopes ------------------------------------------------------------


def _doctype_bomb() -> bytes:
    entities = '<!ENTITY a "aaaaaaaaaa">' + "".join(
        f'<!ENTITY {chr(98 + i)} "{("&" + chr(97 + i) + ";") * 10}">' for i in range(8)
    )
    return (
        f'<?xml version="1.0"?><!DOCTYPE s:Envelope [{entities}]>'
        f'<s:Envelope xmlns:s="http://www.w3.org/2003/05/soap-envelope"><s:Body>&i;</s:Body>'
        "</s:Envelope>"
    ).encode()


def _external_entity() -> bytes:
    return (
        b'<?xml version="1.0"?><!DOCTYPE s:Envelope [<!ENTITY x SYSTEM "file:///etc/passwd">]>'
        b'<s:Envelope xmlns:s="http://www.w3.org/2003/05/soap-envelope"><s:Body><p>&x;</p>'
        b"</s:Body></s:Envelope>"
    )


def _cases() -> list[tuple[str, bytes, str, int, str, tuple[str, ...]]]:
    ct = doc("modality/CT_small.dcm")
    payload = rad69_payload([ct], [EXPLICIT_LE])
    ok = envelope(payload)
    many = rad69_payload([ct] * 10_001, [EXPLICIT_LE])
    return [
        ("not XML", b"<s:Envelope><s:Body>", soap12(), 400, "env:Sender", ()),
        ("empty", b"", soap12(), 400, "env:Sender", ()),
        (
            "SOAP 1.1",
            envelope(payload, namespace=SOAP11),
            "text/xml; charset=utf-8",
            400,
            "s11:VersionMismatch",
            (),
        ),
        (
            "SOAP 1.1 as 1.2",
            envelope(payload, namespace=SOAP11),
            soap12(),
            400,
            "s11:VersionMismatch",
            (),
        ),
        ("not an envelope", payload.encode(), soap12(), 400, "env:VersionMismatch", ()),
        ("1.2 as text/xml", ok, "text/xml", 415, "env:Sender", ()),
        ("JSON", b"{}", "application/json", 415, "env:Sender", ()),
        (
            "unknown action",
            ok,
            soap12("urn:example:Nope"),
            400,
            "env:Sender",
            ("wsa:ActionNotSupported",),
        ),
        (
            "action mismatch",
            envelope(payload, f"<a:Action>{RAD69_ACTION}</a:Action>"),
            soap12("urn:wado:2011:RetrieveImagingDocumentSetInformation"),
            400,
            "env:Sender",
            ("wsa:ActionMismatch",),
        ),
        (
            "action for another body",
            ok,
            soap12("urn:dicom:wado:ws:2011:RetrieveRenderedImagingDocumentSet"),
            400,
            "env:Sender",
            (),
        ),
        (
            "unknown body",
            envelope("<x:Nope xmlns:x='urn:x'/>"),
            soap12(None),
            400,
            "env:Sender",
            (),
        ),
        ("entity expansion", _doctype_bomb(), soap12(), 400, "env:Sender", ()),
        ("external entity", _external_entity(), soap12(), 400, "env:Sender", ()),
        (
            "processing instruction",
            ok.replace(b"<s:Body>", b"<s:Body><?pi data?>"),
            soap12(),
            400,
            "env:Sender",
            (),
        ),
        (
            "must understand",
            envelope(payload, '<w:Security xmlns:w="urn:example:security" s:mustUnderstand="1"/>'),
            soap12(),
            400,
            "env:MustUnderstand",
            (),
        ),
        (
            "reply elsewhere",
            envelope(
                payload, "<a:ReplyTo><a:Address>http://example.org/cb</a:Address></a:ReplyTo>"
            ),
            soap12(),
            400,
            "env:Sender",
            ("wsa:InvalidAddressingHeader", "wsa:OnlyAnonymousAddressSupported"),
        ),
        (
            "schema",
            envelope(payload.replace("<TransferSyntaxUIDList>", "<Nope/><TransferSyntaxUIDList>")),
            soap12(),
            400,
            "env:Sender",
            (),
        ),
        ("two bodies", envelope(payload + payload), soap12(), 400, "env:Sender", ()),
        ("too many documents", envelope(many), soap12(), 413, "env:Sender", ()),
        (
            "too large",
            ok.replace(b"<s:Body>", b"<s:Body><!--" + b"x" * (4 << 20) + b"-->"),
            soap12(),
            413,
            "env:Sender",
            (),
        ),
    ]


@pytest.mark.parametrize("case", _cases(), ids=lambda case: case[0])
async def test_bad_requests_get_a_soap_fault_with_the_right_code_and_status(
    archive: Running, case: tuple[str, bytes, str, int, str, tuple[str, ...]]
) -> None:
    _, body, content_type, status, code, subcodes = case
    response = await asyncio.to_thread(post, archive.url, body, content_type)
    received = fault(response)
    assert (received.status, received.code, received.subcodes) == (status, code, subcodes)
    expected_media = "text/xml" if code.startswith("s11:") else "application/soap+xml"
    assert received.media_type == expected_media
    assert received.reason and "Traceback" not in response.text
    assert "root:" not in response.text  # nothing a declared entity names is ever read
    if code == "env:MustUnderstand":
        [block] = received.root.iterfind("env:Header/env:NotUnderstood", NS)
        assert block.get("qname", "").endswith(":Security")
    if "VersionMismatch" in code and code.startswith("s11:"):
        upgrade = received.root.find("s11:Header/env:Upgrade/env:SupportedEnvelope", NS)
        assert upgrade is not None


# --- sites and repositories ----------------------------------------------------------------------


async def test_another_site_and_another_repository_see_nothing(tmp_path: Path) -> None:
    """The site is the request's, as for every service; a RepositoryUniqueId is checked when
    PACSFLOW_WADO_WS_REPOSITORY_UNIQUE_ID is set."""
    ct = doc("modality/CT_small.dcm")
    async for running in _archive(tmp_path):
        soap = await soap_client(running)
        assert (await call(retrieve, soap, [ct], [EXPLICIT_LE])).RegistryResponse.status == SUCCESS
    settings = {"site": "north", "wado_ws_repository_unique_id": REPOSITORY}
    async for running in _archive(tmp_path, store=False, **settings):
        soap = await soap_client(running)
        request = study_requests(
            [(ct, {}), (ct, {"RepositoryUniqueId": "1.2.3.999"})], "DocumentRequest"
        )
        result = await call(
            soap.service.ImagingDocumentSource_RetrieveImagingDocumentSet,
            StudyRequest=request,
            TransferSyntaxUIDList={"TransferSyntaxUID": [EXPLICIT_LE]},
        )
        assert result.RegistryResponse.status == FAILURE
        assert errors(result) == [
            ("XDSDocumentUniqueIdError", ct.sop),
            ("XDSUnknownRepositoryId", ct.sop),
        ]


async def test_a_backend_that_does_not_answer_is_a_receiver_fault(archive: Running) -> None:
    await archive.container.index.close()  # the index is gone: 503 with Retry-After
    body = envelope(rad69_payload([doc("modality/CT_small.dcm")], [EXPLICIT_LE]))
    response = await asyncio.to_thread(post, archive.url, body, soap12())
    received = fault(response)
    assert (received.status, received.code) == (503, "env:Receiver")
    assert response.headers["retry-after"] == str(RETRY_AFTER_SECONDS)  # as every 503's


async def test_a_large_metadata_request_is_answered_whole(archive: Running) -> None:
    """More documents than one read of the stored metadata takes (256): all answered, in order."""
    soap = await soap_client(archive)
    ct = doc("modality/CT_small.dcm")
    result = await call(metadata, soap, [(ct, {})] * 300)
    assert result.RegistryResponse.status == SUCCESS
    documents = [r.Document for r in result.DocumentInformationResponse]
    assert len(documents) == 300 and len(set(documents)) == 1
