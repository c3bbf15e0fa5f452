"""WADO-WS end to end (PS3.18 2016 6.4, IHE RAD-69): ``pacsflow serve``, and the pipeline's
``pacsflow wado`` role on Kafka-, S3- and Elasticsearch-protocol servers, each a subprocess.

zeep reads the WSDL the serving process publishes and retrieves what ``pacsflow serve`` (or the
``pacsflow stow`` role and the Faust worker) stored: the CT_small study byte for byte, a document
transcoded to a listed syntax, the partial success of a request with unknown documents,
renderings and metadata; raw envelopes get their SOAP Faults. A 300 MiB instance streams out of
the embedded server through the MTOM package in bounded memory.
"""

from __future__ import annotations

import hashlib
import io
import subprocess
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import numpy as np
import pydicom
import pytest
from lxml import etree
from PIL import Image

from tests.support.corpus import write_large_instance
from tests.support.dicomweb import stow, stow_file
from tests.support.servers import (
    Server,
    peak_rss_bytes,
    pipeline_env,
    start_server,
    start_worker,
    stop_process,
)
from tests.support.wado_ws import (
    CT_STUDY_FILES,
    EXPLICIT_LE,
    FAILURE,
    HTJ2K_LOSSLESS,
    MULTIFRAME,
    NS,
    PARTIAL,
    SOAP11,
    SUCCESS,
    Doc,
    client,
    ct_study,
    doc,
    envelope,
    errors,
    fault,
    metadata,
    post,
    rad69_payload,
    rendered,
    retrieve,
    soap12,
)


@dataclass
class Deployment:
    """Where STOW goes and where WADO-WS answers (one server, or two roles)."""

    stow_url: str
    wado_url: str


@pytest.fixture(scope="module", params=["serve", "wado-role"])
def deployment(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Deployment]:
    """The CT_small study and a 10-frame MR, stored through STOW."""
    root = tmp_path_factory.mktemp(request.param)
    servers: list[Server] = []
    worker: subprocess.Popen[bytes] | None = None
    try:
        if request.param == "serve":
            servers.append(start_server(root / "data"))
        else:
            bootstrap = request.getfixturevalue("kafka_bootstrap")
            s3 = request.getfixturevalue("s3_endpoint")
            es = request.getfixturevalue("es_url")
            name = f"wadows-{uuid.uuid4().hex[:8]}"
            env = pipeline_env(bootstrap, s3, es, name, stow_timeout_seconds="180")
            worker = start_worker(root / "worker", root / "worker.log", env)
            servers += [start_server(root / role, env, command=role) for role in ("stow", "wado")]
        stow_url, wado_url = servers[0].url, servers[-1].url
        response = stow(stow_url, [doc(name).data for name in (*CT_STUDY_FILES, MULTIFRAME)])
        assert response.status_code == 200, response.text
        yield Deployment(stow_url, wado_url)
    finally:
        for server in servers:
            server.stop()
        if worker is not None:
            stop_process(worker)


def test_the_study_comes_back_byte_for_byte_through_zeep(deployment: Deployment) -> None:
    soap = client(deployment.wado_url)
    [service] = soap.wsdl.services.values()
    [port] = service.ports.values()
    assert port.binding_options["address"] == f"{deployment.wado_url}/wado-ws"
    study = ct_study()
    result = retrieve(soap, study, [EXPLICIT_LE, HTJ2K_LOSSLESS])
    assert result.RegistryResponse.status == SUCCESS
    assert [d.DocumentUniqueId for d in result.DocumentResponse] == [d.sop for d in study]
    for document, response in zip(study, result.DocumentResponse, strict=True):
        assert response.Document == document.data, document.path


def test_transcoding_and_a_partial_success(deployment: Deployment) -> None:
    soap = client(deployment.wado_url)
    htj2k = doc("derived/htj2k_lossless_CT_small.dcm")
    unknown = Doc(htj2k.path, htj2k.study, htj2k.series, "1.2.826.0.1.3680043.8.498.7", "")
    result = retrieve(soap, [htj2k, unknown], [EXPLICIT_LE])
    assert result.RegistryResponse.status == PARTIAL
    assert errors(result) == [("XDSDocumentUniqueIdError", unknown.sop)]
    [response] = result.DocumentResponse
    ds = pydicom.dcmread(io.BytesIO(response.Document))
    assert ds.file_meta.TransferSyntaxUID == EXPLICIT_LE
    assert np.array_equal(ds.pixel_array, pydicom.dcmread(htj2k.path).pixel_array)
    none = retrieve(soap, [unknown], [EXPLICIT_LE])
    assert none.RegistryResponse.status == FAILURE and none.DocumentResponse == []


