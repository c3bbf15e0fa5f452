"""Backpressure (issue 23, item 4): with the processors stopped, STOW accepts until the ingest
lag passes PACSFLOW_STOW_MAX_INGEST_LAG, then answers 503 with Retry-After and keeps nothing of
the refused request (counted in ``/metrics``); once the processors run again, every accepted
instance is stored and STOW accepts again.
"""

from __future__ import annotations

import asyncio
import io
from pathlib import Path

import pydicom
from prometheus_client.parser import text_string_to_metric_families

from pacsflow.stow.backpressure import IngestLag
from streams.runner import run_ingest_processor
from tests.support.archive import BASE_URL, Archive, running_archive
from tests.support.corpus import CORPUS

CT = CORPUS / "modality" / "CT_small.dcm"
MAX_LAG = 5
SAFETY = 60.0  # seconds a loop waits before the test fails (not an assertion on time)


def _instance() -> bytes:
    ds = pydicom.dcmread(CT)
    ds.SOPInstanceUID = ds.file_meta.MediaStorageSOPInstanceUID = pydicom.uid.generate_uid()
    out = io.BytesIO()
    ds.save_as(out, enforce_file_format=True)
    return out.getvalue()


def _sop(data: bytes) -> str:
    return str(pydicom.dcmread(io.BytesIO(data), stop_before_pixels=True).SOPInstanceUID)


async def _count(archive: Archive, sop: str) -> int:
    found = await archive.client.get("/instances", params={"SOPInstanceUID": sop})
    assert found.status_code == 200
    return len(found.json())


async def _refusals(archive: Archive) -> float:
    """``pacsflow_backend_errors_total{error="IngestBacklog"}`` of ``/metrics`` (0 before any)."""
    scraped = await archive.client.get(BASE_URL.removesuffix("/dicom-web") + "/metrics")
    return sum(
        sample.value
        for family in text_string_to_metric_families(scraped.text)
        for sample in family.samples
        if sample.name == "pacsflow_backend_errors_total"
        and sample.labels == {"error": "IngestBacklog"}
    )


async def test_stow_is_503_past_the_ingest_lag_and_accepts_again_once_processed(
    tmp_path: Path,
) -> None:
    async with running_archive(
        tmp_path / "data",
        processors=False,
        stow_consistency="durable",
        stow_max_ingest_lag=MAX_LAG,
        inline_max_bytes=1024,  # every part staged: the staging area is what must stay bounded
    ) as archive:
        accepted: list[bytes] = []
        refused = await _refusals(archive)
        async with asyncio.timeout(SAFETY):
            while True:  # until the lag, read once a second, passes the limit
                data = _instance()
                answer = await archive.stow([data])
                if answer.status_code == 503:
                    break
                assert answer.status_code == 202, answer.text
                accepted.append(data)
        assert len(accepted) > MAX_LAG
        assert answer.headers["retry-after"].isdigit()
        assert "PACSFLOW_STOW_MAX_INGEST_LAG" in answer.json()["message"]
        assert await _refusals(archive) == refused + 1  # counted for the operators' alert
        staged = list((tmp_path / "data" / "objects").rglob("staging/*"))
        assert len(staged) == len(accepted)  # the refused request left nothing staged
        lag = IngestLag(archive.container.bus, MAX_LAG)
        assert await lag.lag() == len(accepted)

        stop = asyncio.Event()
        processor = asyncio.create_task(
            run_ingest_processor(archive.container.bus, archive.container.ingest_context, stop)
        )
        try:
            async with asyncio.timeout(SAFETY):
                while (await archive.stow([data])).status_code == 503:  # noqa: ASYNC110
                    await asyncio.sleep(0.2)  # the processor's progress, not an event of ours
                while await lag.lag() > 0:  # noqa: ASYNC110
                    await asyncio.sleep(0.2)
            for one in [*accepted, data]:
                assert await _count(archive, _sop(one)) == 1
            assert list((tmp_path / "data" / "objects").rglob("staging/*")) == []
        finally:
            stop.set()
            await processor


async def test_a_limit_of_zero_is_no_limit(tmp_path: Path) -> None:
    async with running_archive(
        tmp_path / "data", processors=False, stow_consistency="durable", stow_max_ingest_lag=0
    ) as archive:
        for _ in range(3):
            assert (await archive.stow([_instance()])).status_code == 202
        assert await IngestLag(archive.container.bus, 0).lag() == 3
