"""STOW-RS request handling over raw HTTP: media types, parts, study targets, limits."""

from __future__ import annotations

import time
from pathlib import Path

import httpx
import pydicom
import pytest

from pacsflow.dicom.status import FailureReason
from tests.conftest import CORPUS, Server, start_server
from tests.helpers import multipart, retrieve_bytes, sequence, stow, value

CT = CORPUS / "modality" / "CT_small.dcm"
MR = CORPUS / "transfer-syntax" / "explicit_le_MR_small.dcm"
SR = CORPUS / "objects" / "SR_comprehensive_nested.dcm"


def _uids(path: Path) -> tuple[str, str, str]:
    ds = pydicom.dcmread(path, stop_before_pixels=True)
    return str(ds.StudyInstanceUID), str(ds.SeriesInstanceUID), str(ds.SOPInstanceUID)


@pytest.mark.parametrize(
    "content_type",
    [
        'multipart/related; type="application/dicom"; boundary={b}',
        "multipart/related; type=application/dicom; boundary={b}",
        'multipart/related; boundary="{b}"; type="application/dicom"',
        "Multipart/Related; Type=application/dicom; Boundary={b}",
        "multipart/related; boundary={b}",
    ],
)
def test_content_type_parameters_quoted_or_not(server_module: Server, content_type: str) -> None:
    body, boundary = multipart([CT.read_bytes()], boundary="b0und4ry-with.dots_and-=")
    header = content_type.format(b=boundary)
    response = httpx.post(
        f"{server_module.url}/studies", content=body, headers={"Content-Type": header}
    )
    assert response.status_code == 200, response.text
    assert len(sequence(response.json(), "00081199")) == 1


def test_many_parts_in_one_request(server_module: Server) -> None:
    files = [CT, MR, SR, CORPUS / "transfer-syntax" / "rle_MR_small.dcm"]
    response = stow(server_module.url, [p.read_bytes() for p in files])
    assert response.status_code in (200, 202)
    referenced = sequence(response.json(), "00081199")
    assert {value(i, "00081155") for i in referenced} == {_uids(p)[2] for p in files}
    assert response.json()["00081190"] == {"vr": "UR"}  # several studies: no single study URL


def test_some_parts_fail_gives_202_with_both_sequences(server_module: Server) -> None:
    bad = CORPUS / "malformed" / "truncated_pixel_data_MR.dcm"
    response = stow(server_module.url, [CT.read_bytes(), b"not dicom at all", bad.read_bytes()])
    assert response.status_code == 202
    body = response.json()
    assert [value(i, "00081155") for i in sequence(body, "00081199")] == [_uids(CT)[2]]
    reasons = [value(i, "00081197") for i in sequence(body, "00081198")]
    assert reasons == [FailureReason.CANNOT_UNDERSTAND, FailureReason.CANNOT_UNDERSTAND]
    assert "part 2" in response.headers["warning"] and "part 3" in response.headers["warning"]
    study = value(body, "00081190")
    assert study.endswith(f"/studies/{_uids(CT)[0]}")


def test_study_targeted_request_refuses_other_studies(server_module: Server) -> None:
    study, _, _ = _uids(CT)
    response = stow(server_module.url, [CT.read_bytes(), MR.read_bytes()], study=study)
    assert response.status_code == 202
    failed = sequence(response.json(), "00081198")
    assert [value(i, "00081155") for i in failed] == [_uids(MR)[2]]
    assert value(failed[0], "00081197") == FailureReason.STUDY_INSTANCE_UID_MISMATCH
    assert value(response.json(), "00081190").endswith(f"/studies/{study}")
    only_other = stow(server_module.url, [MR.read_bytes()], study=study)
    assert only_other.status_code == 409


def test_invalid_study_uid_in_path_is_400(server_module: Server) -> None:
    response = stow(server_module.url, [CT.read_bytes()], study="not-a-uid")
    assert response.status_code == 400


@pytest.mark.parametrize(
    "content_type",
    [
        "application/dicom",
        "text/plain",
        'multipart/related; type="application/dicom+xml"; boundary=x',
        "multipart/form-data; boundary=x",
        "",
    ],
)
def test_other_media_types_get_415(server_module: Server, content_type: str) -> None:
    response = httpx.post(
        f"{server_module.url}/studies",
        content=CT.read_bytes(),
        headers={"Content-Type": content_type} if content_type else {},
    )
    assert response.status_code == 415
    assert "message" in response.json()


