"""Fixtures of the service tier: the archive in process (tests/support/archive.py)."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
import pytest_asyncio

from tests.support.archive import Archive, running_archive


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def archive(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Archive]:
    """One archive, with its default settings, shared by the tests of a module."""
    async with running_archive(tmp_path_factory.mktemp("archive") / "data") as running:
        yield running
