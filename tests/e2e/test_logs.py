"""Logs of ``pacsflow serve`` as a real process with ``PACSFLOW_LOG_FORMAT=json``: one JSON
object a line, the request id of each request in its lines (front end and processor alike), and
no patient name or ID at the default level, whatever the requests carry."""

from __future__ import annotations

import io
import signal
from pathlib import Path
from typing import Any

import httpx
import orjson
import pydicom

from tests.support.corpus import CORPUS
from tests.support.dicomweb import multipart, stow_content_type
from tests.support.servers import start_deployment

NAME, PATIENT_ID = "Zebedee^Quixotic", "PID-77812345"


def _with_patient(path: Path) -> bytes:
    ds = pydicom.dcmread(path)
    ds.PatientName, ds.PatientID = NAME, PATIENT_ID
    out = io.BytesIO()
    ds.save_as(out, enforce_file_format=True)
    return out.getvalue()


def _stow(url: str, parts: list[bytes]) -> httpx.Response:
    body, boundary = multipart(parts)
    headers = {"Content-Type": stow_content_type(boundary), "X-Request-ID": "client-42"}
    return httpx.post(f"{url}/studies", content=body, headers=headers, timeout=120)


def test_json_logs_carry_request_ids_and_no_phi(tmp_path: Path) -> None:
    server = start_deployment(tmp_path, "embedded", env={"PACSFLOW_LOG_FORMAT": "json"})
    try:
        good = _with_patient(CORPUS / "modality" / "CT_small.dcm")
        bad = _with_patient(CORPUS / "malformed" / "truncated_pixel_data_MR.dcm")
        stored = _stow(server.url, [good, bad])
        assert stored.status_code == 202, stored.text
        stow_id = stored.headers["x-request-id"]
        searches = [
            httpx.get(f"{server.url}/studies", params={"PatientName": "Zebedee*"}, timeout=30),
            httpx.get(f"{server.url}/studies", params={"PatientID": PATIENT_ID}, timeout=30),
            httpx.get(
                f"{server.url}/studies", params={"PatientName": NAME, "limit": "-1"}, timeout=30
            ),
        ]
        assert [r.status_code for r in searches[:2]] == [200, 200]
        assert NAME in searches[0].text  # the archive holds them; its logs must not
        assert searches[2].status_code == 400
        ids = [r.headers["x-request-id"] for r in [stored, *searches]]
        assert len(set(ids)) == 4 and all(len(i) == 32 for i in ids)
    finally:
        server.stop(signal.SIGTERM)
    text = server.log.read_text()
    assert NAME.split("^")[0] not in text and "Quixotic" not in text and "77812345" not in text
    lines: list[dict[str, Any]] = [orjson.loads(line) for line in text.splitlines() if line]
    assert all({"time", "level", "logger", "message"} <= line.keys() for line in lines)
    access = [line for line in lines if line["logger"] == "pacsflow.access"]
    by_id = {line["request_id"]: line for line in access}
    assert set(ids) <= set(by_id)
    assert by_id[stow_id]["transaction"] == "stow" and by_id[stow_id]["status"] == 202
    assert by_id[stow_id]["client_request_id"] == "client-42"
    assert by_id[ids[2]]["path"] == "/dicom-web/studies?PatientID=…"
    assert by_id[ids[3]]["status"] == 400
    processor = [line for line in lines if line["message"].startswith("rejected ")]
    assert [line["request_id"] for line in processor] == [stow_id]  # the worker process's line
    assert processor[0]["pid"] != by_id[stow_id]["pid"]
