"""Store the generated files: into pacsflow through STOW-RS, into Orthanc through its REST API.

pacsflow: ``POST /dicom-web/studies`` with a ``multipart/related; type="application/dicom"``
body streamed from disk, several files a request up to a byte budget (one file a request for
large ones). Orthanc: ``POST /instances`` with each file as the body, streamed by ``requests``.
Both raise on the first file a server does not store.
"""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import requests

from bench.wado_data import FileSpec

__all__ = ["stow_to_orthanc", "stow_to_pacsflow"]

FAILED_SOP_SEQUENCE = "00081198"
CHUNK = 1 << 20


def _batches(specs: Sequence[FileSpec], max_bytes: int, max_parts: int) -> Iterator[list[FileSpec]]:
    batch: list[FileSpec] = []
    size = 0
    for spec in specs:
        if batch and (size + spec.size > max_bytes or len(batch) >= max_parts):
            yield batch
            batch, size = [], 0
        batch.append(spec)
        size += spec.size
    if batch:
        yield batch


def _body(batch: Sequence[FileSpec], boundary: str) -> Iterator[bytes]:
    for spec in batch:
        yield f"--{boundary}\r\nContent-Type: application/dicom\r\n\r\n".encode()
        with Path(spec.path).open("rb") as fp:
            while data := fp.read(CHUNK):
                yield data
        yield b"\r\n"
    yield f"--{boundary}--\r\n".encode()


def stow_to_pacsflow(
    dicomweb_root: str,
    specs: Sequence[FileSpec],
    log: Callable[[str], None],
    max_bytes: int = 64 << 20,
    max_parts: int = 100,
) -> float:
    """STOW every file (streamed); the seconds it took. Raises on a failed instance."""
    started = time.perf_counter()
    done = 0
    with httpx.Client(base_url=dicomweb_root, timeout=1800) as client:
        for batch in _batches(specs, max_bytes, max_parts):
            boundary = uuid.uuid4().hex
            response = client.post(
                "/studies",
                content=_body(batch, boundary),
                headers={
                    "Content-Type": f'multipart/related; type="application/dicom"; '
                    f"boundary={boundary}",
                    "Accept": "application/dicom+json",
                },
            )
            if response.status_code != 200:
                raise RuntimeError(f"STOW answered {response.status_code}: {response.text[:300]}")
            if FAILED_SOP_SEQUENCE in response.json():
                raise RuntimeError(f"STOW failed instances: {response.text[:300]}")
            done += len(batch)
            if batch[0].size > 64 << 20 or done % 500 < len(batch):
                log(f"pacsflow: stored {done}/{len(specs)} files")
    return time.perf_counter() - started


def _post_file(session_of: Callable[[], requests.Session], url: str, spec: FileSpec) -> None:
    with Path(spec.path).open("rb") as fp:
        response = session_of().post(
            url, data=fp, headers={"Content-Type": "application/dicom"}, timeout=1800
        )
    if response.status_code != 200:
        raise RuntimeError(f"Orthanc answered {response.status_code}: {response.text[:300]}")
    status = response.json().get("Status")
    if status not in ("Success", "AlreadyStored"):
        raise RuntimeError(f"Orthanc answered Status={status!r} for {spec.sop}")


def stow_to_orthanc(
    base_url: str, specs: Sequence[FileSpec], log: Callable[[str], None], connections: int = 2
) -> float:
    """POST every file to ``/instances``; the seconds it took. Raises on a refused file."""
    local = threading.local()

    def session_of() -> requests.Session:
        session: requests.Session | None = getattr(local, "session", None)
        if session is None:
            session = local.session = requests.Session()
        return session

    started = time.perf_counter()
    url = f"{base_url}/instances"
    with ThreadPoolExecutor(max_workers=connections) as pool:
        for i, _ in enumerate(pool.map(lambda s: _post_file(session_of, url, s), specs), 1):
            if specs[i - 1].size > 64 << 20 or i % 500 == 0:
                log(f"orthanc: stored {i}/{len(specs)} files")
    return time.perf_counter() - started
