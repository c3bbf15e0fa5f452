"""``pacsflow reindex`` (issue 23, item 3): the index is derived state. The index file of an
archive is deleted, the command rebuilds it from the stored objects, and every document and
every search answer is what ingest had written; a run stopped midway resumes after its
checkpoint.
"""

from __future__ import annotations

import asyncio
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pydicom
import pytest

from bench.chaos_deploy import settings_of
from bench.chaos_reindex import preload
from pacsflow.adapters.sqlite_index import SqliteIndex
from pacsflow.cli import main
from pacsflow.config import Settings
from pacsflow.container import build_container
from pacsflow.ports import InstanceDocument
from pacsflow.reindex.rebuild import Progress, reindex
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


# The concurrent path: many objects read at once, handed on in key order, each batch upserted
# while the next is read. A run that stops (a SIGKILL of the command, or an error at any
# checkpoint) has indexed every key up to its checkpoint; the run after it indexes the rest,
# and the rebuilt index holds each instance once, as ingest wrote it.

GROWN = 300  # instances of the chaos load (MR and CT slices), stored by the worker's ingest


def _grown(data_dir: Path) -> Settings:
    """An embedded archive of ``GROWN`` instances (``bench.chaos_reindex.preload``)."""
    settings = settings_of({}, data_dir)
    assert asyncio.run(preload(settings, GROWN, seed=7)) >= GROWN
    return settings


async def _instance_keys(settings: Settings) -> list[str]:
    objects = build_container(settings).objects
    await objects.start()
    try:
        return sorted([k async for k in objects.list(f"{SITE}/studies/") if k.endswith(".dcm")])
    finally:
        await objects.close()


async def _documents(index_file: Path, keys: list[str]) -> dict[str, InstanceDocument]:
    """The documents of the instances ``keys`` name that ``index_file`` holds, by key; and
    its totals agree with them (nothing else, nothing twice)."""
    index = SqliteIndex(index_file)
    await index.start()
    try:
        sops = [k.rpartition("/")[2].removesuffix(".dcm") for k in keys]
        found = await index.get_instances(SITE, sops)
        totals = await index.totals()
    finally:
        await index.close()
    assert totals.instances == len(found)
    assert totals.bytes == sum(d.size for d in found.values())
    return {d.object_key: d for d in found.values()}


class _Stopped(Exception):
    """The run stops at a checkpoint (as a process killed right after writing it)."""


@pytest.mark.parametrize("stop_at", [1, 4, 9])
def test_a_concurrent_run_stopped_at_any_checkpoint_has_indexed_every_key_up_to_it(
    tmp_path: Path, stop_at: int
) -> None:
    settings = _grown(tmp_path / "data")
    keys = asyncio.run(_instance_keys(settings))
    ingested = asyncio.run(_documents(tmp_path / "data" / "index.sqlite", keys))
    assert len(ingested) == len(keys) >= GROWN
    rebuilt, checkpoint = tmp_path / "rebuilt.sqlite", tmp_path / "checkpoint"

    async def run(stop_at: int | None) -> Progress:
        objects = build_container(settings).objects
        index = SqliteIndex(rebuilt)
        reports = 0

        def report(progress: Progress) -> None:
            nonlocal reports
            reports += 1
            assert checkpoint.read_text() == progress.last_key
            if reports == stop_at:
                raise _Stopped

        await objects.start()
        await index.start()
        try:
            return await reindex(
                objects, index, checkpoint=checkpoint, report=report, concurrency=8, batch_size=16
            )
        finally:
            await index.close()
            await objects.close()

    with pytest.raises(_Stopped):
        asyncio.run(run(stop_at))
    last = checkpoint.read_text()
    done = [k for k in keys if k <= last]
    assert len(done) >= 16 * stop_at
    indexed = asyncio.run(_documents(rebuilt, keys))
    assert {k: indexed.get(k) for k in done} == {k: ingested[k] for k in done}

    progress = asyncio.run(run(None))
    assert progress.indexed >= len(keys) - len(done)
    assert not checkpoint.exists()
    assert asyncio.run(_documents(rebuilt, keys)) == ingested


def test_reindex_killed_midway_and_run_again_indexes_everything_once(tmp_path: Path) -> None:
    """``pacsflow reindex`` SIGKILLed after a checkpoint, then run again (the CLI, as an
    operator or the chaos trials run it)."""
    data_dir = tmp_path / "data"
    settings = _grown(data_dir)
    keys = asyncio.run(_instance_keys(settings))
    ingested = asyncio.run(_documents(data_dir / "index.sqlite", keys))
    for file in data_dir.glob("index.sqlite*"):
        file.unlink()  # the index is lost
    checkpoint = data_dir / "reindex.checkpoint"
    argv = [sys.executable, "-m", "pacsflow", "reindex", "--data-dir", str(data_dir)]
    argv += ["--batch-size", "4", "--concurrency", "8"]
    with (tmp_path / "killed.log").open("wb") as out:
        process = subprocess.Popen(argv, stdout=out, stderr=subprocess.STDOUT)
        try:
            while not checkpoint.exists() and process.poll() is None:
                time.sleep(0.005)
        finally:
            process.kill()
            process.wait()
    assert process.returncode == -signal.SIGKILL, (tmp_path / "killed.log").read_text()
    last = checkpoint.read_text()
    done = [k for k in keys if k <= last]
    indexed = asyncio.run(_documents(data_dir / "index.sqlite", keys))
    assert {k: indexed.get(k) for k in done} == {k: ingested[k] for k in done}
    assert len(indexed) < len(keys)  # killed midway

    again = subprocess.run(argv, capture_output=True, text=True, check=False)
    assert again.returncode == 0, again.stderr
    assert f"resuming after {last!r}" in again.stdout
    assert asyncio.run(_documents(data_dir / "index.sqlite", keys)) == ingested
    assert not checkpoint.exists()
