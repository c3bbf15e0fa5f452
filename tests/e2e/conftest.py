"""Fixtures of the end-to-end tier: ``pacsflow serve`` as a real process, in each mode."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.corpus import CORPUS, corpus_files
from tests.support.dicomweb import sequence, stow_file, value
from tests.support.servers import MODES, Server, start_deployment
from tests.support.stored import Stored

# What the read-only tests of QIDO-RS and WADO-RS store once per mode and session.
CORPUS_FOLDERS = ("transfer-syntax", "multiframe", "modality", "objects", "charset")


@contextlib.contextmanager
def _deployment(root: Path, mode: str, request: pytest.FixtureRequest) -> Iterator[Server]:
    """A running deployment of ``mode``, stopped after: embedded, nothing else; pipeline, on the
    session's moto and osmem servers; durable (``also_durable``), pipeline on the session's
    SeaweedFS with its own Tansu keeping its log there."""
    if mode == "embedded":
        server = start_deployment(root, mode)
    elif mode == "durable":
        s3 = request.getfixturevalue("seaweedfs_endpoint")
        es = request.getfixturevalue("es_url")
        server = start_deployment(root, "pipeline", s3, es, durable=True)
    else:
        s3 = request.getfixturevalue("s3_endpoint")
        server = start_deployment(root, mode, s3, request.getfixturevalue("es_url"))
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(params=MODES)
def server(tmp_path: Path, request: pytest.FixtureRequest) -> Iterator[Server]:
    """A fresh archive per test, in each mode."""
    with _deployment(tmp_path, request.param, request) as running:
        yield running


@pytest.fixture(scope="module", params=MODES)
def server_module(
    tmp_path_factory: pytest.TempPathFactory, request: pytest.FixtureRequest
) -> Iterator[Server]:
    """One archive shared by the tests of a module, in each mode."""
    with _deployment(tmp_path_factory.mktemp(request.param), request.param, request) as running:
        yield running


@pytest.fixture(scope="session", params=MODES)
def corpus_archive(
    tmp_path_factory: pytest.TempPathFactory, request: pytest.FixtureRequest
) -> Iterator[Stored]:
    """One archive per mode holding every file of CORPUS_FOLDERS, stored through STOW-RS, and
    what it accepted; shared by tests that only read it (tests/e2e/test_qido.py, test_wado.py)."""
    root = tmp_path_factory.mktemp(f"corpus-{request.param}")
    with _deployment(root, request.param, request) as running:
        stored = Stored(running.url)
        for path in corpus_files():
            if path.relative_to(CORPUS).parts[0] not in CORPUS_FOLDERS:
                continue
            response = stow_file(running.url, path)
            if response.status_code in (200, 202):
                for item in sequence(response.json(), "00081199"):
                    stored.files[value(item, "00081155")] = path
        assert len(stored.files) > 50 and len(stored.studies()) >= 20
        yield stored
