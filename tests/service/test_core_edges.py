"""The core's edges in process: ``create_app(container)`` over the embedded adapters.

A stored object that is gone is a 404 (never a 500); every 503 carries one Retry-After; every
route reads the site from one request-scoped dependency; WADO-URI de-identifies only with a
secret of its own.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pydicom
import pytest
from fastapi import FastAPI

from pacsflow.config import Settings
from pacsflow.container import Container, build_container
from pacsflow.errors import RETRY_AFTER_SECONDS
from pacsflow.pipeline.keys import instance_keys
from services.app import create_app
from services.common import request_site
from streams.runner import run_ingest_processor
from tests.support.corpus import CORPUS
from tests.support.dicomweb import multipart

CT = CORPUS / "modality/CT_small.dcm"


@dataclass
class Archive:
    """An embedded archive in this process, and an HTTP client of its app."""

    container: Container
    app: FastAPI
    client: httpx.AsyncClient

    async def store(self, path: Path) -> pydicom.Dataset:
        body, boundary = multipart([await asyncio.to_thread(path.read_bytes)])
        content_type = f'multipart/related; type="application/dicom"; boundary={boundary}'
        response = await self.client.post(
            "/dicom-web/studies", content=body, headers={"Content-Type": content_type}
        )
        assert response.status_code == 200, response.text
        return pydicom.dcmread(path, stop_before_pixels=True)


@pytest.fixture
async def archive(tmp_path: Path) -> AsyncIterator[Archive]:
    container = build_container(Settings(data_dir=tmp_path, anonymize_secret=None))
    await container.start()
    stop = asyncio.Event()
    processor = asyncio.create_task(
        run_ingest_processor(container.bus, container.ingest_context, stop)
    )
    app = create_app(container)
    transport = httpx.ASGITransport(app=app)
    try:
        async with httpx.AsyncClient(transport=transport, base_url="http://pacsflow") as client:
            yield Archive(container, app, client)
    finally:
        stop.set()
        await processor
        await container.close()


def _instance_url(ds: pydicom.Dataset) -> str:
    return (
        f"/dicom-web/studies/{ds.StudyInstanceUID}/series/{ds.SeriesInstanceUID}"
        f"/instances/{ds.SOPInstanceUID}"
    )


def _wado_uri(ds: pydicom.Dataset) -> dict[str, str]:
    """The WADO-URI parameters of an instance, as application/dicom."""
    return {
        "requestType": "WADO",
        "studyUID": ds.StudyInstanceUID,
        "seriesUID": ds.SeriesInstanceUID,
        "objectUID": ds.SOPInstanceUID,
        "contentType": "application/dicom",
    }


async def test_a_stored_object_that_is_gone_is_404(archive: Archive) -> None:
    ds = await archive.store(CT)
    site = archive.container.settings.site
    keys = instance_keys(site, ds.StudyInstanceUID, ds.SeriesInstanceUID, ds.SOPInstanceUID)
    await archive.container.objects.delete(keys["dicom"])

    for path in ("", "/rendered", "/frames/1", "/frames/1/rendered"):
        response = await archive.client.get(_instance_url(ds) + path)
        assert response.status_code == 404, (path, response.text)
        assert response.json()["status"] == 404
    study = await archive.client.get(f"/dicom-web/studies/{ds.StudyInstanceUID}")
    assert study.status_code == 404


async def test_every_503_carries_the_same_retry_after(archive: Archive) -> None:
    await archive.container.index.close()  # the index is gone: QIDO and /ready answer 503
    search = await archive.client.get("/dicom-web/studies")
    ready = await archive.client.get("/ready")
    assert (search.status_code, ready.status_code) == (503, 503)
    assert search.headers["retry-after"] == ready.headers["retry-after"]
    assert search.headers["retry-after"] == str(RETRY_AFTER_SECONDS)


async def test_every_route_reads_the_site_from_one_dependency(archive: Archive) -> None:
    archive.app.dependency_overrides[request_site] = lambda: "north"
    ds = await archive.store(CT)
    keys = instance_keys("north", ds.StudyInstanceUID, ds.SeriesInstanceUID, ds.SOPInstanceUID)
    assert (await archive.container.objects.stat(keys["dicom"])) is not None
    uri = _wado_uri(ds)
    reads = [
        _instance_url(ds),
        _instance_url(ds) + "/metadata",
        _instance_url(ds) + "/frames/1",
        _instance_url(ds) + "/thumbnail",
        f"/dicom-web/studies/{ds.StudyInstanceUID}/rendered",
    ]

    for path in reads:
        assert (await archive.client.get(path)).status_code == 200, path
    assert (await archive.client.get("/dicom-web/wado", params=uri)).status_code == 200
    assert len((await archive.client.get("/dicom-web/instances")).json()) == 1

    archive.app.dependency_overrides[request_site] = lambda: "south"
    for path in reads:
        assert (await archive.client.get(path)).status_code == 404, path
    assert (await archive.client.get("/dicom-web/wado", params=uri)).status_code == 404
    assert (await archive.client.get("/dicom-web/instances")).json() == []


async def test_anonymize_is_refused_without_a_secret(archive: Archive) -> None:
    ds = await archive.store(CT)
    uri = _wado_uri(ds)
    refused = await archive.client.get("/dicom-web/wado", params={**uri, "anonymize": "yes"})
    assert refused.status_code == 400
    assert "PACSFLOW_ANONYMIZE_SECRET" in refused.json()["message"]
    assert (await archive.client.get("/dicom-web/wado", params=uri)).status_code == 200
