"""``pacsflow import`` end to end: a real archive (``pacsflow serve``), the real corpus, archives
built here, S3 on moto, resumed and interrupted runs."""

from __future__ import annotations

import io
import os
import signal
import subprocess
import tarfile
import time
import zipfile
from collections import defaultdict
from collections.abc import Iterator
from pathlib import Path

import httpx
import pydicom
import pytest
from pydicom.fileset import FileSet

from pacsflow.importer.outcomes import failure_label
from tests.support.corpus import CORPUS, corpus_files
from tests.support.dicomweb import retrieve_bytes, sequence, stow, value
from tests.support.importing import (
    archive_hashes,
    copies_with_new_uids,
    import_command,
    run_import,
    sha256_file,
)
from tests.support.servers import Server, free_port, start_server, stop_process

NOT_DICOM = ["README.md", "MANIFEST.csv", "make_manifest.py", "LICENSES/pydicom.txt"]
DICOMDIR = CORPUS / "objects" / "DICOMDIR_media_directory.dcm"
# A few files of the corpus that the archive stores, each of its own SOP Instance UID.
SAMPLES = [
    "modality/CT_small.dcm",
    "transfer-syntax/jpeg_baseline_ybr_full_422.dcm",
    "objects/SR_comprehensive_nested.dcm",
    "charset/chrX1_ISO_IR_192.dcm",
]


def _archive_reason(url: str, path: Path) -> str:
    """The Failure Reason the archive gives to this file sent alone."""
    response = stow(url, [path.read_bytes()])
    assert response.status_code == 409, (path, response.status_code)
    [failed] = sequence(response.json(), "00081198")
    return failure_label(int(value(failed, "00081197")))


def test_the_corpus_folder_then_a_resumed_run(server: Server, tmp_path: Path) -> None:
    """Every file gets the archive's verdict; a second run sends nothing the archive holds."""
    first = run_import(server.url, CORPUS, report=tmp_path / "first.jsonl")

    assert first.returncode == 1, first.stdout + first.stderr
    assert len(first.report) == len([p for p in CORPUS.rglob("*") if p.is_file()]), (
        "one line per file"
    )
    for name in NOT_DICOM:
        assert first.outcome(CORPUS / name)["outcome"] == "not DICOM"
        assert f"note: skipped {CORPUS / name}: " in first.stderr
    assert first.outcome(DICOMDIR)["outcome"] == "skipped"
    for path in corpus_files(malformed=True):
        assert first.outcome(path)["outcome"] == "failed", path
    for line in first.by_outcome("failed"):
        assert line["reason"] == _archive_reason(server.url, Path(line["file"])), line
        assert f"failed: {line['file']}: {line['reason']}" in first.stderr
    # per SOP Instance UID, the archive holds the last file of the UID it stored
    kept: dict[str, str] = {}
    for line in first.report:
        if line["outcome"] in ("stored", "replaced"):
            kept[line["sop_instance_uid"]] = sha256_file(Path(line["file"]))
    assert len(kept) > 60
    assert archive_hashes(server.url) == kept
    assert first.by_outcome("replaced"), "the corpus has files that share a UID"
    assert "stored" in first.stdout and "C000 Cannot understand" in first.stdout

    second = run_import(server.url, CORPUS, report=tmp_path / "second.jsonl")

    assert not second.by_outcome("stored") and not second.by_outcome("replaced")
    for line in first.report:
        if line["outcome"] in ("stored", "replaced"):
            assert second.outcome(line["file"])["outcome"] == "already held", line
    failed_again = {line["file"] for line in second.by_outcome("failed")}
    assert failed_again <= {line["file"] for line in first.by_outcome("failed")}
    assert second.returncode == (1 if failed_again else 0)
    assert archive_hashes(server.url) == kept


@pytest.fixture
def archive(tmp_path: Path) -> Iterator[Server]:
    """A fresh embedded archive for one test."""
    srv = start_server(tmp_path / "archive")
    try:
        yield srv
    finally:
        srv.stop()


