"""What STOW acknowledged survives a killed process: it is stored and indexed after restart;
what it did not acknowledge (an upload cut by its client) leaves nothing behind."""

from __future__ import annotations

import signal
import socket
import time
from pathlib import Path

import httpx
import pydicom
import pytest

from tests.support.corpus import CORPUS, corpus_files, one_file_per_instance, uids_of
from tests.support.dicomweb import (
    multipart,
    retrieve_bytes,
    sequence,
    served_as_sent,
    stow,
    value,
)
from tests.support.servers import Server, start_server


def _instance_count(server: Server) -> int:
    studies = httpx.get(f"{server.url}/studies", params={"limit": 1000}).json()
    return sum(int(s["00201208"]["Value"][0]) for s in studies)


def _wait_for_count(server: Server, expected: int) -> int:
    deadline = time.monotonic() + 120  # bounded wait for the processor to catch up
    count = _instance_count(server)
    while count < expected and time.monotonic() < deadline:
        time.sleep(0.2)
        count = _instance_count(server)
    return count


def _kill_and_restart(tmp_path: Path, env: dict[str, str]) -> None:
    files = one_file_per_instance(skip=("XA_4frame", "DICOMDIR"))
    data_dir = tmp_path / "data"
    first = start_server(data_dir, env)
    acknowledged: dict[str, Path] = {}
    try:
        for i in range(0, len(files), 10):
            batch = files[i : i + 10]
            response = stow(first.url, [p.read_bytes() for p in batch], Prefer="respond-async")
            assert response.status_code == 202
            for item in sequence(response.json(), "00081199"):
                acknowledged[value(item, "00081155")] = next(
                    p
                    for p in batch
                    if str(pydicom.dcmread(p, force=True, stop_before_pixels=True).SOPInstanceUID)
                    == value(item, "00081155")
                )
    finally:
        first.stop(signal.SIGKILL)
    assert len(acknowledged) == len(files)
    second = start_server(data_dir)
    try:
        assert _wait_for_count(second, len(acknowledged)) == len(acknowledged)
        for sop, path in acknowledged.items():
            ds = pydicom.dcmread(path, force=True, stop_before_pixels=True)
            served = retrieve_bytes(second.url, ds.StudyInstanceUID, ds.SeriesInstanceUID, sop)
            assert served_as_sent(path.read_bytes(), served), path
        assert not list((data_dir / "objects").rglob("staging/*"))
    finally:
        second.stop()


def test_acknowledged_but_unprocessed_instances_survive_a_kill(tmp_path: Path) -> None:
    """STOW answers once the bus holds the parts; the processors are off until the restart."""
    _kill_and_restart(tmp_path, {"PACSFLOW_PROCESSORS": "false"})


def test_kill_during_processing_leaves_every_instance_exactly_once(tmp_path: Path) -> None:
    """Processors run while the process is killed: redelivery after restart is idempotent."""
    _kill_and_restart(tmp_path, {})


def test_sigterm_closes_the_backends_before_exit(tmp_path: Path) -> None:
    """SIGTERM: the server stops, closes its SQLite journal and index (no WAL left), exits 0."""
    server = start_server(tmp_path / "data")
    path = next(p for p in corpus_files() if p.name == "CT_small.dcm")
    assert stow(server.url, [path.read_bytes()]).status_code == 200
    server.process.send_signal(signal.SIGTERM)
    assert server.process.wait(timeout=30) == 0
    server.stop()
    left = sorted(p.name for p in server.data_dir.iterdir() if p.name.endswith(("-wal", "-shm")))
    assert left == []


def test_client_that_disconnects_mid_upload_leaves_nothing(tmp_path: Path) -> None:
    """An aborted upload: no staged object, no stored instance, no stack trace in the log."""
    ct = CORPUS / "modality" / "CT_small.dcm"
    sr = CORPUS / "objects" / "SR_comprehensive_nested.dcm"
    server = start_server(tmp_path / "data", {"PACSFLOW_INLINE_MAX_BYTES": "0"})
    try:
        body, boundary = multipart([ct.read_bytes()])
        head = (
            f"POST /dicom-web/studies HTTP/1.1\r\nHost: 127.0.0.1:{server.port}\r\n"
            f"Content-Type: multipart/related; type=application/dicom; boundary={boundary}\r\n"
            f"Content-Length: {len(body)}\r\n\r\n"
        ).encode()
        with socket.create_connection(("127.0.0.1", server.port)) as conn:
            conn.sendall(head + body[: len(body) // 2])
        complete = stow(server.url, [sr.read_bytes()])  # the server still serves
        assert complete.status_code == 200
        objects = server.data_dir / "objects"
        deadline = time.monotonic() + 30  # bounded wait for the server to see the disconnect
        while list(objects.rglob("staging/*")) and time.monotonic() < deadline:
            time.sleep(0.1)
        stored = [p.name for p in objects.rglob("*.dcm")]
        assert stored == [f"{uids_of(sr)[2]}.dcm"]
    finally:
        server.stop()
    assert "Traceback" not in server.log.read_text()


@pytest.mark.parametrize("command", ["serve", "stow"])
def test_a_kill_mid_upload_leaves_no_staged_part_after_the_restart(
    tmp_path: Path, command: str
) -> None:
    """SIGKILL while a request's claim-checked parts stream in: the staged part, which no
    record names, is deleted when the process starts again (chaos trials, issue 23)."""
    ct = CORPUS / "modality" / "CT_small.dcm"
    data_dir = tmp_path / "data"
    env = {"PACSFLOW_INLINE_MAX_BYTES": "0"}
    server = start_server(data_dir, env, command)
    objects = data_dir / "objects"
    body, boundary = multipart([ct.read_bytes(), ct.read_bytes()])
    head = (
        f"POST /dicom-web/studies HTTP/1.1\r\nHost: 127.0.0.1:{server.port}\r\n"
        f"Content-Type: multipart/related; type=application/dicom; boundary={boundary}\r\n"
        f"Content-Length: {len(body)}\r\n\r\n"
    ).encode()
    try:
        with socket.create_connection(("127.0.0.1", server.port)) as conn:
            conn.sendall(head + body[: len(body) * 3 // 4])  # part 1 whole, part 2 begun
            deadline = time.monotonic() + 30  # bounded wait for part 1 to be staged
            while not list(objects.rglob("staging/*")) and time.monotonic() < deadline:
                time.sleep(0.05)
            server.process.send_signal(signal.SIGKILL)
            server.process.wait(timeout=30)
    finally:
        server.stop()
    assert len(list(objects.rglob("staging/*"))) == 1  # what the crash left: part 1
    again = start_server(data_dir, env, command)  # another port: the old one may linger
    try:
        assert not list(objects.rglob("staging/*"))
        answer = stow(again.url, [ct.read_bytes()], Prefer="respond-async")
        assert answer.status_code == 202, answer.text  # and it serves
    finally:
        again.stop()
