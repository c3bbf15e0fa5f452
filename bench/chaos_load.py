"""The load of the chaos trials (issue 23 item 2): STOW-RS clients that ingest continuously and
probes that search (QIDO-RS) and retrieve (WADO-RS) what was acknowledged, with a ledger of
what each instance's STOW answer said (PS3.18 10.5.3: 200 stored, 202 accepted, a failure).

Every upload is a new study of one to three instances under fresh UIDs (``2.25.`` UUIDs),
made from two templates of ``bench/images.py``: an MR slice (131 KB, inline on the bus) and a
CT slice (524 KB, staged in the object store: a claim check once ``PACSFLOW_INLINE_MAX_BYTES``
is below it).
"""

from __future__ import annotations

import hashlib
import io
import random
import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Final, Literal

import httpx
import pydicom
from pydicom.uid import UID, generate_uid

from bench import images, synth
from bench.stow import FAILED_SOP_SEQUENCE, REFERENCED_SOP_SEQUENCE

__all__ = ["Generator", "Instance", "Ledger", "Load", "Outcome"]

# acknowledged: 200 and referenced; accepted: 202 and referenced; failed: in the Failed SOP
# Sequence; refused: an error answer (4xx/5xx); unknown: no answer (connection cut, timeout)
Outcome = Literal["acknowledged", "accepted", "failed", "refused", "unknown"]
REFERENCED_SOP_INSTANCE_UID: Final = "00081155"
AS_STORED: Final = 'multipart/related; type="application/dicom"; transfer-syntax=*'
CLIENT_TIMEOUT: Final = 90.0


@dataclass(frozen=True, slots=True)
class Instance:
    """One instance sent and what its STOW answer said."""

    trial: int
    study_uid: str
    series_uid: str
    sop_uid: str
    sha256: str
    outcome: Outcome
    status: int  # the HTTP status, 0 without an answer
    answered_at: float  # time.monotonic()


class Generator:
    """Part 10 files of new studies from an MR and a CT template (thread-safe)."""

    def __init__(self, seed: int) -> None:
        corpus = synth.generate(2, seed)
        templates = []
        for modality in ("MR", "CT"):
            study = corpus.studies[0]
            series = synth.Series(study.series[0].uid, 1, modality, "chaos", "CHEST", 1)
            data = images.part10(synth.Instance(study, series, 1))
            templates.append(data)
        self._templates = templates
        self._random = random.Random(seed)
        self._lock = threading.Lock()

    def upload(self) -> list[tuple[str, str, str, bytes]]:
        """(study, series, SOP Instance UID, Part 10 bytes) of one to three instances of a new
        study."""
        with self._lock:
            count = self._random.randint(1, 3)
            kinds = [self._random.randrange(len(self._templates)) for _ in range(count)]
        study, series = generate_uid(), generate_uid()
        out = []
        for number, kind in enumerate(kinds, 1):
            ds = pydicom.dcmread(io.BytesIO(self._templates[kind]))
            sop = generate_uid()
            ds.StudyInstanceUID, ds.SeriesInstanceUID, ds.SOPInstanceUID = study, series, sop
            ds.file_meta.MediaStorageSOPInstanceUID = UID(sop)
            ds.InstanceNumber = number
            buffer = io.BytesIO()
            ds.save_as(buffer, enforce_file_format=True)
            out.append((str(study), str(series), str(sop), buffer.getvalue()))
        return out


@dataclass
class Ledger:
    """Every instance sent, and when each kind of request last succeeded (thread-safe)."""

    instances: list[Instance] = field(default_factory=list)
    successes: dict[str, list[tuple[float, float]]] = field(default_factory=dict)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def add(self, found: list[Instance]) -> None:
        with self.lock:
            self.instances += found

    def succeeded(self, kind: str, sent: float, at: float) -> None:
        """A ``stow`` (200), ``qido`` or ``wado`` request sent at ``sent`` succeeded at ``at``."""
        with self.lock:
            self.successes.setdefault(kind, []).append((sent, at))

    def first_success(self, kind: str, after: float) -> float | None:
        """The first success of a request of ``kind`` sent at or after ``after``, or None."""
        with self.lock:
            times = [at for sent, at in self.successes.get(kind, []) if sent >= after]
        return min(times) if times else None

    def of_trial(self, trial: int) -> list[Instance]:
        with self.lock:
            return [i for i in self.instances if i.trial == trial]

    def acknowledged(self) -> list[Instance]:
        with self.lock:
            return [i for i in self.instances if i.outcome == "acknowledged"]


def _multipart(files: list[tuple[str, str, str, bytes]]) -> tuple[bytes, str]:
    boundary = uuid.uuid4().hex
    pieces = []
    for *_, data in files:
        pieces += [f"--{boundary}\r\nContent-Type: application/dicom\r\n\r\n".encode(), data]
        pieces.append(b"\r\n")
    pieces.append(f"--{boundary}--\r\n".encode())
    return b"".join(pieces), boundary