def test_a_resumed_run_sends_new_and_changed_files_only(archive: Server, tmp_path: Path) -> None:
    folder = tmp_path / "in"
    files = copies_with_new_uids(CORPUS / "modality" / "CT_small.dcm", folder, 3, 4)
    first = run_import(archive.url, folder, report=tmp_path / "1.jsonl")
    assert first.returncode == 0, first.stdout + first.stderr
    assert len(first.by_outcome("stored")) == 12
    changed = pydicom.dcmread(files[5])
    changed.PatientName = "CHANGED^AFTER^IMPORT"
    changed.save_as(files[5])
    added = copies_with_new_uids(
        CORPUS / "transfer-syntax" / "explicit_le_MR_small.dcm", folder / "new", 1, 1
    )

    second = run_import(archive.url, folder, report=tmp_path / "2.jsonl")

    assert second.returncode == 0, second.stdout + second.stderr
    assert [r["file"] for r in second.by_outcome("stored")] == [str(added[0])]
    [replaced] = second.by_outcome("replaced")
    assert (replaced["file"], replaced["reason"]) == (str(files[5]), "B100")
    assert len(second.by_outcome("already held")) == 11
    assert "replaced" in second.stdout and "already held" in second.stdout
    assert archive_hashes(archive.url) == {
        pydicom.dcmread(p).SOPInstanceUID: sha256_file(p) for p in [*files, *added]
    }


def _dicomdir_media(root: Path, sources: list[Path]) -> Path:
    """A DICOMDIR file set (PS3.10) of ``sources`` written by pydicom, plus a stray file."""
    file_set = FileSet()
    for source in sources:
        file_set.add(pydicom.dcmread(source))
    file_set.write(root)
    (root / "autorun.inf").write_text("[autorun]\n")
    return root / "DICOMDIR"


def test_zip_tar_and_dicomdir_media(archive: Server, tmp_path: Path) -> None:
    paths = [CORPUS / name for name in SAMPLES]
    media = _dicomdir_media(tmp_path / "cd", paths[:1])
    with zipfile.ZipFile(tmp_path / "two.zip", "w", zipfile.ZIP_DEFLATED) as zipped:
        for path in paths[1:3]:
            zipped.write(path, f"nested/{path.name}")
        zipped.writestr("notes.txt", "not DICOM")
    with tarfile.open(tmp_path / "one.tar.gz", "w:gz") as tarred:
        tarred.add(paths[3], f"x/{paths[3].name}")
        tarred.addfile(tarfile.TarInfo("empty-dir"), io.BytesIO())

    spool = tmp_path / "spool"
    spool.mkdir()
    done = run_import(
        archive.url,
        media,
        tmp_path / "two.zip",
        tmp_path / "one.tar.gz",
        report=tmp_path / "r",
        extra=("--spool-dir", str(spool)),
    )

    assert done.returncode == 0, done.stdout + done.stderr
    stored = {r["file"]: r for r in done.by_outcome("stored")}
    assert len(stored) == 4, done.report
    assert f"{tmp_path / 'two.zip'}!nested/{paths[1].name}" in stored
    assert f"{tmp_path / 'one.tar.gz'}!x/{paths[3].name}" in stored
    assert done.outcome(f"{tmp_path / 'two.zip'}!notes.txt")["outcome"] == "not DICOM"
    assert not any("autorun" in r["file"] for r in done.report), "only what DICOMDIR lists"
    [on_media] = [Path(name) for name in stored if name.startswith(str(tmp_path / "cd"))]
    for path in [on_media, *paths[1:]]:
        ds = pydicom.dcmread(path)
        got = retrieve_bytes(
            archive.url, ds.StudyInstanceUID, ds.SeriesInstanceUID, ds.SOPInstanceUID
        )
        assert got == path.read_bytes(), path
    assert not list(spool.iterdir()), "the unpacked tar is removed"


def test_a_dicomdir_naming_a_missing_file_is_a_failure(archive: Server, tmp_path: Path) -> None:
    media = _dicomdir_media(tmp_path / "cd", [CORPUS / SAMPLES[0], CORPUS / SAMPLES[1]])
    listed = [
        p for p in (tmp_path / "cd").rglob("*") if p.is_file() and p.parent != tmp_path / "cd"
    ]
    listed[0].unlink()

    done = run_import(archive.url, media, report=tmp_path / "r")

    assert done.returncode == 1
    assert len(done.by_outcome("stored")) == 1
    [missing] = done.by_outcome("failed")
    assert missing["reason"] == "not readable" and "not found" in missing["message"]


