"""``/metrics`` of ``pacsflow serve`` as a real process: its HTTP workers and its ingest workers
are separate processes, and one scrape of any HTTP worker sums them all (what the index holds:
the value the last worker asked for)."""

from __future__ import annotations

import time
from pathlib import Path

import httpx
from prometheus_client.parser import text_string_to_metric_families

from tests.support.corpus import CORPUS
from tests.support.dicomweb import stow_file
from tests.support.servers import start_deployment


def _samples(base: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    response = httpx.get(f"{base}/metrics", timeout=30)
    assert response.status_code == 200
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(response.text)
        for s in family.samples
    }


def test_serve_sums_the_metrics_of_its_processes(tmp_path: Path) -> None:
    server = start_deployment(tmp_path, "embedded", env={"PACSFLOW_HTTP_WORKERS": "2"})
    base = server.url.removesuffix("/dicom-web")
    try:
        stored = [
            stow_file(server.url, CORPUS / "modality" / "CT_small.dcm"),
            stow_file(server.url, CORPUS / "transfer-syntax" / "explicit_le_MR_small.dcm"),
        ]
        assert [r.status_code for r in stored] == [200, 200]
        ingested = ("pacsflow_ingest_records_total", (("outcome", "stored"), ("reason", "")))
        samples = _samples(base)
        deadline = time.monotonic() + 60  # bounded wait for the worker's counters after events
        while samples.get(ingested, 0) < 2 and time.monotonic() < deadline:
            time.sleep(0.1)
            samples = _samples(base)
        assert samples.get(ingested) == 2  # counted by the ingest worker process
        requests = ("pacsflow_stow_requests_total", (("status", "200"),))
        indexed = ("pacsflow_index_entities", (("level", "instance"),))
        for _ in range(10):  # every scrape, whichever HTTP worker answers, sums them all
            scraped = _samples(base)
            assert scraped.get(requests) == 2
            assert scraped.get(indexed) == 2  # asked by the worker that answers, once a minute
        assert samples[("pacsflow_ingest_latency_seconds_count", ())] == 2
        assert (server.data_dir / "metrics").is_dir()
    finally:
        server.stop()
