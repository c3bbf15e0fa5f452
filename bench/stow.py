"""STOW-RS ingest throughput and time-to-searchable (PS3.18 10.5, 10.6), against any DICOMweb root.

``stow_throughput`` stores a list of uploads (one study a request) from ``concurrency`` client
threads, each with its own keep-alive ``http.client`` connection (lean on client CPU: the client
shares the machine with the server), and times the whole run. ``searchable_latency`` stores
single instances one at a time and measures how long after the STOW acknowledgement a QIDO-RS
search first finds each one.

Every STOW answer is verified by ``check_response`` (HTTP 200, or 202 without failures; a
Store Instances Response whose ReferencedSOPSequence holds exactly the SOP Instance UIDs sent
and whose FailedSOPSequence is empty), so a fast wrong answer cannot score. Server failures are
reported in the result's ``error``, never raised.
"""

from __future__ import annotations

import http.client
import json
import queue
import threading
import time
import uuid
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any, Final
from urllib.parse import urlsplit

from bench import images, synth

__all__ = [
    "SMALL_MODALITIES",
    "StowRun",
    "Upload",
    "check_response",
    "searchable_latency",
    "single_instance_uploads",
    "stow_throughput",
    "uploads",
]

SMALL_MODALITIES: Final = ("CT", "MR", "PT")  # single-frame images of 0.5 MB at most
SOP_INSTANCE_UID: Final = "00080018"
REFERENCED_SOP_INSTANCE_UID: Final = "00081155"
FAILURE_REASON: Final = "00081197"
FAILED_SOP_SEQUENCE: Final = "00081198"
REFERENCED_SOP_SEQUENCE: Final = "00081199"
_SHOWN: Final = 3  # UIDs quoted in an error message


@dataclass(frozen=True)
class Upload:
    """One STOW-RS request: the Part 10 files of (part of) one study."""

    study_uid: str
    files: tuple[tuple[str, bytes], ...]  # (SOP Instance UID, Part 10 bytes)

    @property
    def nbytes(self) -> int:
        """Bytes of the Part 10 files (the multipart framing not included)."""
        return sum(len(data) for _, data in self.files)

    @property
    def sop_uids(self) -> list[str]:
        """The SOP Instance UIDs, in the order of the parts."""
        return [uid for uid, _ in self.files]


@dataclass
class StowRun:
    """The outcome of ``stow_throughput``: what was stored (and verified) in how long."""

    concurrency: int
    instances: int  # verified stored
    nbytes: int  # Part 10 bytes of those instances
    seconds: float
    requests: int  # requests answered and verified
    error: str | None = None

    @property
    def instances_per_s(self) -> float:
        """Stored instances per second of the run."""
        return self.instances / self.seconds if self.seconds > 0 else 0.0

    @property
    def mb_per_s(self) -> float:
        """Part 10 megabytes (10^6 bytes) stored per second of the run."""
        return self.nbytes / 1e6 / self.seconds if self.seconds > 0 else 0.0


def uploads(corpus: synth.Corpus) -> list[Upload]:
    """One upload per study of ``corpus``, with pixel data (``bench/images.py``), built in
    memory now so that building it is not timed."""
    return [Upload(study.uid, tuple(images.study_files(study))) for study in corpus.studies]