def test_missing_boundary_or_empty_body_is_400(server_module: Server) -> None:
    no_boundary = httpx.post(
        f"{server_module.url}/studies",
        content=b"x",
        headers={"Content-Type": 'multipart/related; type="application/dicom"'},
    )
    assert no_boundary.status_code == 400
    empty = httpx.post(
        f"{server_module.url}/studies",
        content=b"",
        headers={"Content-Type": 'multipart/related; type="application/dicom"; boundary=x'},
    )
    assert empty.status_code == 400


def test_body_cut_inside_a_part_is_a_bad_request(server_module: Server) -> None:
    """A body that ends inside a part is a malformed request (400), not a failed instance."""
    body, boundary = multipart([MR.read_bytes(), CT.read_bytes()])
    cut = body[: len(body) - 2000]
    response = httpx.post(
        f"{server_module.url}/studies",
        content=cut,
        headers={"Content-Type": f"multipart/related; type=application/dicom; boundary={boundary}"},
    )
    assert response.status_code == 400
    assert "ended inside part 2" in response.json()["message"]
    assert "nothing of it was stored" in response.json()["message"]


def test_part_with_another_media_type_is_refused(server_module: Server) -> None:
    boundary = "bnd"
    body = (
        f"--{boundary}\r\nContent-Type: image/jpeg\r\n\r\n".encode()
        + b"\xff\xd8\xff\xd9"
        + f"\r\n--{boundary}--\r\n".encode()
    )
    response = httpx.post(
        f"{server_module.url}/studies",
        content=body,
        headers={"Content-Type": f"multipart/related; type=application/dicom; boundary={boundary}"},
    )
    assert response.status_code == 409


def test_identical_resend_is_idempotent(server_module: Server) -> None:
    first = stow(server_module.url, [SR.read_bytes()])
    again = stow(server_module.url, [SR.read_bytes(), SR.read_bytes()])
    assert first.status_code == 200 and again.status_code == 200
    study, series, sop = _uids(SR)
    studies = httpx.get(f"{server_module.url}/studies").json()
    match = [s for s in studies if s["0020000D"]["Value"] == [study]]
    assert match[0]["00201208"]["Value"] == [1]
    assert retrieve_bytes(server_module.url, study, series, sop) == SR.read_bytes()


def test_request_above_the_limit_gets_413(tmp_path: Path) -> None:
    server = start_server(tmp_path / "data", {"PACSFLOW_MAX_REQUEST_BYTES": "20000"})
    try:
        small = stow(server.url, [SR.read_bytes()])
        assert small.status_code == 200
        big = stow(server.url, [CT.read_bytes()])
        assert big.status_code == 413
        body, boundary = multipart([CT.read_bytes()])

        def chunks() -> object:  # no Content-Length: the limit applies while streaming
            for i in range(0, len(body), 4096):
                yield body[i : i + 4096]

        streamed = httpx.post(
            f"{server.url}/studies",
            content=chunks(),  # type: ignore[arg-type]
            headers={"Content-Type": f"multipart/related; boundary={boundary}"},
        )
        assert streamed.status_code == 413
        stored = [p for p in (server.data_dir / "objects").rglob("*.dcm")]
        assert [p.name for p in stored] == [f"{_uids(SR)[2]}.dcm"]  # the SR; nothing staged
    finally:
        server.stop()


def test_reject_duplicate_policy(tmp_path: Path) -> None:
    server = start_server(tmp_path / "data", {"PACSFLOW_DUPLICATE_POLICY": "reject"})
    try:
        first = CORPUS / "transfer-syntax" / "explicit_le_MR_small.dcm"
        other = CORPUS / "transfer-syntax" / "implicit_le_MR_small.dcm"  # same SOP Instance UID
        assert stow(server.url, [first.read_bytes()]).status_code == 200
        response = stow(server.url, [other.read_bytes()])
        assert response.status_code == 409
        failed = sequence(response.json(), "00081198")
        assert value(failed[0], "00081197") == FailureReason.DUPLICATE_SOP_INSTANCE
        assert retrieve_bytes(server.url, *_uids(first)) == first.read_bytes()
    finally:
        server.stop()


