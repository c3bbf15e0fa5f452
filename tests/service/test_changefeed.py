"""The change feed in process: ``GET /changefeed`` and ``/changefeed/latest`` after STOW-RS
(creates, replacements, rejections), DELETE and IOCM rejection notes, paging, metadata, sites
and bad parameters."""

from __future__ import annotations

import asyncio
import importlib.util
import io
from collections.abc import AsyncIterator
from pathlib import Path
from types import ModuleType
from typing import Any

import pydicom
import pytest
import pytest_asyncio
from pydicom.uid import generate_uid

from pacsflow.dicom.status import FailureReason
from tests.support.archive import BASE_URL, Archive, running_archive
from tests.support.corpus import CORPUS, uids_of
from tests.support.deletion import image, part10, rejection_note
from tests.support.dicomweb import multipart, stow_content_type
from tests.support.nonpatient import COLOR_PALETTE, store_palette

pytestmark = pytest.mark.asyncio(loop_scope="module")

CT = CORPUS / "modality" / "CT_small.dcm"
MR = CORPUS / "transfer-syntax" / "explicit_le_MR_small.dcm"
TRUNCATED = CORPUS / "malformed" / "truncated_pixel_data_MR.dcm"
NORTH = BASE_URL.replace("/dicom-web", "/sites/north/dicom-web")


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def archive(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Archive]:
    """An archive serving the default site and the site ``north``."""
    async with running_archive(tmp_path_factory.mktemp("feed") / "data", sites=["north"]) as a:
        yield a


def changed(path: Path, comment: str) -> bytes:
    """The file with other bytes under the same UIDs (an ImageComments of its own)."""
    ds = pydicom.dcmread(path)
    ds.ImageComments = comment
    out = io.BytesIO()
    ds.save_as(out, enforce_file_format=True)
    return out.getvalue()


async def feed(archive: Archive, root: str = "", **params: Any) -> list[dict[str, Any]]:
    response = await archive.client.get(f"{root}/changefeed", params=params)
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == "application/json"
    entries: list[dict[str, Any]] = response.json()
    return entries


async def test_an_empty_feed(archive: Archive) -> None:
    assert await feed(archive) == []
    latest = await archive.client.get("/changefeed/latest")
    assert latest.status_code == 200
    assert latest.json() == {"Sequence": 0}


async def test_stored_replaced_and_rejected_instances_in_order(archive: Archive) -> None:
    first = await archive.stow([CT.read_bytes(), MR.read_bytes(), TRUNCATED.read_bytes()])
    assert first.status_code == 202, first.text
    second = await archive.stow([changed(CT, "second version")])
    assert second.status_code == 202, second.text  # with Warning Reason B100: replaced
    entries = await feed(archive, limit=100)
    ct, mr, bad = uids_of(CT), uids_of(MR), uids_of(TRUNCATED)
    got = [(e["Sequence"], e["SopInstanceUid"], e["Action"], e["State"]) for e in entries]
    assert got == [
        (1, ct[2], "create", "replaced"),
        (2, mr[2], "create", "current"),
        (3, bad[2], "reject", "rejected"),
        (4, ct[2], "create", "current"),
    ]
    assert entries[0]["StudyInstanceUid"] == ct[0] and entries[0]["SeriesInstanceUid"] == ct[1]
    assert entries[2]["FailureReason"] == FailureReason.CANNOT_UNDERSTAND
    assert "Metadata" not in entries[0]  # replaced: no longer what the archive holds
    assert entries[3]["Metadata"]["00204000"]["Value"] == ["second version"]
    assert entries[1]["SopClassUid"] == str(pydicom.dcmread(MR).SOPClassUID)
    assert all(e["Timestamp"].endswith("Z") for e in entries)
    latest = (await archive.client.get("/changefeed/latest")).json()
    assert latest == entries[3]


async def test_paging_by_start_sequence_offset_and_limit(archive: Archive) -> None:
    everything = await feed(archive, limit=100)
    assert len(everything) >= 4
    assert [e["Sequence"] for e in await feed(archive, startSequence=2, limit=2)] == [2, 3]
    assert [e["Sequence"] for e in await feed(archive, offset=2, limit=1)] == [3]
    assert await feed(archive, startSequence=len(everything) + 1) == []
    assert len(await feed(archive)) == min(10, len(everything))  # Azure's default limit
    without = await feed(archive, includemetadata="false", limit=100)
    assert all("Metadata" not in e for e in without)
    assert [e["Sequence"] for e in without] == [e["Sequence"] for e in everything]


async def test_sites_have_feeds_of_their_own(archive: Archive) -> None:
    before = await feed(archive, limit=1000)
    body, boundary = multipart([MR.read_bytes()])
    response = await archive.client.post(
        f"{NORTH}/studies", content=body, headers={"Content-Type": stow_content_type(boundary)}
    )
    assert response.status_code == 200, response.text
    north = await feed(archive, NORTH)
    assert [(e["Sequence"], e["SopInstanceUid"]) for e in north] == [(1, uids_of(MR)[2])]
    assert await feed(archive, limit=1000) == before
    unknown = await archive.client.get(NORTH.replace("north", "south") + "/changefeed")
    assert unknown.status_code == 404