def test_a_rendering_and_the_metadata(deployment: Deployment) -> None:
    soap = client(deployment.wado_url)
    mr = doc(MULTIFRAME)
    asked = {"ContentTypeList": {"ContentType": ["image/png"]}, "FrameNumber": "5", "Rows": "32"}
    result = rendered(soap, [(mr, asked)])
    assert result.RegistryResponse.status == SUCCESS
    [image] = result.RenderedDocumentResponse
    assert image.mimeType == "image/png" and Image.open(io.BytesIO(image.Document)).height == 32
    xpath = "string(//dcm:DicomAttribute[@keyword='NumberOfFrames']/dcm:Value)"
    info = metadata(soap, [(mr, {}), (mr, {"XPathList": {"XPath": [xpath]}})])
    assert info.RegistryResponse.status == SUCCESS
    whole, frames = info.DocumentInformationResponse
    root = etree.fromstring(whole.Document)
    assert root.find("{*}DicomAttribute[@tag='00080018']/{*}Value").text == mr.sop
    assert frames.XPathResponseList.XPathResponse == [b"10"]


def test_bad_envelopes_get_soap_faults(deployment: Deployment) -> None:
    payload = rad69_payload([doc("modality/CT_small.dcm")], [EXPLICIT_LE])
    version = fault(post(deployment.wado_url, envelope(payload, namespace=SOAP11), "text/xml"))
    assert (version.status, version.code) == (400, "s11:VersionMismatch")
    broken = fault(post(deployment.wado_url, b"<s:Envelope", soap12()))
    assert (broken.status, broken.code) == (400, "env:Sender")
    action = fault(post(deployment.wado_url, envelope(payload), soap12("urn:x:Nope")))
    assert (action.status, action.subcodes) == (400, ("wsa:ActionNotSupported",))
    assert action.root.find(".//env:Detail/wsa:ProblemAction", NS) is not None


def _mtom_document_digest(url: str, payload: bytes) -> tuple[int, str]:
    """POST a RAD-69 request; stream its MTOM answer; size and sha256 of the one document."""
    digest, received, tail = hashlib.sha256(), 0, b""
    head = b""
    with httpx.stream(
        "POST", f"{url}/wado-ws", content=payload, headers={"content-type": soap12()}, timeout=900
    ) as response:
        assert response.status_code == 200
        boundary = response.headers["content-type"].split("boundary=")[1].split(";")[0]
        delimiter = f"\r\n--{boundary}".encode()
        for chunk in response.iter_raw(1 << 20):
            if head is not None:  # before the document: the root part and the part's headers
                head += chunk
                at = head.find(delimiter)
                end = head.find(b"\r\n\r\n", at) if at >= 0 else -1
                if end < 0:
                    continue
                chunk, head = head[end + 4 :], None
            data = tail + chunk
            tail = data[-256:]
            digest.update(data[:-256])
            received += len(data) - len(tail)
    document_tail = tail[: tail.rindex(delimiter + b"--")]
    digest.update(document_tail)
    return received + len(document_tail), digest.hexdigest()


@pytest.mark.slow
def test_a_large_document_streams_through_the_mtom_package(tmp_path: Path) -> None:
    """300 MiB out of the object store into the response, the server's memory barely moving."""
    source = tmp_path / "large.dcm"
    ds, size = write_large_instance(source)
    server = start_server(tmp_path / "data")
    try:
        assert stow_file(server.url, source).status_code == 200
    finally:
        server.stop()
    server = start_server(tmp_path / "data")  # a fresh process: its peak is WADO-WS's alone
    try:
        assert httpx.get(f"{server.url}/wado-ws?wsdl").status_code == 200
        baseline = peak_rss_bytes(server.process.pid)
        large = Doc(source, ds.StudyInstanceUID, ds.SeriesInstanceUID, ds.SOPInstanceUID, "")
        body = envelope(rad69_payload([large], [EXPLICIT_LE]))
        received, digest = _mtom_document_digest(server.url, body)
        with source.open("rb") as fp:
            assert (received, digest) == (size, hashlib.file_digest(fp, "sha256").hexdigest())
        growth = peak_rss_bytes(server.process.pid) - baseline
        print(f"WADO-WS: {size >> 20} MiB document; server peak RSS grew {growth >> 20} MiB")
        assert growth < size / 8, (growth, size)
    finally:
        server.stop()