def test_durable_consistency_answers_before_indexing(server_module: Server) -> None:
    path = CORPUS / "objects" / "RTPLAN_small.dcm"
    response = stow(server_module.url, [path.read_bytes()], Prefer="respond-async")
    assert response.status_code == 202
    assert response.headers["preference-applied"] == "respond-async"
    item = sequence(response.json(), "00081199")[0]
    assert value(item, "00081155") == _uids(path)[2]
    deadline = time.monotonic() + 60  # bounded wait for the processor, not a timing assertion
    while time.monotonic() < deadline:
        studies = httpx.get(f"{server_module.url}/studies").json()
        if any(s["0020000D"]["Value"] == [_uids(path)[0]] for s in studies):
            break
        time.sleep(0.1)
    assert retrieve_bytes(server_module.url, *_uids(path)) == path.read_bytes()


def test_search_after_stow_finds_the_study(server_module: Server) -> None:
    path = CORPUS / "objects" / "ECG_12lead_waveform.dcm"
    assert stow(server_module.url, [path.read_bytes()]).status_code == 200
    studies = httpx.get(f"{server_module.url}/studies", params={"limit": 1000}).json()
    assert any(s["0020000D"]["Value"] == [_uids(path)[0]] for s in studies)


def test_unknown_instance_is_404(server_module: Server) -> None:
    response = httpx.get(f"{server_module.url}/studies/1.2/series/1.3/instances/1.4")
    assert response.status_code == 404


def test_staged_parts_and_headers_beyond_the_prefix_limit(tmp_path: Path) -> None:
    """Every part staged (claim check) and headers read from the staged object, not memory."""
    server = start_server(
        tmp_path / "data",
        {"PACSFLOW_INLINE_MAX_BYTES": "0", "PACSFLOW_HEADER_PREFIX_MAX_BYTES": "1024"},
    )
    try:
        files = [CT, MR, CORPUS / "modality" / "MR_siemens_csa_private.dcm"]
        response = stow(server.url, [p.read_bytes() for p in files] + [b"\x00" * 5000])
        assert response.status_code == 202
        assert len(sequence(response.json(), "00081199")) == 3
        assert len(sequence(response.json(), "00081198")) == 1
        for path in files:
            assert retrieve_bytes(server.url, *_uids(path)) == path.read_bytes()
        assert not list((server.data_dir / "objects").rglob("staging/*/*"))
    finally:
        server.stop()


def test_processing_that_outlasts_the_wait_gives_202(tmp_path: Path) -> None:
    """With no processor running, STOW stops waiting at its timeout and says so (202)."""
    server = start_server(
        tmp_path / "data",
        {"PACSFLOW_PROCESSORS": "false", "PACSFLOW_STOW_TIMEOUT_SECONDS": "1"},
    )
    try:
        response = stow(server.url, [SR.read_bytes()])
        assert response.status_code == 202
        assert [value(i, "00081155") for i in sequence(response.json(), "00081199")] == [
            _uids(SR)[2]
        ]
        assert "still being processed" in response.headers["warning"]
    finally:
        server.stop()


def test_client_that_disconnects_mid_upload_leaves_nothing(tmp_path: Path) -> None:
    """An aborted upload: no staged object, no stored instance, no stack trace in the log."""
    import socket

    server = start_server(tmp_path / "data", {"PACSFLOW_INLINE_MAX_BYTES": "0"})
    try:
        body, boundary = multipart([CT.read_bytes()])
        head = (
            f"POST /dicom-web/studies HTTP/1.1\r\nHost: 127.0.0.1:{server.port}\r\n"
            f"Content-Type: multipart/related; type=application/dicom; boundary={boundary}\r\n"
            f"Content-Length: {len(body)}\r\n\r\n"
        ).encode()
        with socket.create_connection(("127.0.0.1", server.port)) as conn:
            conn.sendall(head + body[: len(body) // 2])
        complete = stow(server.url, [SR.read_bytes()])  # the server still serves
        assert complete.status_code == 200
        objects = server.data_dir / "objects"
        deadline = time.monotonic() + 30  # bounded wait for the server to see the disconnect
        while list(objects.rglob("staging/*/*")) and time.monotonic() < deadline:
            time.sleep(0.1)
        stored = [p.name for p in objects.rglob("*.dcm")]
        assert stored == [f"{_uids(SR)[2]}.dcm"]
    finally:
        server.stop()
    assert "Traceback" not in server.log.read_text()