def _uids(document: object, tag: str) -> set[str]:
    """SOP Instance UIDs named by the items of sequence ``tag`` of a Store Instances Response."""
    if isinstance(document, list) and document:
        document = document[0]
    if not isinstance(document, dict):
        return set()
    items = document.get(tag, {}).get("Value", [])
    return {
        str(item[REFERENCED_SOP_INSTANCE_UID]["Value"][0])
        for item in items
        if isinstance(item, dict) and REFERENCED_SOP_INSTANCE_UID in item
    }


def classify(
    status: int, body: bytes, files: list[tuple[str, str, str, bytes]], trial: int
) -> list[Instance]:
    """What the STOW answer (``status`` 0: none) says of each instance sent."""
    now = time.monotonic()
    referenced: set[str] = set()
    failed: set[str] = set()
    if status in (200, 202, 409):
        try:
            document = httpx.Response(status, content=body).json()
        except ValueError:
            document = None
        referenced = _uids(document, REFERENCED_SOP_SEQUENCE)
        failed = _uids(document, FAILED_SOP_SEQUENCE)
    found = []
    for study, series, sop, data in files:
        outcome: Outcome
        if status == 0:
            outcome = "unknown"
        elif sop in failed:
            outcome = "failed"
        elif sop in referenced and status == 200:
            outcome = "acknowledged"
        elif sop in referenced and status == 202:
            outcome = "accepted"
        else:
            outcome = "refused"
        digest = hashlib.sha256(data).hexdigest()
        found.append(Instance(trial, study, series, sop, digest, outcome, status, now))
    return found


class Load:
    """``clients`` STOW-RS threads and one probe thread (QIDO-RS and WADO-RS of acknowledged
    instances), running until ``stop``."""

    def __init__(
        self, stow: str, qido: str, wado: str, ledger: Ledger, generator: Generator
    ) -> None:
        self.stow, self.qido, self.wado = stow, qido, wado
        self.ledger, self.generator = ledger, generator
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []
        self.trial = 0

    def start(self, trial: int, clients: int) -> None:
        self.trial = trial
        self._stop.clear()
        self._threads = [threading.Thread(target=self._client, daemon=True) for _ in range(clients)]
        self._threads.append(threading.Thread(target=self._probe, daemon=True))
        for thread in self._threads:
            thread.start()

    def stop(self) -> None:
        """Stop and wait for the threads (each finishes its request: bounded by its timeout)."""
        self._stop.set()
        for thread in self._threads:
            thread.join(CLIENT_TIMEOUT + 30)

    def _client(self) -> None:
        with httpx.Client(timeout=CLIENT_TIMEOUT) as client:
            while not self._stop.is_set():
                files = self.generator.upload()
                body, boundary = _multipart(files)
                headers = {
                    "Content-Type": f'multipart/related; type="application/dicom"; '
                    f"boundary={boundary}",
                    "Accept": "application/dicom+json",
                }
                sent = time.monotonic()
                try:
                    answer = client.post(f"{self.stow}/studies", content=body, headers=headers)
                    status, content = answer.status_code, answer.content
                except httpx.ConnectError:  # nothing sent: nothing to account for
                    self._stop.wait(0.5)
                    continue
                except httpx.HTTPError:
                    status, content = 0, b""
                found = classify(status, content, files, self.trial)
                self.ledger.add(found)
                if status == 200:
                    self.ledger.succeeded("stow", sent, time.monotonic())
                elif status != 202:
                    self._stop.wait(0.5)  # as a client backs off after an error

    def _probe(self) -> None:
        with httpx.Client(timeout=10) as client:
            while not self._stop.wait(0.5):
                known = self.ledger.acknowledged()
                if not known:
                    continue
                one = random.choice(known)
                for kind, check in (("qido", _searched), ("wado", _retrieved)):
                    sent = time.monotonic()
                    try:
                        ok = check(client, self, one)
                    except httpx.HTTPError:
                        ok = False
                    if ok:
                        self.ledger.succeeded(kind, sent, time.monotonic())


def _searched(client: httpx.Client, load: Load, one: Instance) -> bool:
    answer = client.get(f"{load.qido}/instances", params={"SOPInstanceUID": one.sop_uid})
    return answer.status_code == 200 and one.sop_uid in answer.text


def _retrieved(client: httpx.Client, load: Load, one: Instance) -> bool:
    path = f"studies/{one.study_uid}/series/{one.series_uid}/instances/{one.sop_uid}"
    answer = client.get(f"{load.wado}/{path}", headers={"Accept": AS_STORED})
    return answer.status_code == 200 and one.sha256 in part_digests(answer)


def part_digests(answer: httpx.Response) -> list[str]:
    """SHA-256 of each part of a multipart/related answer."""
    return [hashlib.sha256(part).hexdigest() for part in _parts(answer)]


def _parts(answer: httpx.Response) -> Iterator[bytes]:
    content_type = answer.headers.get("content-type", "")
    if "boundary=" not in content_type:
        return
    boundary = content_type.split("boundary=")[1].split(";")[0].strip('"').encode()
    for chunk in answer.content.split(b"--" + boundary)[1:]:
        if chunk.startswith(b"--"):
            return
        _, _, payload = chunk.partition(b"\r\n\r\n")
        yield payload.removesuffix(b"\r\n")
