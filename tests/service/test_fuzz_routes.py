"""Every route, fuzzed (hypothesis): no 5xx, and no file outside the data directory touched.

Path parameters get traversal attempts (``..``, separators, percent-encodings, NUL, long and
non-ASCII strings) as well as real UIDs of a stored instance; query strings and bodies are
random too. The app runs in process on embedded backends (authentication off, every route
open); the directory around the data directory is compared before and after.
"""

from __future__ import annotations

import asyncio
import os
import re
import warnings
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import quote

import pydicom
import pytest
from fastapi.routing import APIRoute
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pacsflow.config import Settings
from pacsflow.container import build_container
from services.app import ROUTERS, create_app
from services.common import DICOMWEB_ROOT
from streams.runner import run_ingest_processor

with warnings.catch_warnings():  # starlette's TestClient will move to httpx2; httpx runs it today
    warnings.simplefilter("ignore")
    from starlette.testclient import TestClient
from tests.support.corpus import CORPUS
from tests.support.dicomweb import multipart

CT = CORPUS / "modality" / "CT_small.dcm"
HEADER = pydicom.dcmread(CT, stop_before_pixels=True)
REAL = [str(HEADER.StudyInstanceUID), str(HEADER.SeriesInstanceUID), str(HEADER.SOPInstanceUID)]
ROUTES = sorted(
    {
        (method, route.path)
        for routers in ROUTERS.values()
        for router in routers
        for route in router.routes
        if isinstance(route, APIRoute)
        for method in route.methods
    }
)
TRAVERSALS = [
    "..", "../..", "../../outside/sentinel", "..%2F..%2Foutside", "%2e%2e", "/etc/passwd",
    "..\\..\\outside", "1.2/../../3", "1.2.3\x00", ".", "", "~", "1.2.3/", "-1", "1..2",
    "1.2.3.4.5.6.7.8.9.10.11.12.13.14.15.16.17.18.19.20.21.22.23.24.25.26.27.28.29.30.31.32",
]  # fmt: skip
segment = st.one_of(
    st.sampled_from(REAL + TRAVERSALS),
    st.text(alphabet=st.characters(codec="utf-8"), max_size=80),
    st.text(alphabet="0123456789./\\%:", max_size=80),
)


def _tree(root: Path, skip: Path) -> dict[str, tuple[int, int]]:
    """Every file below ``root`` but outside ``skip``: its size and modification time."""
    found = {}
    for folder, dirs, files in os.walk(root):
        if Path(folder) == skip or skip in Path(folder).parents:
            dirs.clear()
            continue
        for name in files:
            stat = (Path(folder) / name).stat()
            found[str(Path(folder) / name)] = (stat.st_size, stat.st_mtime_ns)
    return found


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[TestClient, Path]]:
    around = tmp_path_factory.mktemp("fuzz")
    (around / "outside").mkdir()
    (around / "outside" / "sentinel").write_text("must stay as it is")
    data = around / "data"
    container = build_container(Settings(data_dir=data, sites=["north"]))
    with TestClient(create_app(container), raise_server_exceptions=False) as client:
        client.portal.call(container.start)
        stop = client.portal.call(_event)
        processor = client.portal.start_task_soon(
            run_ingest_processor, container.bus, container.ingest_context, stop
        )
        body, boundary = multipart([CT.read_bytes()])
        content_type = f'multipart/related; type="application/dicom"; boundary={boundary}'
        stored = client.post(
            f"{DICOMWEB_ROOT}/studies", content=body, headers={"Content-Type": content_type}
        )
        assert stored.status_code == 200, stored.text
        try:
            yield client, around
        finally:
            client.portal.call(stop.set)
            processor.result(timeout=60)
            client.portal.call(container.close)


async def _event() -> asyncio.Event:
    return asyncio.Event()


@settings(
    max_examples=1500,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(
    route=st.sampled_from(ROUTES),
    values=st.lists(segment, min_size=6, max_size=6),
    encode=st.booleans(),
    prefix=st.sampled_from([DICOMWEB_ROOT, "/sites/north/dicom-web", "/sites/../dicom-web"]),
    query=st.lists(st.tuples(segment, segment), max_size=4),
    body=st.binary(max_size=512),
    content_type=st.sampled_from(
        [
            "application/dicom+json",
            'multipart/related; type="application/dicom"; boundary=x',
            "application/dicom+xml",
            "text/plain",
            "",
        ]
    ),
)
def test_no_route_answers_5xx_or_leaves_the_data_directory(
    world: tuple[TestClient, Path],
    route: tuple[str, str],
    values: list[str],
    encode: bool,
    prefix: str,
    query: list[tuple[str, str]],
    body: bytes,
    content_type: str,
) -> None:
    client, around = world
    before = _tree(around, around / "data")
    method, template = route
    names = iter(values)

    def value(_: re.Match[str]) -> str:
        raw = next(names)
        return quote(raw, safe="") if encode else quote(raw, safe="/.%\\")

    path = prefix + re.sub(r"\{\w+(:path)?\}", value, template)
    params = "&".join(f"{quote(k, safe='')}={quote(v, safe='')}" for k, v in query)
    url = f"{path}?{params}" if params else path
    headers = {"Content-Type": content_type} if content_type else {}
    content = body if method in ("POST", "PUT") else None
    response = client.request(method, url, content=content, headers=headers)
    assert response.status_code < 500, (method, url, response.status_code, response.text[:300])
    assert _tree(around, around / "data") == before
