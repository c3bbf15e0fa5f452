"""The indexes of the QIDO-RS scenario: one load per (target, seed, scale), kept for ``--reuse``.

pacsflow's SQLite index is loaded through its index port (bench/load_pacsflow.py), Orthanc by
``POST /instances`` of the Part 10 files (bench/load_orthanc.py). Each data directory keeps a
``bench-load.json`` manifest; with ``--reuse`` a load is reused only when seed, scale, the
generator's version and the code that shaped the index (pacsflow: the SQLite adapter's source,
its schema; Orthanc: its Debian packages) are unchanged, and Orthanc still holds every
instance. Otherwise the directory is emptied and loaded anew.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import shutil
from collections.abc import Callable
from dataclasses import asdict, dataclass, replace
from datetime import datetime
from pathlib import Path
from typing import Final

import httpx

import pacsflow
from bench import synth
from bench.harness import output
from bench.load_orthanc import load_orthanc
from bench.load_pacsflow import LoadReport, load_index
from bench.servers import Server, dir_size, start_orthanc

__all__ = ["Loaded", "index_bytes", "load_orthanc_data", "load_pacsflow_data"]

SYNTH_VERSION: Final = 1  # bump when bench/synth.py changes the data it generates
BATCH_SIZE: Final = 1000  # documents per pacsflow index upsert
WORKERS: Final = 2  # processes building pacsflow index documents
CONNECTIONS: Final = 4  # concurrent uploads to Orthanc
MANIFEST: Final = "bench-load.json"

Log = Callable[[str], None]


@dataclass(frozen=True, slots=True)
class Loaded:
    """A finished load, as kept in the data directory's manifest for ``--reuse``."""

    seed: int
    studies: int
    instances: int
    seconds: float
    method: str
    fingerprint: str
    finished: str
    reused: bool = False

    @property
    def rate(self) -> float:
        """Instances loaded per second."""
        return self.instances / self.seconds if self.seconds else 0.0


def _fingerprint(kind: str) -> str:
    """What a reused load must match besides seed and scale: the generator, and for pacsflow
    the SQLite adapter's source (its schema may change), for Orthanc its version."""
    if kind == "pacsflow":
        source = (Path(pacsflow.__file__).parent / "adapters" / "sqlite_index.py").read_bytes()
        return f"synth{SYNTH_VERSION}-sqlite_index-{hashlib.sha256(source).hexdigest()[:12]}"
    return f"synth{SYNTH_VERSION}-" + " ".join(output("dpkg-query", "-W", "orthanc").split())


def _reusable(directory: Path, corpus: synth.Corpus, kind: str) -> Loaded | None:
    manifest = directory / MANIFEST
    if not manifest.is_file():
        return None
    try:
        loaded = Loaded(**json.loads(manifest.read_text()))
    except (TypeError, ValueError):
        return None
    wanted = (corpus.seed, len(corpus.studies), _fingerprint(kind))
    return loaded if (loaded.seed, loaded.studies, loaded.fingerprint) == wanted else None


def _finished(
    directory: Path, corpus: synth.Corpus, kind: str, method: str, report: LoadReport
) -> Loaded:
    """Record a load in the directory's manifest."""
    loaded = Loaded(
        corpus.seed,
        len(corpus.studies),
        report.instances,
        report.seconds,
        method,
        _fingerprint(kind),
        datetime.now().isoformat(timespec="seconds"),
    )
    (directory / MANIFEST).write_text(json.dumps(asdict(loaded), indent=2))
    return loaded


def _fresh(directory: Path) -> None:
    if directory.exists():
        shutil.rmtree(directory)
    directory.mkdir(parents=True)


def load_pacsflow_data(corpus: synth.Corpus, directory: Path, reuse: bool, log: Log) -> Loaded:
    """pacsflow's index of ``corpus`` in ``directory/index.sqlite`` (loaded, or reused)."""
    loaded = _reusable(directory, corpus, "pacsflow") if reuse else None
    if loaded:
        log(f"pacsflow: reusing the index in {directory} (loaded {loaded.finished})")
        return replace(loaded, reused=True)
    _fresh(directory)
    log(f"pacsflow: loading {corpus.instance_count:,} instances into {directory}/index.sqlite")
    report = asyncio.run(load_index(corpus, directory / "index.sqlite", BATCH_SIZE, WORKERS))
    method = f"direct index load (SqliteIndex.upsert_instances, batches of {BATCH_SIZE:,})"
    loaded = _finished(directory, corpus, "pacsflow", method, report)
    log(f"pacsflow: loaded in {report.seconds:.1f}s ({report.rate:.0f} instances/s)")
    return loaded


def _orthanc_count(server: Server) -> int:
    response = httpx.get(f"{server.base_url}/statistics", timeout=60)
    response.raise_for_status()
    return int(response.json()["CountInstances"])


def load_orthanc_data(
    corpus: synth.Corpus, directory: Path, reuse: bool, log: Log
) -> tuple[Server, Loaded]:
    """Orthanc started over ``directory`` holding ``corpus`` (uploaded, or reused)."""
    loaded = _reusable(directory, corpus, "orthanc") if reuse else None
    if loaded:
        server = start_orthanc(directory)
        if _orthanc_count(server) == corpus.instance_count:
            log(f"orthanc: reusing the data in {directory} (loaded {loaded.finished})")
            return server, replace(loaded, reused=True)
        server.stop()
    _fresh(directory)
    server = start_orthanc(directory)
    log(f"orthanc: uploading {corpus.instance_count:,} instances ({CONNECTIONS} connections)")
    try:
        report = load_orthanc(corpus, server.base_url, CONNECTIONS)
        count = _orthanc_count(server)
        if count != corpus.instance_count:
            raise RuntimeError(f"Orthanc holds {count} instances, {corpus.instance_count} sent")
    except BaseException:
        server.stop()
        raise
    method = f"REST POST /instances, {CONNECTIONS} connections"
    loaded = _finished(directory, corpus, "orthanc", method, report)
    log(f"orthanc: loaded in {report.seconds:.1f}s ({report.rate:.0f} instances/s)")
    return server, loaded


def index_bytes(kind: str, directory: Path) -> int:
    """What a stopped server's index takes on disk: pacsflow ``index.sqlite`` and its WAL,
    Orthanc its ``IndexDirectory`` (SQLite; the stored files are not counted)."""
    if kind == "pacsflow":
        index = directory / "index.sqlite"
        return dir_size(index, Path(f"{index}-wal"))
    return dir_size(directory / "index")
