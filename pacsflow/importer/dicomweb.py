"""The importer's DICOMweb client (httpx): STOW-RS of a batch, QIDO-RS of what a study holds.

One ``httpx.Client`` is shared by the sending threads: its pool keeps one kept-alive
connection per thread. A request body streams the files from where they are (multipart/
related, PS3.18 8.6.1.2) with its Content-Length computed up front. Connection errors,
timeouts, 408, 429 and 5xx answers are retried (STOW-RS is idempotent for the same bytes).
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any, Final

import httpx
import orjson

from pacsflow.dicom.stored import PRIVATE_CREATOR, SHA256_TAG, SIZE_TAG
from pacsflow.importer.classify import Scanned
from pacsflow.importer.outcomes import FileResult, Outcome, read_store_response

__all__ = ["ArchiveClient", "ArchiveError", "Held"]

JsonDict = dict[str, Any]

_ATTEMPTS: Final = 4
_BACKOFF: Final = 1.0  # seconds before the second attempt, doubled after each
_RETRIED: Final = frozenset({408, 429, 500, 502, 503, 504})
_PAGE: Final = 1000
_ACCEPT_JSON: Final = {"Accept": "application/dicom+json"}


class ArchiveError(Exception):
    """The archive did not answer a search usably."""


@dataclass(frozen=True, slots=True)
class Held:
    """An instance the archive holds: the SHA-256 and size of its object, when it says."""

    sha256: str | None
    size: int | None


class _FileChanged(OSError):
    """A file's size differs from the one listed (it changed while importing)."""


