"""Helpers for end-to-end tests: multipart bodies, raw STOW and retrieval over HTTP."""

from __future__ import annotations

import asyncio
import hashlib
import io
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pydicom
from pydicom.dataset import Dataset

from pacsflow.config import Settings
from pacsflow.container import build_container
from pacsflow.pipeline.records import DEAD_LETTER_TOPIC, DeadLetter


def multipart(parts: list[bytes], boundary: str | None = None) -> tuple[bytes, str]:
    """A multipart/related body of application/dicom parts and its boundary."""
    boundary = boundary or uuid.uuid4().hex
    chunks = []
    for data in parts:
        chunks.append(f"--{boundary}\r\nContent-Type: application/dicom\r\n\r\n".encode())
        chunks.append(data)
        chunks.append(b"\r\n")
    chunks.append(f"--{boundary}--\r\n".encode())
    return b"".join(chunks), boundary


def stow(url: str, parts: list[bytes], study: str | None = None, **headers: str) -> httpx.Response:
    """POST parts to /studies (or /studies/{study}) and return the response."""
    body, boundary = multipart(parts)
    target = f"{url}/studies" + (f"/{study}" if study else "")
    content_type = f'multipart/related; type="application/dicom"; boundary={boundary}'
    return httpx.post(
        target, content=body, headers={"Content-Type": content_type, **headers}, timeout=120
    )


def retrieve_bytes(url: str, study: str, series: str, sop: str) -> bytes:
    """GET one instance and return the bytes of its single part."""
    response = httpx.get(
        f"{url}/studies/{study}/series/{series}/instances/{sop}",
        headers={"Accept": 'multipart/related; type="application/dicom"; transfer-syntax=*'},
        timeout=120,
    )
    response.raise_for_status()
    content_type = response.headers["content-type"]
    boundary = content_type.split("boundary=")[1].split(";")[0].strip('"')
    body = response.content
    head, _, rest = body.partition(b"\r\n\r\n")
    assert head.startswith(f"--{boundary}".encode())
    payload, _, tail = rest.rpartition(f"\r\n--{boundary}--".encode())
    assert tail.strip() == b""
    return payload


def client_encoding(ds: Dataset) -> bytes:
    """The bytes dicomweb-client sends for ``ds`` (it encodes with pydicom.dcmwrite)."""
    buffer = io.BytesIO()
    pydicom.dcmwrite(buffer, ds)
    return buffer.getvalue()


def sequence(response_json: dict[str, Any], tag: str) -> list[dict[str, Any]]:
    """Items of a sequence in a DICOM JSON response (empty when absent)."""
    return list(response_json.get(tag, {}).get("Value", []))


def value(item: dict[str, Any], tag: str) -> Any:
    """First value of an attribute in a DICOM JSON item."""
    return item[tag]["Value"][0]


def stow_file(url: str, source: Path, chunk: int = 1 << 20) -> httpx.Response:
    """POST one file as a single-part STOW request, streamed from disk."""
    boundary = uuid.uuid4().hex

    def body() -> Iterator[bytes]:
        yield f"--{boundary}\r\nContent-Type: application/dicom\r\n\r\n".encode()
        with source.open("rb") as fp:
            while data := fp.read(chunk):
                yield data
        yield f"\r\n--{boundary}--\r\n".encode()

    return httpx.post(
        f"{url}/studies",
        content=body(),
        headers={"Content-Type": f"multipart/related; type=application/dicom; boundary={boundary}"},
        timeout=900,
    )


def retrieve_digest(url: str, study: str, series: str, sop: str) -> tuple[int, str]:
    """Stream one instance; return the size and sha256 of its part, holding little in memory."""
    digest = hashlib.sha256()
    received = 0
    tail = b""
    first = True
    with httpx.stream(
        "GET", f"{url}/studies/{study}/series/{series}/instances/{sop}", timeout=900
    ) as response:
        response.raise_for_status()
        for chunk in response.iter_raw(1 << 20):
            if first:  # the part headers
                chunk = chunk.split(b"\r\n\r\n", 1)[1]
                first = False
            data = tail + chunk
            tail = data[-64:]
            digest.update(data[:-64])
            received += len(data) - len(tail)
    payload_tail = tail[: tail.rindex(b"\r\n--")]
    digest.update(payload_tail)
    return received + len(payload_tail), digest.hexdigest()


async def stored_object_keys(settings: Settings) -> list[str]:
    """Every key in the object store a server uses (opened with pacsflow's own adapter)."""
    container = build_container(settings)
    await container.objects.start()
    try:
        return [key async for key in container.objects.list("")]
    finally:
        await container.objects.close()


async def stored_object(settings: Settings, key: str, seconds: float = 90.0) -> bytes | None:
    """An object of a server's store once it exists (bounded wait: a processor makes it)."""
    container = build_container(settings)
    await container.objects.start()
    try:
        deadline = time.monotonic() + seconds
        while True:
            (found,) = await container.objects.get_many([key])
            if found is not None or time.monotonic() > deadline:
                return found
            await asyncio.sleep(0.5)
    finally:
        await container.objects.close()


async def put_object(settings: Settings, key: str, data: bytes) -> None:
    """Write an object into a server's store (opened with pacsflow's own adapter)."""
    container = build_container(settings)
    await container.objects.start()
    try:
        await container.objects.put(key, data)
    finally:
        await container.objects.close()


async def read_dead_letters(settings: Settings, expected: int) -> list[DeadLetter]:
    """The records on the dead-letter topic of a server's bus (bounded wait for ``expected``)."""
    container = build_container(settings)
    await container.bus.start()
    letters: list[DeadLetter] = []
    try:
        subscription = await container.bus.subscribe(DEAD_LETTER_TOPIC, f"test-{uuid.uuid4().hex}")
        deadline = time.monotonic() + 30
        while len(letters) < expected and time.monotonic() < deadline:
            letters += [DeadLetter.from_bytes(m.value) for m in await subscription.fetch(100, 1.0)]
        await subscription.close()
    finally:
        await container.bus.close()
    return letters
