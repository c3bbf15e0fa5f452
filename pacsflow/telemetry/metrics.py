"""Prometheus metrics of every role (docs/operations.md, "Metrics").

The metrics are module-level, as the Prometheus client expects. In ``pacsflow serve`` several
processes (HTTP workers, ingest workers) share one data directory: the supervisor points
``PROMETHEUS_MULTIPROC_DIR`` at a folder of it before they start (``multiprocess_dir``), each
process writes its values there, and ``/metrics`` of any HTTP worker sums them (the client's
multiprocess mode). A single process (a pipeline-mode role) serves its own registry.
"""

from __future__ import annotations

import os
import shutil
import time
from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime
from pathlib import Path
from typing import Final

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    REGISTRY,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    disable_created_metrics,
    generate_latest,
    multiprocess,
)

__all__ = [
    "CONTENT_TYPE",
    "backend_error",
    "dead_letters",
    "index_totals",
    "ingest_behind",
    "ingest_outcomes",
    "multiprocess_dir",
    "render",
    "stow_request",
    "transaction_seconds",
]

# No ``*_created`` series: Prometheus does not use them.
disable_created_metrics()  # type: ignore[no-untyped-call]
CONTENT_TYPE: Final = CONTENT_TYPE_LATEST
_MULTIPROC: Final = "PROMETHEUS_MULTIPROC_DIR"
# From a small instance on an idle archive to a large study under load.
_LATENCY: Final = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120)

STOW_REQUESTS = Counter(
    "pacsflow_stow_requests", "STOW-RS requests by HTTP status (200, 202, 409...)", ["status"]
)
STOW_INSTANCES = Counter(
    "pacsflow_stow_instances",
    "STOW-RS parts by outcome (stored, warning, failed) and reason (PS3.18 Annex I, hex)",
    ["outcome", "reason"],
)
STOW_BYTES = Counter("pacsflow_stow_bytes", "Bytes of the STOW-RS parts accepted onto the bus")
INGESTED = Counter(
    "pacsflow_ingest_records",
    "Ingest records processed, by outcome (stored, failed) and Failure Reason (hex)",
    ["outcome", "reason"],
)
INGEST_LATENCY = Histogram(
    "pacsflow_ingest_latency_seconds",
    "From a part's receipt by STOW-RS to its instance stored and indexed",
    buckets=_LATENCY,
)
INGEST_LAG = Gauge(
    "pacsflow_ingest_lag_seconds",
    "Age of the last ingest record a processor handled, per partition of the ingest topic",
    ["partition"],
    multiprocess_mode="livemax",
)
INGEST_BEHIND = Gauge(
    "pacsflow_ingest_lag_records",
    "Records of the ingest topic not yet processed, per partition (log end minus committed)",
    ["partition"],
    multiprocess_mode="mostrecent",
)
DEAD_LETTERS = Counter("pacsflow_dead_letters", "Records sent to the dead-letter topic")
BACKEND_ERRORS = Counter(
    "pacsflow_backend_errors",
    "Backend calls that failed (bus, object store, index), by error",
    ["error"],
)
INDEXED = Gauge(
    "pacsflow_index_entities",
    "Studies, series and instances the index holds, over all sites (at most a minute old)",
    ["level"],
    multiprocess_mode="mostrecent",
)
STORED_BYTES = Gauge(
    "pacsflow_stored_bytes",
    "Bytes of the Part 10 objects of the instances indexed: the bulk of the object store",
    multiprocess_mode="mostrecent",
)
TRANSACTIONS = Histogram(
    "pacsflow_http_request_duration_seconds",
    "HTTP requests by DICOMweb transaction (stow, qido, wado...) and status class",
    ["transaction", "status"],
    buckets=_LATENCY,
)


def multiprocess_dir(data_dir: Path) -> Path:
    """An emptied folder for the values of a supervisor's processes (``serve``)."""
    folder = data_dir / "metrics"
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True)
    return folder


def render() -> bytes:
    """The Prometheus text exposition of this process, or of all of ``serve``'s processes."""
    folder = os.environ.get(_MULTIPROC)
    if not folder:
        return generate_latest(REGISTRY)
    registry = CollectorRegistry()
    multiprocess.MultiProcessCollector(registry, path=folder)  # type: ignore[no-untyped-call]
    return generate_latest(registry)


def _reason(code: int | None) -> str:
    return "" if code is None else f"{code:04X}"


def stow_request(status: int, parts: Iterable[tuple[bool, int | None, int | None, int]]) -> None:
    """Count a STOW-RS request and its parts: (stored, failure, warning, size) each."""
    STOW_REQUESTS.labels(str(status)).inc()
    for stored, failure, warning, size in parts:
        if not stored:
            STOW_INSTANCES.labels("failed", _reason(failure)).inc()
            continue
        STOW_BYTES.inc(size)
        outcome = "stored" if warning is None else "warning"
        STOW_INSTANCES.labels(outcome, _reason(warning)).inc()


def ingest_outcomes(
    outcomes: Sequence[tuple[str, int | None, str]], partitions: dict[int, str]
) -> None:
    """Count processed records ((status, failure, received_at) each) and set the lag of the
    ``partitions`` handled (partition: received_at of its last record)."""
    now = time.time()
    for status, failure, received_at in outcomes:
        INGESTED.labels(status, _reason(failure)).inc()
        if status == "stored":
            INGEST_LATENCY.observe(max(now - _epoch(received_at, now), 0.0))
    for partition, received_at in partitions.items():
        INGEST_LAG.labels(str(partition)).set(max(now - _epoch(received_at, now), 0.0))


def ingest_behind(positions: Mapping[int, tuple[int, int]]) -> None:
    """Set the records not yet processed per partition from (committed, end) offsets."""
    for partition, (committed, end) in positions.items():
        INGEST_BEHIND.labels(str(partition)).set(max(0, end - committed))


def dead_letters(count: int) -> None:
    """Count records sent to the dead letters (their reasons: ``pacsflow_ingest_records``)."""
    DEAD_LETTERS.inc(count)


def backend_error(error: BaseException) -> None:
    """Count a failed backend call (by the error's type)."""
    BACKEND_ERRORS.labels(type(error).__name__).inc()


def index_totals(studies: int, series: int, instances: int, size: int) -> None:
    """Set what the index holds (``Index.totals``)."""
    for level, count in (("study", studies), ("series", series), ("instance", instances)):
        INDEXED.labels(level).set(count)
    STORED_BYTES.set(size)


def transaction_seconds(transaction: str, status: int, seconds: float) -> None:
    """Observe one HTTP request's duration."""
    TRANSACTIONS.labels(transaction, f"{status // 100}xx").observe(seconds)


def _epoch(iso: str, default: float) -> float:
    try:
        return datetime.fromisoformat(iso).timestamp()
    except ValueError:
        return default
