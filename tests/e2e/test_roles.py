"""The roles as separate processes: stow, qido, wado and the worker on one data directory (the
pipeline's shape, embedded), and the liveness and readiness of a role and of the Faust worker
on the Kafka, S3 and Elasticsearch protocols (``/health``, ``/ready``)."""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pydicom

from tests.support.corpus import CORPUS
from tests.support.dicomweb import retrieve_bytes, sequence, stow
from tests.support.servers import (
    free_port,
    pipeline_env,
    start_server,
    start_worker,
    stop_process,
)


def test_stow_worker_qido_wado_in_separate_processes(tmp_path: Path) -> None:
    """STOW answers once a separate worker has indexed; QIDO and WADO serve from the store."""
    data = tmp_path / "data"
    worker_log = tmp_path / "worker.log"
    worker = start_worker(data, worker_log)
    stow_service = start_server(data, command="stow")
    qido_service = start_server(data, command="qido")
    wado_service = start_server(data, command="wado")
    try:
        files = [CORPUS / "modality" / "CT_small.dcm", CORPUS / "objects" / "SEG_liver_3frame.dcm"]
        response = stow(stow_service.url, [p.read_bytes() for p in files])
        assert response.status_code == 200, (response.text, worker_log.read_text())
        assert len(sequence(response.json(), "00081199")) == 2
        studies = httpx.get(f"{qido_service.url}/studies").json()
        assert len(studies) == 2  # indexed before STOW answered (read-your-writes)
        for path in files:
            ds = pydicom.dcmread(path, stop_before_pixels=True)
            assert (
                retrieve_bytes(
                    wado_service.url, ds.StudyInstanceUID, ds.SeriesInstanceUID, ds.SOPInstanceUID
                )
                == path.read_bytes()
            )
        # each process serves its own role only
        assert httpx.get(f"{stow_service.url}/studies").status_code in (404, 405)
        assert stow(qido_service.url, [files[0].read_bytes()]).status_code in (404, 405)
    finally:
        for service in (stow_service, qido_service, wado_service):
            service.stop()
        assert stop_process(worker) == 0, worker_log.read_text()


def _wait_for(check: Callable[[], bool], what: str, log: Path, seconds: float = 180) -> None:
    deadline = time.monotonic() + seconds
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError(f"{what} within {seconds} s: {log.read_text()[-3000:]}")
        time.sleep(0.2)


def _status(url: str) -> tuple[int, dict[str, Any]]:
    try:
        response = httpx.get(url, timeout=10)
    except httpx.TransportError:
        return 0, {}
    return response.status_code, response.json()


def test_qido_process_is_not_ready_once_its_index_is_deleted(
    tmp_path: Path, kafka_bootstrap: str, s3_endpoint: str, es_url: str
) -> None:
    """``pacsflow qido`` on Kafka, S3 and Elasticsearch protocols: /ready follows the index."""
    name = f"t{os.urandom(4).hex()}"
    env = pipeline_env(kafka_bootstrap, s3_endpoint, es_url, name)
    server = start_server(tmp_path / "data", env, command="qido")
    try:
        ready = f"http://127.0.0.1:{server.port}/ready"
        assert _status(ready) == (200, {"status": "ready", "roles": ["qido"]})
        assert httpx.delete(f"{es_url}/{name}-studies", timeout=10).status_code == 200
        status, body = _status(ready)
        assert status == 503
        assert list(body["reasons"]) == ["index"]
        assert httpx.get(f"http://127.0.0.1:{server.port}/health").status_code == 200
    finally:
        server.stop()


def test_worker_health_port_serves_health_and_ready(
    tmp_path: Path, kafka_bootstrap: str, s3_endpoint: str, es_url: str
) -> None:
    """``pacsflow worker`` with PACSFLOW_WORKER_HEALTH_PORT: Faust's web server answers
    ``/health``, ``/ready`` and ``/metrics``."""
    name = f"t{os.urandom(4).hex()}"
    port = free_port()
    env = pipeline_env(
        kafka_bootstrap, s3_endpoint, es_url, name, worker_health_port=str(port), host="127.0.0.1"
    )
    log = tmp_path / "worker.log"
    worker = start_worker(tmp_path / "worker", log, env)
    try:
        base = f"http://127.0.0.1:{port}"
        _wait_for(lambda: _status(f"{base}/health")[0] == 200, "no /health", log)
        assert _status(f"{base}/health")[1] == {"status": "ok"}
        _wait_for(lambda: _status(f"{base}/ready")[0] == 200, "not ready", log)
        assert _status(f"{base}/ready")[1] == {"status": "ready", "roles": ["worker"]}
        scraped = httpx.get(f"{base}/metrics", timeout=10)
        assert scraped.status_code == 200
        assert scraped.headers["content-type"].startswith("text/plain; version=")
        assert "# TYPE pacsflow_ingest_records_total counter" in scraped.text
        assert "pacsflow_dead_letters_total 0.0" in scraped.text
        for page in ("/router/", "/table/"):  # Faust's own pages stay off
            assert httpx.get(base + page, timeout=10).status_code == 404

        assert httpx.delete(f"{es_url}/{name}-instances", timeout=10).status_code == 200

        status, body = _status(f"{base}/ready")
        assert status == 503 and list(body["reasons"]) == ["index"]
        assert _status(f"{base}/health")[0] == 200
    finally:
        stop_process(worker)


def test_each_role_describes_itself_or_every_role_behind_the_gateway(tmp_path: Path) -> None:
    """OPTIONS (PS3.18 8.9) and the OpenAPI document of real processes; HEAD over uvicorn."""
    data = tmp_path / "data"
    behind = {"PACSFLOW_GATEWAY_ROLES": "stow,qido,wado,ups,commitment"}
    qido_service = start_server(data, command="qido")
    wado_service = start_server(data, env=behind, command="wado")
    try:
        alone = httpx.request("OPTIONS", f"{qido_service.url}/")
        whole = httpx.request("OPTIONS", f"{wado_service.url}")
        commitment = httpx.request("OPTIONS", f"{wado_service.url}/commitment-requests/2.25.1")
        spec = httpx.get(f"{wado_service.url}/openapi.json").json()
        get = httpx.get(f"{qido_service.url}/studies")
        head = httpx.head(f"{qido_service.url}/studies")
    finally:
        for service in (qido_service, wado_service):
            service.stop()

    assert alone.headers["content-type"] == "application/vnd.sun.wadl+xml"
    assert b'path="studies"' in alone.content and b"commitment-requests" not in alone.content
    assert b'path="commitment-requests/{transaction}"' in whole.content
    assert b'id="StoreInstances"' in whole.content
    assert commitment.headers["allow"] == "GET, HEAD, POST, OPTIONS"
    assert "/dicom-web/workitems" in spec["paths"]
    assert head.status_code == get.status_code == 200
    assert head.headers["content-length"] == get.headers["content-length"] != "0"
    assert head.content == b""