@pytest.mark.parametrize(
    "query",
    [
        "limit=0",
        "limit=1001",
        "limit=ten",
        "startSequence=0",
        "startSequence=-1",
        "offset=-3",
        "startSequence=1&offset=0",
        "includemetadata=maybe",
    ],
)
async def test_bad_parameters_are_400(archive: Archive, query: str) -> None:
    response = await archive.client.get(f"/changefeed?{query}")
    assert response.status_code == 400, response.text
    latest = await archive.client.get(f"/changefeed/latest?{query}")
    assert latest.status_code == 400


def follower() -> ModuleType:
    """The consumer example of docs/operations.md (docs/examples/follow_changefeed.py)."""
    path = Path(__file__).parents[2] / "docs" / "examples" / "follow_changefeed.py"
    spec = importlib.util.spec_from_file_location("follow_changefeed", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


async def test_the_example_follower_sees_past_and_new_changes_in_order(archive: Archive) -> None:
    example = follower()
    known = await feed(archive, limit=1000)
    seen: list[dict[str, Any]] = []
    target = len(known) + 1

    async def handle(entry: dict[str, Any]) -> bool:
        seen.append(entry)
        return len(seen) < target

    following = asyncio.create_task(example.follow(archive.client, 0, handle, idle=0.05))
    stored = await archive.stow([changed(MR, "seen by the follower")])  # while it follows
    assert stored.status_code == 202, stored.text
    last = await following
    assert [e["Sequence"] for e in seen] == list(range(1, target + 1))
    assert last == target
    assert seen[-1]["SopInstanceUid"] == uids_of(MR)[2] and seen[-1]["Action"] == "create"
    resumed: list[int] = []

    async def after_restart(entry: dict[str, Any]) -> bool:
        resumed.append(entry["Sequence"])
        return False

    more = await archive.stow([changed(MR, "after the follower stopped")])
    assert more.status_code == 202, more.text
    assert await example.follow(archive.client, last, after_restart) == target + 1
    assert resumed == [target + 1]


async def _grown(archive: Archive, before: int, count: int) -> list[dict[str, Any]]:
    """The entries after the first ``before``, once there are ``count`` of them (bounded)."""
    async with asyncio.timeout(60):
        while True:
            entries = await feed(archive, startSequence=before + 1, limit=100)
            if len(entries) >= count:
                return entries
            await asyncio.sleep(0.05)


async def test_deleted_and_iocm_rejected_instances_are_fed(archive: Archive) -> None:
    """A DELETE feeds one ``delete`` entry per instance it removes; an IOCM rejection note
    (PS3.16 CID 7011) a ``delete`` entry per instance it rejects, with the note as reason."""
    study, first, second = generate_uid(), generate_uid(), generate_uid()
    parts = [image(study, first), image(study, first), image(study, second)]
    a, b, c = (pydicom.dcmread(io.BytesIO(p)).SOPInstanceUID for p in parts)
    before = len(await feed(archive, limit=1000))
    assert (await archive.stow(parts)).status_code in (200, 202)
    await _grown(archive, before, 3)
    gone = await archive.client.delete(f"/studies/{study}/series/{first}")
    assert gone.status_code in (202, 204), gone.text
    deleted = (await _grown(archive, before, 5))[3:]
    assert sorted((e["Action"], e["SopInstanceUid"], e["State"]) for e in deleted) == sorted(
        [("delete", a, "deleted"), ("delete", b, "deleted")]
    )
    assert {(e["StudyInstanceUid"], e["SeriesInstanceUid"], e["Reason"]) for e in deleted} == {
        (study, first, "DELETE request")
    }
    note = rejection_note("113001", study, [(second, c)])
    assert (await archive.stow([part10(note)])).status_code in (200, 202)
    stored, rejected = (await _grown(archive, before, 7))[5:]
    assert (stored["Action"], stored["SopInstanceUid"]) == ("create", note.SOPInstanceUID)
    assert (rejected["Action"], rejected["SopInstanceUid"], rejected["State"]) == (
        "delete",
        c,
        "deleted",
    )
    assert rejected["Reason"] == (
        f"IOCM rejection note {note.SOPInstanceUID} (Rejected for Quality Reasons)"
    )
    assert rejected["Sequence"] == stored["Sequence"] + 1


async def test_a_non_patient_instance_is_fed_without_a_study(archive: Archive) -> None:
    """A Color Palette stored at its NPI resource (PS3.18 12.5) is an entry of the site's feed,
    with no study or series, and its metadata while current."""
    before = len(await feed(archive, limit=1000))
    stored = await store_palette(archive.client, "")
    assert stored.status_code in (200, 202), stored.text
    (entry,) = await _grown(archive, before, 1)
    palette = pydicom.dcmread(COLOR_PALETTE, stop_before_pixels=True)
    assert (entry["Action"], entry["State"], entry["SopInstanceUid"], entry["SopClassUid"]) == (
        "create",
        "current",
        palette.SOPInstanceUID,
        palette.SOPClassUID,
    )
    assert entry["StudyInstanceUid"] == entry["SeriesInstanceUid"] == ""
    assert entry["Metadata"]["00700080"]["Value"] == ["HOT_IRON"]  # its Content Label
    assert all(e["SopInstanceUid"] != palette.SOPInstanceUID for e in await feed(archive, NORTH))
