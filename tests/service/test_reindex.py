"""``pacsflow reindex`` (issue 23, item 3): the index is derived state. The index file of an
archive is deleted, the command rebuilds it from the stored objects, and every document and
every search answer is what ingest had written; a run stopped midway resumes after its
checkpoint.
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pydicom
import pytest

from pacsflow.adapters.sqlite_index import SqliteIndex
from pacsflow.cli import main
from pacsflow.ports import InstanceDocument
from pacsflow.reindex.rebuild import reindex
from tests.support.archive import running_archive
from tests.support.corpus import CORPUS

FILES = sorted((CORPUS / "modality").glob("*.dcm"))
SITE = "default"


def _sop(path: Path) -> str:
    return str(pydicom.dcmread(path, stop_before_pixels=True).SOPInstanceUID)


async def _snapshot(data_dir: Path, store: bool) -> tuple[list[Any], list[InstanceDocument]]:
    """(QIDO /instances of the archive, the index document of every corpus instance)."""
    async with running_archive(data_dir) as archive:
        if store:
            stored = await archive.stow_files(*FILES)
            assert stored.status_code in (200, 202), stored.text
        found = await archive.client.get("/instances", params={"includefield": "all"})
        assert found.status_code == 200
        documents = [await archive.container.index.get_instance(SITE, _sop(f)) for f in FILES]
    return sorted(found.json(), key=str), [d for d in documents if d is not None]


def test_reindex_rebuilds_a_deleted_index_as_ingest_wrote_it(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    before = asyncio.run(_snapshot(data_dir, store=True))
    assert len(before[1]) >= 10  # the corpus was stored (a few may carry warnings)

    (data_dir / "index.sqlite").unlink()  # the search index is lost
    for sidecar in data_dir.glob("index.sqlite-*"):
        sidecar.unlink()
    assert main(["reindex", "--data-dir", str(data_dir)]) == 0

    after = asyncio.run(_snapshot(data_dir, store=False))
    assert after == before
    assert not (data_dir / "reindex.checkpoint").exists()


def test_reindex_with_a_new_data_directory_keeps_its_checkpoint_there(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A pipeline's reindex job names its object store and index; its data directory (the
    checkpoint's) may not exist yet: it is made (the chaos trials found a traceback)."""
    data_dir = tmp_path / "data"
    before = asyncio.run(_snapshot(data_dir, store=True))
    monkeypatch.setenv("PACSFLOW_OBJECT_STORE_URL", f"file://{data_dir / 'objects'}")
    monkeypatch.setenv("PACSFLOW_INDEX_URL", f"sqlite:///{data_dir / 'index.sqlite'}")
    assert main(["reindex", "--data-dir", str(tmp_path / "job" / "new")]) == 0
    assert asyncio.run(_snapshot(data_dir, store=False)) == before


def test_a_stopped_reindex_resumes_after_its_checkpoint(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    asyncio.run(_snapshot(data_dir, store=True))

    async def resume() -> None:
        async with running_archive(data_dir, processors=False) as archive:
            objects = archive.container.objects
            keys = [k async for k in objects.list(f"{SITE}/studies/") if k.endswith(".dcm")]
            checkpoint = tmp_path / "checkpoint"
            checkpoint.write_text(keys[3])  # a run stopped after its fourth instance
            index = SqliteIndex(tmp_path / "rebuilt.sqlite")
            await index.start()
            try:
                progress = await reindex(objects, index, checkpoint=checkpoint)
                assert progress.indexed == len(keys) - 4
                assert not checkpoint.exists()
                for number, key in enumerate(keys):
                    sop = key.rpartition("/")[2].removesuffix(".dcm")
                    document = await index.get_instance(SITE, sop)
                    assert (document is not None) == (number > 3), key
            finally:
                await index.close()

    asyncio.run(resume())
