"""Fixtures of the service tier: the archive in process (tests/support/archive.py), and the
Worklist served on a real loopback socket (tests/support/serving.py)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest
import pytest_asyncio

from tests.support.archive import Archive, running_archive
from tests.support.serving import Running, worklist


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def archive(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Archive]:
    """One archive, with its default settings, shared by the tests of a module."""
    async with running_archive(tmp_path_factory.mktemp("archive") / "data") as running:
        yield running


@pytest.fixture
async def ups(tmp_path: Path) -> AsyncIterator[Running]:
    """The Worklist Service with the default settings."""
    async for running in worklist(tmp_path):
        yield running