class ArchiveClient:
    """STOW-RS and QIDO-RS against one DICOMweb root (``--url``)."""

    def __init__(
        self, root: str, *, token: str | None, connections: int, timeout: float = 600.0
    ) -> None:
        headers = {"User-Agent": "pacsflow-import"}
        if token:
            headers["Authorization"] = f"Bearer {token}"
        self._root = root.rstrip("/")
        self._client = httpx.Client(
            headers=headers,
            timeout=httpx.Timeout(timeout, connect=30.0),
            limits=httpx.Limits(max_connections=connections, max_keepalive_connections=connections),
        )
        self._hashes = True  # the archive takes includefield of its private SHA-256 and size

    def close(self) -> None:
        """Close the connections."""
        self._client.close()

    def probe(self) -> str | None:
        """Why the archive cannot take the import (unreachable, credentials refused), or None.

        One search (``GET /studies?limit=1``): any answer but 401 and 403 will do, since an
        archive may serve STOW-RS without QIDO-RS.
        """
        try:
            response = self._client.get(f"{self._root}/studies", params={"limit": "1"})
        except httpx.HTTPError as exc:
            return f"cannot reach {self._root}: {type(exc).__name__}: {exc}"
        if response.status_code in (401, 403):
            return f"{self._root} answered HTTP {response.status_code}: check --token"
        return None

    def store(self, files: Sequence[Scanned]) -> list[FileResult]:
        """Send the files in one STOW-RS request (``POST /studies``); each file's outcome."""
        names = [f.item.name for f in files]
        uids = [f.sop_uid for f in files]
        boundary = uuid.uuid4().hex
        head = f"--{boundary}\r\nContent-Type: application/dicom\r\n\r\n".encode()
        tail = f"--{boundary}--\r\n".encode()
        length = sum(len(head) + f.item.size + 2 for f in files) + len(tail)
        headers = {
            "Content-Type": f'multipart/related; type="application/dicom"; boundary={boundary}',
            "Content-Length": str(length),
            **_ACCEPT_JSON,
        }

        def body() -> Iterator[bytes]:
            for file in files:
                yield head
                sent = 0
                for chunk in file.item.reader.chunks():
                    sent += len(chunk)
                    yield chunk
                if sent != file.item.size:
                    raise _FileChanged(f"{file.item.name} changed while importing")
                yield b"\r\n"
            yield tail

        try:
            response = self._send("POST", f"{self._root}/studies", headers, body)
        except OSError as exc:
            reason = "read error" if isinstance(exc, _FileChanged | FileNotFoundError) else "error"
            return [
                FileResult(n, Outcome.FAILED, u, reason, str(exc))
                for n, u in zip(names, uids, strict=True)
            ]
        except httpx.HTTPError as exc:
            text = f"{type(exc).__name__}: {exc}"
            return [
                FileResult(n, Outcome.FAILED, u, "connection failed", text)
                for n, u in zip(names, uids, strict=True)
            ]
        warning = ", ".join(response.headers.get_list("warning"))
        if response.status_code in (200, 202, 409):
            return read_store_response(names, uids, response.content, warning)
        text = warning or response.text[:300]
        reason = f"HTTP {response.status_code}"
        return [
            FileResult(n, Outcome.FAILED, u, reason, text) for n, u in zip(names, uids, strict=True)
        ]

    def held(self, study_uid: str) -> dict[str, Held]:
        """The instances of a study the archive holds, with their SHA-256 and size when the
        archive gives them (its private (00A1,10xx) attributes, ``pacsflow.dicom.stored``)."""
        found: dict[str, Held] = {}
        while True:
            params: tuple[tuple[str, str], ...] = (
                ("limit", str(_PAGE)),
                ("offset", str(len(found))),
            )
            if self._hashes:
                params += (("includefield", SHA256_TAG), ("includefield", SIZE_TAG))
            url = f"{self._root}/studies/{study_uid}/instances"
            try:
                response = self._send("GET", url, _ACCEPT_JSON, None, params)
            except httpx.HTTPError as exc:
                raise ArchiveError(f"search failed: {exc}") from exc
            if response.status_code == 400 and self._hashes:
                self._hashes = False  # not a pacsflow archive: match by SOP Instance UID
                continue
            if response.status_code == 204:
                return found
            if response.status_code != 200:
                raise ArchiveError(f"search answered HTTP {response.status_code}")
            try:
                page = orjson.loads(response.content)
            except orjson.JSONDecodeError as exc:
                raise ArchiveError("search answered something that is not JSON") from exc
            before = len(found)
            found.update(_held(record) for record in page if isinstance(record, dict))
            total = response.headers.get("x-total-count")
            if len(found) == before or (total is not None and len(found) >= int(total)):
                return found

    def _send(
        self,
        method: str,
        url: str,
        headers: dict[str, str],
        body: Any,
        params: tuple[tuple[str, str], ...] = (),
    ) -> httpx.Response:
        """One request, retried on connection errors and transient answers."""
        delay = _BACKOFF
        for attempt in range(1, _ATTEMPTS + 1):
            try:
                response = self._client.request(
                    method,
                    url,
                    headers=headers,
                    params=params,
                    content=body() if body else None,
                )
            except (httpx.TransportError, httpx.TimeoutException):
                if attempt == _ATTEMPTS:
                    raise
            else:
                if response.status_code not in _RETRIED or attempt == _ATTEMPTS:
                    return response
            time.sleep(delay)
            delay *= 2
        raise AssertionError("unreachable")


def _held(record: JsonDict) -> tuple[str, Held]:
    """(SOP Instance UID, Held) of one QIDO-RS instance result."""
    uid = str(_value(record, "00080018") or "")
    block = next(
        (
            tag[6:8]
            for tag, element in record.items()
            if tag.upper().startswith("00A100")
            and _value(record, tag) == PRIVATE_CREATOR
            and isinstance(element, dict)
        ),
        None,
    )
    if block is None:
        return uid, Held(None, None)
    sha = _value(record, f"00A1{block}01".upper())
    size = _value(record, f"00A1{block}02".upper())
    return uid, Held(str(sha) if sha else None, int(size) if size is not None else None)


def _value(record: JsonDict, tag: str) -> Any:
    element = record.get(tag)
    values = element.get("Value") if isinstance(element, dict) else None
    return values[0] if values else None
