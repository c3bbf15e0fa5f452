"""DICOMweb over HTTP for tests: multipart bodies, STOW-RS, retrieval, DICOM JSON values.

The plain functions talk to a real server at a URL (httpx, synchronous); the multipart pieces
are shared with the in-process archive of the service tier (tests/support/archive.py).
"""

from __future__ import annotations

import email.parser
import hashlib
import io
import uuid
from collections.abc import Iterator
from email.message import Message
from pathlib import Path
from typing import Any

import httpx
import pydicom
from pydicom.dataset import Dataset

__all__ = [
    "ACCEPT_AS_STORED",
    "client_encoding",
    "multipart",
    "multipart_parts",
    "parts",
    "retrieve_bytes",
    "retrieve_digest",
    "sequence",
    "served_as_sent",
    "single_part",
    "stow",
    "stow_content_type",
    "stow_file",
    "value",
]

ACCEPT_AS_STORED = 'multipart/related; type="application/dicom"; transfer-syntax=*'


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


def stow_content_type(boundary: str) -> str:
    """The Content-Type of a STOW-RS request of application/dicom parts."""
    return f'multipart/related; type="application/dicom"; boundary={boundary}'


def single_part(response: httpx.Response) -> bytes:
    """The payload of the one part of a multipart/related response (checked to be one part)."""
    response.raise_for_status()
    content_type = response.headers["content-type"]
    boundary = content_type.split("boundary=")[1].split(";")[0].strip('"')
    head, _, rest = response.content.partition(b"\r\n\r\n")
    assert head.startswith(f"--{boundary}".encode())
    payload, _, tail = rest.rpartition(f"\r\n--{boundary}--".encode())
    assert tail.strip() == b""
    return payload


def parts(response: httpx.Response) -> list[tuple[str, bytes]]:
    """(Content-Type, payload) of each part of a multipart/related response."""
    return [(p["Content-Type"], p.get_payload(decode=True)) for p in multipart_parts(response)]


def stow(url: str, parts: list[bytes], study: str | None = None, **headers: str) -> httpx.Response:
    """POST parts to /studies (or /studies/{study}) and return the response."""
    body, boundary = multipart(parts)
    target = f"{url}/studies" + (f"/{study}" if study else "")
    return httpx.post(
        target,
        content=body,
        headers={"Content-Type": stow_content_type(boundary), **headers},
        timeout=120,
    )


def retrieve_bytes(url: str, study: str, series: str, sop: str) -> bytes:
    """GET one instance as stored and return the bytes of its single part."""
    response = httpx.get(
        f"{url}/studies/{study}/series/{series}/instances/{sop}",
        headers={"Accept": ACCEPT_AS_STORED},
        timeout=120,
    )
    return single_part(response)


def multipart_parts(response: httpx.Response) -> list[Message]:
    """The parts of a multipart/related response (headers by name, payload as bytes)."""
    head = f"Content-Type: {response.headers['content-type']}\r\n\r\n".encode()
    message = email.parser.BytesParser().parsebytes(head + response.content)
    assert message.is_multipart(), response.headers["content-type"]
    parts: list[Message] = message.get_payload()  # type: ignore[assignment]
    return parts


def served_as_sent(sent: bytes, served: bytes) -> bool:
    """Whether ``served`` is ``sent`` as a PS3.10 file: the same bytes, or the same data set
    after the preamble, ``DICM`` and File Meta it was sent without (docs/conformance.md)."""
    if sent[128:132] == b"DICM":
        return served == sent
    return served[128:132] == b"DICM" and served.endswith(sent) and len(served) > len(sent)


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


def stow_file(
    url: str, source: Path, chunk: int = 1 << 20, headers: dict[str, str] | None = None
) -> httpx.Response:
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
        headers={
            "Content-Type": f"multipart/related; type=application/dicom; boundary={boundary}",
            **(headers or {}),
        },
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
