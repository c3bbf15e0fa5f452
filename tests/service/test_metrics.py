"""``GET /metrics`` in process: STOW-RS requests and instances by outcome, bytes, ingest
latency and lag, dead letters, backend errors, transaction latency and what the index holds,
in the Prometheus text format read back with the Prometheus client's own parser.

The registry is the process's, shared by every test of the session: each test compares the
values after its requests with those before them.
"""

from __future__ import annotations

import asyncio
import io
import sqlite3
from collections.abc import AsyncIterator
from pathlib import Path

import pydicom
import pytest
import pytest_asyncio
from prometheus_client.parser import text_string_to_metric_families

from tests.support.archive import BASE_URL, Archive, running_archive
from tests.support.corpus import CORPUS, uids_of
from tests.support.embedded_archive import Archive as EmbeddedArchive
from tests.support.embedded_archive import embedded_archive

pytestmark = pytest.mark.asyncio(loop_scope="module")

CT = CORPUS / "modality" / "CT_small.dcm"
MR = CORPUS / "transfer-syntax" / "explicit_le_MR_small.dcm"
TRUNCATED = CORPUS / "malformed" / "truncated_pixel_data_MR.dcm"
ROOT = BASE_URL.removesuffix("/dicom-web")

Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def archive(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Archive]:
    """An archive of its own."""
    async with running_archive(tmp_path_factory.mktemp("metrics") / "data") as running:
        yield running


async def scrape(archive: Archive | EmbeddedArchive) -> Samples:
    """Every sample of ``/metrics`` by name and labels."""
    response = await archive.client.get(f"{ROOT}/metrics")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain; version=")
    return {
        (s.name, frozenset(s.labels.items())): s.value
        for family in text_string_to_metric_families(response.text)
        for s in family.samples
    }


def changed_ct(comment: str) -> bytes:
    """CT_small with other bytes under the same UIDs."""
    ds = pydicom.dcmread(CT)
    ds.ImageComments = comment
    out = io.BytesIO()
    ds.save_as(out, enforce_file_format=True)
    return out.getvalue()


def value(samples: Samples, name: str, **labels: str) -> float:
    """One sample's value (0 when it is not there yet)."""
    return samples.get((name, frozenset(labels.items())), 0.0)


async def test_stow_outcomes_bytes_latency_and_dead_letters(archive: Archive) -> None:
    before = await scrape(archive)
    good = CT.read_bytes()
    response = await archive.stow([good, MR.read_bytes(), TRUNCATED.read_bytes()])
    assert response.status_code == 202, response.text
    after = await scrape(archive)

    def delta(name: str, **labels: str) -> float:
        return value(after, name, **labels) - value(before, name, **labels)

    assert delta("pacsflow_stow_requests_total", status="202") == 1
    assert delta("pacsflow_stow_instances_total", outcome="stored", reason="") == 2
    assert delta("pacsflow_stow_instances_total", outcome="failed", reason="C000") == 1
    assert delta("pacsflow_stow_bytes_total") >= len(good) + MR.stat().st_size
    assert delta("pacsflow_ingest_records_total", outcome="stored", reason="") == 2
    assert delta("pacsflow_ingest_records_total", outcome="failed", reason="C000") == 1
    assert delta("pacsflow_dead_letters_total") == 1
    assert delta("pacsflow_ingest_latency_seconds_count") == 2
    assert delta("pacsflow_ingest_latency_seconds_sum") > 0
    lags = [k for k in after if k[0] == "pacsflow_ingest_lag_seconds"]
    assert lags and all(dict(labels)["partition"].isdigit() for _, labels in lags)
    stow = value(after, "pacsflow_http_request_duration_seconds_count", transaction="stow",
                 status="2xx")  # fmt: skip
    assert stow >= 1


