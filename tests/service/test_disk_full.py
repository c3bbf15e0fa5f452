"""The data directory running out of space mid-STOW (issue 23, item 5), on a real small
filesystem: a 4 MiB tmpfs mounted for the test (it needs CAP_SYS_ADMIN, as root in CI has).

A request the disk cannot hold is answered 507 Insufficient Storage with Retry-After and leaves
nothing behind; one acknowledged before the disk filled is stored once space returns.
"""

from __future__ import annotations

import asyncio
import io
import os
import subprocess
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import httpx
import numpy as np
import pydicom
import pytest

from tests.support.archive import Archive, running_archive
from tests.support.corpus import CORPUS

CT = CORPUS / "modality" / "CT_small.dcm"
SAFETY = 60.0  # seconds a test waits for processing before it fails (not an assertion on time)


@pytest.fixture
def disk(tmp_path: Path) -> Iterator[Path]:
    """A 4 MiB filesystem of its own, unmounted after the test."""
    mount_point = tmp_path / "disk"
    mount_point.mkdir()
    mounted = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=4m", "tmpfs", str(mount_point)],
        capture_output=True,
        check=False,
    )
    if mounted.returncode != 0:
        pytest.skip(f"cannot mount a small tmpfs here: {mounted.stderr.decode().strip()}")
    try:
        yield mount_point
    finally:
        subprocess.run(["umount", "-l", str(mount_point)], check=True)


@pytest.fixture
async def archive(disk: Path) -> AsyncIterator[Archive]:
    async with running_archive(disk / "data", stow_timeout_seconds=1) as running:
        yield running


def _instance() -> bytes:
    """CT_small with 512x512 random 16-bit pixels (about 520 KiB, more than is left)."""
    ds = pydicom.dcmread(CT)
    ds.SOPInstanceUID = ds.file_meta.MediaStorageSOPInstanceUID = pydicom.uid.generate_uid()
    ds.Rows = ds.Columns = 512
    pixels = np.random.default_rng(7).integers(0, 4000, 512 * 512, dtype="<u2")
    ds.PixelData = pixels.tobytes()
    out = io.BytesIO()
    ds.save_as(out, enforce_file_format=True)
    return out.getvalue()


def _fill(disk: Path, leave: int) -> Path:
    """A file taking all the space of ``disk`` but ``leave`` bytes."""
    stat = os.statvfs(disk)
    filler = disk / "filler"
    filler.write_bytes(b"\0" * max(0, stat.f_bavail * stat.f_frsize - leave))
    return filler


def _leftovers(disk: Path) -> list[Path]:
    objects = disk / "data" / "objects"
    return [p for p in objects.rglob("*") if p.is_file() and "/instances/" not in str(p)]


async def _indexed(archive: Archive, sop: str) -> httpx.Response:
    found = await archive.client.get("/instances", params={"SOPInstanceUID": sop})
    assert found.status_code == 200
    return found


async def test_a_stow_the_disk_cannot_hold_is_507_and_leaves_nothing(
    archive: Archive, disk: Path
) -> None:
    data = _instance()
    ds = pydicom.dcmread(io.BytesIO(data), stop_before_pixels=True)
    filler = _fill(disk, leave=256 * 1024)
    refused = await archive.stow([data])
    assert refused.status_code == 507, refused.text
    assert refused.headers["retry-after"].isdigit()
    assert "out of space" in refused.json()["message"]
    assert _leftovers(disk) == []
    assert (await _indexed(archive, ds.SOPInstanceUID)).json() == []

    filler.unlink()  # space returns: the same request is stored
    stored = await archive.stow([data])
    assert stored.status_code == 200, stored.text
    assert (
        await archive.retrieve(ds.StudyInstanceUID, ds.SeriesInstanceUID, ds.SOPInstanceUID) == data
    )


@pytest.mark.parametrize("spare", [4, 16, 48, 96, 160])
async def test_whatever_write_fills_the_disk_nothing_acknowledged_is_lost(
    archive: Archive, disk: Path, spare: int
) -> None:
    """The staged part fits, then the journal or the processor's writes do not (which one
    depends on ``spare`` KiB left beside the part): either the request is refused (507) and
    leaves nothing, or it is acknowledged and stored once space returns (the processor retries).
    """
    data = _instance()
    ds = pydicom.dcmread(io.BytesIO(data), stop_before_pixels=True)
    filler = _fill(disk, leave=len(data) + spare * 1024)
    answer = await archive.stow([data])
    assert answer.status_code in (200, 202, 507), answer.text
    filler.unlink()
    if answer.status_code == 507:
        assert _leftovers(disk) == []
        assert (await _indexed(archive, ds.SOPInstanceUID)).json() == []
        return
    async with asyncio.timeout(SAFETY):
        while not (await _indexed(archive, ds.SOPInstanceUID)).json():  # noqa: ASYNC110
            await asyncio.sleep(0.2)  # the processor's retry, not an event of the test's
    study, series = ds.StudyInstanceUID, ds.SeriesInstanceUID
    assert await archive.retrieve(study, series, ds.SOPInstanceUID) == data
    assert _leftovers(disk) == []