def test_an_s3_prefix(archive: Server, s3_endpoint: str, s3_bucket: str, tmp_path: Path) -> None:
    from minio import Minio

    client = Minio(s3_endpoint, access_key="test", secret_key="test", secure=False)
    client.make_bucket(s3_bucket)
    for name in SAMPLES:
        data = (CORPUS / name).read_bytes()
        client.put_object(s3_bucket, f"site-a/{name}", io.BytesIO(data), len(data))
    client.put_object(s3_bucket, "site-a/readme.txt", io.BytesIO(b"hello"), 5)
    client.put_object(s3_bucket, "site-b/other.dcm", io.BytesIO(b"x"), 1)
    env = {"AWS_ACCESS_KEY_ID": "test", "AWS_SECRET_ACCESS_KEY": "test", "AWS_REGION": "us-east-1"}
    extra = ("--s3-endpoint", f"http://{s3_endpoint}")

    done = run_import(
        archive.url, f"s3://{s3_bucket}/site-a/", report=tmp_path / "r", extra=extra, env=env
    )

    assert done.returncode == 0, done.stdout + done.stderr
    assert sorted(r["file"] for r in done.by_outcome("stored")) == sorted(
        f"s3://{s3_bucket}/site-a/{name}" for name in SAMPLES
    )
    assert done.outcome(f"s3://{s3_bucket}/site-a/readme.txt")["outcome"] == "not DICOM"
    assert archive_hashes(archive.url) == {
        pydicom.dcmread(CORPUS / n).SOPInstanceUID: sha256_file(CORPUS / n) for n in SAMPLES
    }
    again = run_import(
        archive.url, f"s3://{s3_bucket}/site-a/", report=tmp_path / "r2", extra=extra, env=env
    )
    assert len(again.by_outcome("already held")) == len(SAMPLES)


def _instances(url: str) -> int:
    response = httpx.get(f"{url}/instances", params={"limit": "1"}, timeout=30)
    return int(response.headers["x-total-count"])


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGKILL], ids=["SIGINT", "SIGKILL"])
def test_an_interrupted_run_resumes(archive: Server, tmp_path: Path, sig: int) -> None:
    """Interrupted while the archive is busy (stopped with SIGSTOP): a re-run completes."""
    files = copies_with_new_uids(CORPUS / "modality" / "CT_small.dcm", tmp_path / "in", 20, 6)
    command = import_command(
        archive.url, tmp_path / "in", report=tmp_path / "1.jsonl",
        extra=("--parallel", "1", "--batch-files", "2"),
    )  # fmt: skip
    importing = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 300
        while _instances(archive.url) == 0:
            assert importing.poll() is None and time.monotonic() < deadline
            time.sleep(0.05)
        archive.process.send_signal(signal.SIGSTOP)
        try:
            assert importing.poll() is None, "the import ended before it could be interrupted"
            importing.send_signal(sig)
            out, _ = importing.communicate(timeout=60)
        finally:
            archive.process.send_signal(signal.SIGCONT)
    finally:
        stop_process(importing)  # type: ignore[arg-type]  # a text-mode Popen
    if sig == signal.SIGINT:
        assert importing.returncode == 128 + signal.SIGINT
        assert "interrupted by SIGINT" in out and "not sent" in out
    else:
        assert importing.returncode == -signal.SIGKILL

    done = run_import(archive.url, tmp_path / "in", report=tmp_path / "2.jsonl")

    assert done.returncode == 0, done.stdout + done.stderr
    assert done.by_outcome("already held"), "what the first run stored is not sent again"
    assert len(done.by_outcome("already held")) + len(done.by_outcome("stored")) == len(files)
    assert archive_hashes(archive.url) == {
        pydicom.dcmread(p).SOPInstanceUID: sha256_file(p) for p in files
    }


def _nginx_gateway(
    tmp_path: Path, upstream: int, token: str
) -> tuple[subprocess.Popen[bytes], int]:
    """nginx in front of the archive, answering 401 to requests without the bearer token."""
    port = free_port()
    conf = tmp_path / "nginx.conf"
    conf.write_text(
        f"""
daemon off; pid {tmp_path}/nginx.pid; error_log {tmp_path}/error.log;
events {{}}
http {{
  access_log off; client_body_temp_path {tmp_path}; proxy_temp_path {tmp_path};
  fastcgi_temp_path {tmp_path}; uwsgi_temp_path {tmp_path}; scgi_temp_path {tmp_path};
  server {{
    listen 127.0.0.1:{port};
    client_max_body_size 0;
    location / {{
      if ($http_authorization != "Bearer {token}") {{ return 401; }}
      proxy_pass http://127.0.0.1:{upstream};
      proxy_request_buffering off;
    }}
  }}
}}
"""
    )
    process = subprocess.Popen(["nginx", "-c", str(conf), "-p", str(tmp_path)])
    deadline = time.monotonic() + 30
    while True:
        try:
            httpx.get(f"http://127.0.0.1:{port}/", timeout=1)
            return process, port
        except httpx.TransportError:
            assert process.poll() is None and time.monotonic() < deadline
            time.sleep(0.1)


