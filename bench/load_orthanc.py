"""Load Orthanc through its REST API: ``POST /instances`` with the raw Part 10 file as body,
over several concurrent connections (one ``requests`` session per thread)."""

from __future__ import annotations

import sys
import threading
import time
from collections.abc import Iterator
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait

import requests

from bench.load_pacsflow import LoadReport
from bench.synth import Corpus, part10_files

__all__ = ["load_orthanc"]


class _Uploader:
    def __init__(self, base_url: str) -> None:
        self.url = f"{base_url}/instances"
        self.local = threading.local()

    def __call__(self, body: bytes) -> None:
        session: requests.Session | None = getattr(self.local, "session", None)
        if session is None:
            session = self.local.session = requests.Session()
        response = session.post(
            self.url, data=body, headers={"Content-Type": "application/dicom"}, timeout=120
        )
        response.raise_for_status()
        status = response.json().get("Status")
        if status not in ("Success", "AlreadyStored"):
            raise RuntimeError(f"Orthanc answered Status={status!r}")


def _files(corpus: Corpus) -> Iterator[bytes]:
    for study in corpus.studies:
        yield from part10_files(study)


def load_orthanc(
    corpus: Corpus, base_url: str, connections: int = 4, progress_every: float = 10.0
) -> LoadReport:
    """POST every instance of ``corpus``; raises on the first failed upload."""
    upload = _Uploader(base_url)
    total = corpus.instance_count
    done = 0
    started = last = time.perf_counter()
    in_flight: set[Future[None]] = set()
    with ThreadPoolExecutor(max_workers=connections) as pool:
        for body in _files(corpus):
            in_flight.add(pool.submit(upload, body))
            if len(in_flight) >= connections * 4:
                finished, in_flight = wait(in_flight, return_when=FIRST_COMPLETED)
                for future in finished:
                    future.result()
                done += len(finished)
            now = time.perf_counter()
            if now - last >= progress_every and done:
                last = now
                rate = done / (now - started)
                print(
                    f"orthanc: {done}/{total} instances, {rate:.0f}/s,"
                    f" eta {(total - done) / rate:.0f}s",
                    file=sys.stderr,
                    flush=True,
                )
        for future in in_flight:
            future.result()
        done += len(in_flight)
    return LoadReport(done, len(corpus.studies), time.perf_counter() - started)
