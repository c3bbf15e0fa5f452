"""Fixtures shared by the index port's contract suites (``test_index``, ``test_changefeed``)."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from pacsflow.ports.index import Index
from tests.support.indexes import INDEX_FACTORIES


@pytest.fixture(params=list(INDEX_FACTORIES))
async def index(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Index]:
    """A started index; closed after the test."""
    created = INDEX_FACTORIES[request.param](request, tmp_path)
    await created.start()
    try:
        yield created
    finally:
        await created.close()


@pytest.fixture
def site() -> str:
    """A site name no other test uses."""
    return f"site-{uuid.uuid4().hex}"