def test_the_token_goes_as_a_bearer_authorization(archive: Server, tmp_path: Path) -> None:
    gateway, port = _nginx_gateway(tmp_path, archive.port, "s3cret")
    try:
        url = f"http://127.0.0.1:{port}/dicom-web"
        refused = run_import(url, CORPUS / SAMPLES[0], report=tmp_path / "1")
        accepted = run_import(
            url, CORPUS / SAMPLES[0], report=tmp_path / "2", extra=("--token", "s3cret")
        )
    finally:
        stop_process(gateway)  # type: ignore[arg-type]
    assert refused.returncode == 2 and not refused.report
    assert "answered HTTP 401: check --token" in refused.stderr
    assert accepted.returncode == 0, accepted.stdout + accepted.stderr
    assert [r["outcome"] for r in accepted.report] == ["stored"]


def test_a_progress_bar_on_a_terminal_only(archive: Server, tmp_path: Path) -> None:
    copies_with_new_uids(CORPUS / "modality" / "CT_small.dcm", tmp_path / "in", 2, 3)
    plain = run_import(archive.url, tmp_path / "in", report=tmp_path / "1", extra=("--force",))
    assert plain.stdout.startswith("pacsflow import: 6 files"), plain.stdout
    assert "\x1b" not in plain.stdout and "instances/s" in plain.stdout

    import pty

    controller, terminal = pty.openpty()
    command = import_command(
        archive.url, tmp_path / "in", report=tmp_path / "2", extra=("--force",)
    )
    child = subprocess.Popen(
        command, stdout=terminal, stderr=terminal, env={**os.environ, "COLUMNS": "160"}
    )
    os.close(terminal)
    shown = bytearray()
    while True:
        try:
            chunk = os.read(controller, 65536)
        except OSError:  # the terminal closed with the child
            break
        if not chunk:
            break
        shown += chunk
    os.close(controller)
    assert child.wait(timeout=60) == 0
    text = shown.decode("utf-8", "replace")
    assert "sending" in text and "6/6 files" in text and "MB" in text
    assert "pacsflow import: 6 files" in text


def test_files_sharing_a_uid_go_in_one_request_in_order(archive: Server, tmp_path: Path) -> None:
    """The archive keeps the last of several files of one SOP Instance UID (policy replace)."""
    same = defaultdict(list)
    for name in ("explicit_le_MR_small.dcm", "rle_MR_small.dcm", "j2k_lossless_MR_small.dcm"):
        same["mr"].append(CORPUS / "transfer-syntax" / name)
    folder = tmp_path / "in"
    folder.mkdir()
    for number, path in enumerate(same["mr"]):
        (folder / f"{number}.dcm").write_bytes(path.read_bytes())

    done = run_import(archive.url, folder, report=tmp_path / "r", extra=("--parallel", "3"))

    assert [r["outcome"] for r in done.report] == ["stored", "replaced", "replaced"]
    [digest] = archive_hashes(archive.url).values()
    assert digest == sha256_file(folder / "2.dcm")
    again = run_import(archive.url, folder, report=tmp_path / "r2")
    assert [r["outcome"] for r in again.report] == ["already held"] * 3
    assert again.report[0]["message"].endswith(
        f"another file of this SOP Instance UID: {folder / '2.dcm'}"
    )


def test_an_archive_out_of_reach_stops_the_import_at_once(tmp_path: Path) -> None:
    url = f"http://127.0.0.1:{free_port()}/dicom-web"  # nothing listens there
    done = run_import(url, CORPUS / SAMPLES[0], report=tmp_path / "r")
    assert done.returncode == 2 and not done.report
    assert f"pacsflow import: cannot reach {url}: ConnectError" in done.stderr
