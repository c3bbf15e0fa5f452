"""The services as separate processes on one data directory (the pipeline's shape, embedded)."""

from __future__ import annotations

from pathlib import Path

import httpx
import pydicom

from tests.conftest import CORPUS, start_server, start_worker, stop_process
from tests.helpers import retrieve_bytes, sequence, stow


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