async def test_qido_and_wado_latency_by_transaction(archive: Archive) -> None:
    study, series, sop = uids_of(CT)
    before = await scrape(archive)
    assert (await archive.client.get("/studies", params={"StudyInstanceUID": study})).is_success
    assert (await archive.client.get(f"/studies/{study}/metadata")).is_success
    missing = await archive.client.get(f"/studies/{study}/series/{series}/instances/1.2.3")
    assert missing.status_code == 404
    after = await scrape(archive)
    name = "pacsflow_http_request_duration_seconds_count"
    for transaction, status in (("qido", "2xx"), ("wado", "2xx"), ("wado", "4xx")):
        labels = {"transaction": transaction, "status": status}
        assert value(after, name, **labels) - value(before, name, **labels) == 1, labels
    assert not [k for k in after if dict(k[1]).get("transaction") == "metrics"]
    assert sop  # the text carries no UID
    text = (await archive.client.get(f"{ROOT}/metrics")).text
    assert study not in text and sop not in text


async def test_a_locked_index_is_counted_as_a_backend_error(archive: Archive) -> None:
    """Another process holds the index's write lock: the processor's writes fail
    (``database is locked``) and are retried; each failure is counted, none is lost."""
    name, labels = "pacsflow_backend_errors_total", {"error": "IndexUnavailable"}
    before = value(await scrape(archive), name, **labels)
    latest = (await archive.client.get("/changefeed/latest")).json()["Sequence"]
    holder = sqlite3.connect(archive.settings.data_dir / "index.sqlite", isolation_level=None)
    holder.execute("BEGIN IMMEDIATE")  # the write lock, as another writer would hold it
    try:
        stored = await archive.stow(
            [changed_ct("written while the index is locked")],
            Prefer="respond-async",  # answered once durable on the bus
        )
        assert stored.status_code == 202, stored.text
        for _ in range(600):  # bounded wait for the processor's first failed write
            if value(await scrape(archive), name, **labels) > before:
                break
            await asyncio.sleep(0.05)
    finally:
        holder.rollback()
        holder.close()
    assert value(await scrape(archive), name, **labels) > before
    for _ in range(600):  # the retry after the lock is gone stores it
        entries = (await archive.client.get("/changefeed", params={"offset": latest})).json()
        if entries:
            break
        await asyncio.sleep(0.05)
    assert [e["Action"] for e in entries] == ["create"]


async def test_what_the_index_holds(tmp_path: Path) -> None:
    """Studies, series and instances indexed and their bytes, from a process serving QIDO-RS
    (asked at the first scrape, then at most once a minute)."""
    async with running_archive(tmp_path / "data") as fresh:
        assert (await fresh.stow([CT.read_bytes(), MR.read_bytes()])).status_code == 200
        samples = await scrape(fresh)
        for level in ("study", "series", "instance"):
            assert value(samples, "pacsflow_index_entities", level=level) == 2, level
        stored = value(samples, "pacsflow_stored_bytes")
        assert stored == CT.stat().st_size + MR.stat().st_size
        assert (await fresh.stow([changed_ct("not counted for a minute")])).status_code == 202
        assert value(await scrape(fresh), "pacsflow_stored_bytes") == stored


def behind(samples: Samples) -> float:
    """The ingest records waiting, over all partitions."""
    return sum(v for (n, _), v in samples.items() if n == "pacsflow_ingest_lag_records")


async def test_records_behind_grow_while_the_processor_is_stopped(tmp_path: Path) -> None:
    """``pacsflow_ingest_lag_records`` counts what waits on ``ingest`` per partition, from the
    bus's offsets: it grows while nothing is processed, and falls to 0 once processed."""
    async with embedded_archive(tmp_path / "data") as local:
        assert behind(await scrape(local)) == 0
        await local.stop_processor()
        waiting = await local.post_parts([CT.read_bytes(), MR.read_bytes()], Prefer="respond-async")
        assert waiting.status_code == 202, waiting.text
        assert behind(await scrape(local)) == 2
        local.start_processor()
        async with asyncio.timeout(60):  # bounded wait for the processor to commit them
            while True:
                if behind(await scrape(local)) == 0:
                    break
                await asyncio.sleep(0.05)
