"""Pipeline mode end to end: separate processes on Kafka-, S3- and Elasticsearch-protocol servers.

``pacsflow stow``, ``qido``, ``wado`` and the Faust ``worker`` run as their own processes
against Tansu (Kafka protocol), moto (S3 protocol) and osmem (OpenSearch protocol), with the
real client.
"""

from __future__ import annotations

import subprocess
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pydicom
import pytest
from dicomweb_client.api import DICOMwebClient

from pacsflow.dicom.status import FailureReason
from tests.support.corpus import CORPUS, one_file_per_instance, read_header, write_large_instance
from tests.support.dicomweb import (
    client_encoding,
    retrieve_bytes,
    retrieve_digest,
    sequence,
    served_as_sent,
    stow,
    stow_file,
    value,
)
from tests.support.durable import also_durable
from tests.support.servers import (
    Server,
    peak_rss_bytes,
    pipeline_env,
    start_server,
    start_worker,
    stop_process,
)


@dataclass
class Pipeline:
    """The services of one pipeline deployment."""

    stow: Server
    qido: Server
    wado: Server
    worker: subprocess.Popen[bytes]
    worker_log: Path


@pytest.fixture(scope="module")
def pipeline(
    tmp_path_factory: pytest.TempPathFactory, request: pytest.FixtureRequest, es_url: str
) -> Iterator[Pipeline]:
    """The session's broker and S3 server, or ("durable", ``also_durable``) SeaweedFS and a
    Tansu keeping its log there."""
    durable = getattr(request, "param", "pipeline") == "durable"
    kafka = request.getfixturevalue("durable_kafka_bootstrap" if durable else "kafka_bootstrap")
    s3 = request.getfixturevalue("seaweedfs_endpoint" if durable else "s3_endpoint")
    root = tmp_path_factory.mktemp("pipeline")
    run = uuid.uuid4().hex[:8]
    env = pipeline_env(kafka, s3, es_url, f"pipeline-{run}", stow_timeout_seconds="180")
    worker_log = root / "worker.log"
    worker = start_worker(root / "worker", worker_log, env)
    services = [start_server(root / role, env, command=role) for role in ("stow", "qido", "wado")]
    try:
        yield Pipeline(*services, worker, worker_log)
    finally:
        for service in services:
            service.stop()
        stop_process(worker)


@also_durable("pipeline", ("pipeline",))
def test_stow_is_answered_once_a_separate_worker_indexed(pipeline: Pipeline) -> None:
    """Read-your-writes across processes: the events topic carries the outcome back to STOW."""
    path = CORPUS / "modality" / "CT_small.dcm"
    response = stow(pipeline.stow.url, [path.read_bytes()])
    assert response.status_code == 200, (response.text, pipeline.worker_log.read_text()[-3000:])
    ds = read_header(path)
    studies = httpx.get(f"{pipeline.qido.url}/studies").json()
    assert any(s["0020000D"]["Value"] == [ds.StudyInstanceUID] for s in studies)
    got = retrieve_bytes(
        pipeline.wado.url, ds.StudyInstanceUID, ds.SeriesInstanceUID, ds.SOPInstanceUID
    )
    assert got == path.read_bytes()


@pytest.mark.parametrize("pipeline", ["pipeline"], indirect=True)
def test_corpus_through_the_pipeline_with_the_real_client(pipeline: Pipeline) -> None:
    """One file per SOP Instance UID: stored through Kafka and S3, read back byte-identical."""
    client = DICOMwebClient(url=pipeline.stow.url)
    # XA_4frame: kept as the client re-encodes it, with Warning B101 (test_stow_corpus)
    files = one_file_per_instance(skip=("DICOMDIR",))
    for path in files:
        result = client.store_instances([pydicom.dcmread(path, force=True)])
        assert [str(i.ReferencedSOPInstanceUID) for i in result.ReferencedSOPSequence] == [
            str(read_header(path).SOPInstanceUID)
        ]
    for path in files:
        ds = read_header(path)
        sent = client_encoding(pydicom.dcmread(path, force=True))
        served = retrieve_bytes(
            pipeline.wado.url, ds.StudyInstanceUID, ds.SeriesInstanceUID, ds.SOPInstanceUID
        )
        assert served_as_sent(sent, served), path
    studies = DICOMwebClient(url=pipeline.qido.url).search_for_studies(limit=1000)
    assert len(studies) >= len({str(read_header(p).StudyInstanceUID) for p in files})


@also_durable("pipeline", ("pipeline",))
def test_malformed_files_are_refused_by_the_worker(pipeline: Pipeline) -> None:
    """Failures found by the separate worker reach the STOW response through the events."""
    late = [
        CORPUS / "malformed" / "truncated_pixel_data_MR.dcm",
        CORPUS / "malformed" / "j2k_embedded_sequence_delimiter.dcm",
    ]
    response = stow(pipeline.stow.url, [p.read_bytes() for p in late])
    assert response.status_code == 409
    reasons = [value(i, "00081197") for i in sequence(response.json(), "00081198")]
    assert reasons == [FailureReason.CANNOT_UNDERSTAND] * 2


@also_durable("pipeline", ("pipeline",))
def test_large_instance_travels_by_claim_check(pipeline: Pipeline, tmp_path: Path) -> None:
    """An instance above the inline limit is staged in S3 and referenced from the record."""
    source = tmp_path / "large.dcm"
    ds, size = write_large_instance(source, frames=40)
    response = stow(pipeline.stow.url, [source.read_bytes()])
    assert response.status_code == 200, response.text
    got = retrieve_bytes(
        pipeline.wado.url, ds.StudyInstanceUID, ds.SeriesInstanceUID, ds.SOPInstanceUID
    )
    assert len(got) == size and got == source.read_bytes()


@pytest.mark.parametrize("pipeline", ["pipeline"], indirect=True)
def test_one_gibibyte_instance_end_to_end(pipeline: Pipeline, tmp_path: Path) -> None:
    """A 1 GiB instance: streamed STOW, staged in S3, validated by the worker, streamed back."""
    import hashlib

    source = tmp_path / "gib.dcm"
    ds, size = write_large_instance(source, frames=2048)  # 2048 x 512 x 512 x 2 bytes
    assert size > 1 << 30
    processes = [pipeline.stow.process, pipeline.wado.process, pipeline.worker]
    before = [peak_rss_bytes(p.pid) for p in processes]
    response = stow_file(pipeline.stow.url, source)
    assert response.status_code == 200, response.text
    received, digest = retrieve_digest(
        pipeline.wado.url, ds.StudyInstanceUID, ds.SeriesInstanceUID, ds.SOPInstanceUID
    )
    with source.open("rb") as fp:
        assert (received, digest) == (size, hashlib.file_digest(fp, "sha256").hexdigest())
    growth = [peak_rss_bytes(p.pid) - b for p, b in zip(processes, before, strict=True)]
    print("peak RSS growth of stow, wado, worker (MiB):", [g >> 20 for g in growth])
    assert all(g < size / 8 for g in growth), growth
