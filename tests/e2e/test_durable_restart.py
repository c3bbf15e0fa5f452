"""Durable backends killed and restarted (issue 23): SIGKILL of SeaweedFS (S3) and of the Tansu
broker keeping its log there loses no acknowledged instance, and the pipeline ingests again
once they are back on the same data and ports."""

from __future__ import annotations

import signal
from pathlib import Path

import httpx

from tests.support.corpus import CORPUS, read_header
from tests.support.dicomweb import retrieve_bytes, stow
from tests.support.durable import seaweedfs_ports, start_seaweedfs, start_tansu_on_s3
from tests.support.servers import free_port, start_deployment, stop_process


def _stored_and_found(url: str, path: Path) -> None:
    ds = read_header(path)
    got = retrieve_bytes(url, ds.StudyInstanceUID, ds.SeriesInstanceUID, ds.SOPInstanceUID)
    assert got == path.read_bytes(), path
    studies = httpx.get(f"{url}/studies", params={"StudyInstanceUID": ds.StudyInstanceUID})
    assert studies.status_code == 200 and len(studies.json()) == 1, studies.text


def test_sigkill_of_the_object_store_and_the_broker_loses_nothing(
    tmp_path: Path, es_url: str
) -> None:
    ports = seaweedfs_ports()
    s3 = f"127.0.0.1:{ports[0]}"
    kafka = free_port()
    store = start_seaweedfs(tmp_path / "seaweedfs", ports)
    broker = start_tansu_on_s3(tmp_path, s3, "log", kafka)
    try:
        server = start_deployment(tmp_path, "pipeline", s3, es_url, bootstrap=f"127.0.0.1:{kafka}")
        try:
            first = CORPUS / "modality" / "CT_small.dcm"
            assert stow(server.url, [first.read_bytes()]).status_code == 200
            for process in (broker, store):
                stop_process(process, signal.SIGKILL)
            store = start_seaweedfs(tmp_path / "seaweedfs", ports)
            broker = start_tansu_on_s3(tmp_path, s3, "log", kafka)
            _stored_and_found(server.url, first)
            second = CORPUS / "modality" / "MR_siemens_csa_private.dcm"
            answer = stow(server.url, [second.read_bytes()])
            assert answer.status_code == 200, (answer.text, server.log.read_text()[-3000:])
            _stored_and_found(server.url, second)
            _stored_and_found(server.url, first)
        finally:
            server.stop()
    finally:
        for process in (broker, store):
            stop_process(process, timeout=20)