def single_instance_uploads(corpus: synth.Corpus, count: int) -> list[Upload]:
    """``count`` uploads of one small instance each (CT, MR or PT), spread evenly over the
    corpus's instances of those modalities; should the corpus have fewer than ``count`` of
    them, the smallest images of the other modalities make up the rest (a ValueError only when
    it has fewer than ``count`` instances). Deterministic. For ``searchable_latency`` they must
    not be stored yet: take them from a corpus whose seed no other upload of the run uses."""
    if count < 1:
        raise ValueError("count must be >= 1")
    every = list(corpus.instances())
    if len(every) < count:
        raise ValueError(f"the corpus has {len(every)} instances, fewer than {count}")
    small = [i for i in every if i.series.modality in SMALL_MODALITIES]
    if len(small) >= count:
        chosen = [small[k * len(small) // count] for k in range(count)]
    else:
        others = [i for i in every if i.series.modality not in SMALL_MODALITIES]
        others.sort(key=lambda i: images.GEOMETRY[i.series.modality].frame_bytes)  # stable
        chosen = small + others[: count - len(small)]
    return [Upload(i.study.uid, ((i.uid, images.part10(i)),)) for i in chosen]


def check_response(status: int, body: bytes, sent_uids: Sequence[str]) -> str | None:
    """Why a STOW-RS answer is not a success for ``sent_uids``, or None when it is.

    A success is HTTP 200 (or 202 with no failed instance, e.g. warnings) with a Store
    Instances Response in DICOM JSON (an object, or an array of one object) whose
    ReferencedSOPSequence (0008,1199) items name exactly the SOP Instance UIDs sent, each once,
    and whose FailedSOPSequence (0008,1198) has no item. Other attributes are ignored.
    """
    if status not in (200, 202):
        return f"HTTP {status}: {_excerpt(body)}"
    try:
        document = json.loads(body)
    except ValueError:
        return f"HTTP {status} with a body that is not JSON: {_excerpt(body)}"
    if isinstance(document, list) and len(document) == 1:
        document = document[0]
    if not isinstance(document, dict):
        return f"HTTP {status} with JSON that is not a data set: {_excerpt(body)}"
    failed = _items(document, FAILED_SOP_SEQUENCE)
    if failed is None:
        return f"HTTP {status} with a malformed FailedSOPSequence: {_excerpt(body)}"
    if failed:
        reasons = ", ".join(
            f"{_first(item, REFERENCED_SOP_INSTANCE_UID) or '(no UID)'} "
            f"(reason {_failure_code(item)})"
            for item in failed[:_SHOWN]
        )
        return f"HTTP {status}: {len(failed)} of {len(sent_uids)} instances failed: {reasons}"
    referenced = _items(document, REFERENCED_SOP_SEQUENCE)
    if referenced is None:
        return f"HTTP {status} with a malformed ReferencedSOPSequence: {_excerpt(body)}"
    got = Counter(_first(item, REFERENCED_SOP_INSTANCE_UID) or "(no UID)" for item in referenced)
    sent = Counter(sent_uids)
    if got == sent:
        return None
    missing = sorted((sent - got).elements())
    extra = sorted((got - sent).elements())
    problems = []
    if missing:
        problems.append(f"{len(missing)} sent UIDs not referenced ({_some(missing)})")
    if extra:
        problems.append(f"{len(extra)} unexpected or repeated UIDs referenced ({_some(extra)})")
    return (
        f"HTTP {status}: ReferencedSOPSequence has {len(referenced)} items for "
        f"{len(sent_uids)} instances sent: " + "; ".join(problems)
    )


def stow_throughput(
    dicomweb_root: str,
    work: Sequence[Upload],
    concurrency: int,
    timeout: float = 600,
    headers: dict[str, str] | None = None,
) -> StowRun:
    """Store every upload of ``work`` (one request each) from ``concurrency`` threads pulling
    from a shared queue; the time runs from before the first request to after the last
    answer was read. Every answer is checked; the first problem (or running past ``timeout``
    seconds) stops the run and is reported in ``error``, with what was stored until then.
    ``headers`` go with every request (e.g. ``Prefer: respond-async``)."""
    if concurrency < 1:
        raise ValueError("concurrency must be >= 1")
    pending: queue.SimpleQueue[Upload] = queue.SimpleQueue()
    for upload in work:
        pending.put(upload)
    lock = threading.Lock()
    stop = threading.Event()
    totals = {"instances": 0, "nbytes": 0, "requests": 0}
    errors: list[str] = []
    deadline = time.monotonic() + timeout

    def fail(message: str) -> None:
        with lock:
            errors.append(message)
        stop.set()

    def worker() -> None:
        client = _Client(dicomweb_root, timeout)
        try:
            while not stop.is_set():
                if time.monotonic() > deadline:
                    fail(f"timed out after {timeout:.0f}s")
                    return
                try:
                    upload = pending.get_nowait()
                except queue.Empty:
                    return
                problem = client.store(upload, headers)
                if problem is not None:
                    fail(f"study {upload.study_uid}: {problem}")
                    return
                with lock:
                    totals["instances"] += len(upload.files)
                    totals["nbytes"] += upload.nbytes
                    totals["requests"] += 1
        except Exception as exc:  # a client-side bug must not leave the run hanging
            fail(f"client error: {exc!r}")
        finally:
            client.close()

    threads = [threading.Thread(target=worker, daemon=True) for _ in range(concurrency)]
    started = time.perf_counter()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    seconds = time.perf_counter() - started
    error = errors[0] if errors else None
    if error is not None and totals["requests"] < len(work):
        error += f" (after {totals['requests']} of {len(work)} requests)"
    return StowRun(
        concurrency=concurrency,
        instances=totals["instances"],
        nbytes=totals["nbytes"],
        seconds=seconds,
        requests=totals["requests"],
        error=error,
    )


def searchable_latency(
    dicomweb_root: str, work: Sequence[Upload], timeout: float = 60
) -> tuple[list[float], str | None]:
    """For each upload in turn (one instance each, not stored yet): store it, then search
    ``/instances?SOPInstanceUID=`` without pause until the answer holds it. The seconds from
    having read the STOW answer to having read the first answer that holds the instance, one
    per upload; on a problem (a failed STOW, an error answer, ``timeout`` seconds without
    finding it) the latencies measured so far and the reason."""
    latencies: list[float] = []
    stow = _Client(dicomweb_root, timeout)
    qido = _Client(dicomweb_root, timeout)
    try:
        for upload in work:
            if len(upload.files) != 1:
                return latencies, f"study {upload.study_uid}: expected one instance an upload"
            ((uid, _),) = upload.files
            problem = stow.store(upload)
            if problem is not None:
                return latencies, f"instance {uid}: {problem}"
            acknowledged = time.perf_counter()
            problem = qido.wait_searchable(uid, acknowledged + timeout)
            if problem is not None:
                return latencies, f"instance {uid}: {problem}"
            latencies.append(time.perf_counter() - acknowledged)
    except (OSError, http.client.HTTPException) as exc:
        return latencies, f"connection failed: {exc!r}"
    finally:
        stow.close()
        qido.close()
    return latencies, None


# --- HTTP ----------------------------------------------------------------------------------


class _Client:
    """One keep-alive HTTP/1.1 connection to a DICOMweb root."""

    def __init__(self, dicomweb_root: str, timeout: float) -> None:
        url = urlsplit(dicomweb_root.rstrip("/"))
        if url.scheme not in ("http", "https") or not url.hostname:
            raise ValueError(f"not an http(s) URL: {dicomweb_root!r}")
        kind = http.client.HTTPSConnection if url.scheme == "https" else http.client.HTTPConnection
        self._connection = kind(url.hostname, url.port, timeout=timeout)
        self._path = url.path
        self._used = False  # a request went over the current connection

    def close(self) -> None:
        self._connection.close()

    def store(self, upload: Upload, extra: dict[str, str] | None = None) -> str | None:
        """POST the upload to ``/studies``; why the answer is not a success, or None."""
        boundary = uuid.uuid4().hex
        body = _multipart(upload, boundary)
        headers = {
            "Content-Type": f'multipart/related; type="application/dicom"; boundary={boundary}',
            "Accept": "application/dicom+json",
            "Content-Length": str(sum(len(piece) for piece in body)),
            **(extra or {}),
        }
        try:
            status, answer = self._request("POST", f"{self._path}/studies", headers, body)
        except (OSError, http.client.HTTPException) as exc:
            return f"request failed: {exc!r}"
        return check_response(status, answer, upload.sop_uids)

    def wait_searchable(self, uid: str, deadline: float) -> str | None:
        """Search for the instance until an answer holds it; why not, or None once found."""
        path = f"{self._path}/instances?SOPInstanceUID={uid}"
        headers = {"Accept": "application/dicom+json"}
        searches = 0
        while True:
            status, body = self._request("GET", path, headers, ())
            searches += 1
            if status == 200 and body.strip():
                try:
                    document = json.loads(body)
                except ValueError:
                    return f"QIDO answered 200 with a body that is not JSON: {_excerpt(body)}"
                if not isinstance(document, list):
                    return f"QIDO answered 200 with JSON that is not an array: {_excerpt(body)}"
                if any(_first(d, SOP_INSTANCE_UID) == uid for d in document if isinstance(d, dict)):
                    return None
            elif status not in (200, 204):
                return f"QIDO answered HTTP {status}: {_excerpt(body)}"
            if time.perf_counter() > deadline:
                return f"not searchable after {searches} searches"

    def _request(
        self, method: str, path: str, headers: dict[str, str], body: Iterable[bytes]
    ) -> tuple[int, bytes]:
        """Send a request (its body piece by piece, not joined) and read the whole answer;
        a kept-alive connection that the server had closed is reopened once."""
        pieces = tuple(body)
        try:
            return self._exchange(method, path, headers, pieces)
        except (ConnectionError, http.client.RemoteDisconnected, http.client.BadStatusLine):
            if not self._used:
                raise
        self._connection.close()
        self._used = False
        return self._exchange(method, path, headers, pieces)

    def _exchange(
        self, method: str, path: str, headers: dict[str, str], pieces: tuple[bytes, ...]
    ) -> tuple[int, bytes]:
        connection = self._connection
        reused = self._used
        try:
            connection.putrequest(method, path, skip_accept_encoding=True)
            for name, value in headers.items():
                connection.putheader(name, value)
            connection.endheaders()
            for piece in pieces:
                connection.send(piece)
            response = connection.getresponse()
            answer = response.read()
        except BaseException:
            connection.close()
            self._used = reused
            raise
        self._used = not response.will_close
        if response.will_close:
            connection.close()
        return response.status, answer


def _multipart(upload: Upload, boundary: str) -> tuple[bytes, ...]:
    """The multipart/related body as pieces: the files themselves are not copied."""
    pieces: list[bytes] = []
    head = f"--{boundary}\r\nContent-Type: application/dicom\r\n\r\n".encode()
    for number, (_, data) in enumerate(upload.files):
        pieces.append(head if number == 0 else b"\r\n" + head)
        pieces.append(data)
    pieces.append(f"\r\n--{boundary}--\r\n".encode())
    return tuple(pieces)


# --- DICOM JSON ----------------------------------------------------------------------------


def _items(document: dict[str, Any], tag: str) -> list[dict[str, Any]] | None:
    """The items of a sequence attribute ([] when absent or empty), None when malformed."""
    element = document.get(tag)
    if element is None:
        return []
    if not isinstance(element, dict):
        return None
    value = element.get("Value", [])
    if not isinstance(value, list) or not all(isinstance(item, dict) for item in value):
        return None
    return value


def _first(item: dict[str, Any], tag: str) -> str | None:
    """The first value of an attribute of a DICOM JSON data set, as a string."""
    element = item.get(tag)
    if not isinstance(element, dict):
        return None
    value = element.get("Value")
    if not isinstance(value, list) or not value:
        return None
    return str(value[0])


def _failure_code(item: dict[str, Any]) -> str:
    code = _first(item, FAILURE_REASON)
    if code is None:
        return "?"
    try:
        return f"{int(code):04X}H"
    except ValueError:
        return code


def _some(uids: Sequence[str]) -> str:
    shown = ", ".join(uids[:_SHOWN])
    return shown + (f", ... {len(uids) - _SHOWN} more" if len(uids) > _SHOWN else "")


def _excerpt(body: bytes, limit: int = 200) -> str:
    text = body[:limit].decode("utf-8", "replace").replace("\r", " ").replace("\n", " ")
    return (text + ("..." if len(body) > limit else "")) or "(empty body)"
