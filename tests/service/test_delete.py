"""DELETE of studies, series and instances, and IOCM rejection notes, in process (embedded).

Through the pipeline: the DELETE record travels on ``ingest`` with the study's stores and the
processor applies it to the SQLite index and the objects on disk; 204, 202 and 404 as
docs/conformance.md documents; the Study Deleted audit message; a study stored while it is
deleted; a redelivered delete; rejection notes (PS3.16 CID 7011) removing what they reference.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from io import BytesIO
from pathlib import Path

import pytest
from lxml import etree
from pydicom import dcmread
from pydicom.uid import generate_uid

from pacsflow.audit.trail import AUDIT_TOPIC
from pacsflow.pipeline.delete import process_records
from pacsflow.pipeline.records import DeleteRecord
from pacsflow.ports import Subscription
from tests.support.deletion import image, part10, rejection_note
from tests.support.embedded_archive import Archive, embedded_archive

ROOT = "/dicom-web"
WAIT = 60.0  # bound of the waits for the processor; it answers long before


@pytest.fixture
async def archive(tmp_path: Path) -> AsyncIterator[Archive]:
    async with embedded_archive(tmp_path) as running:
        yield running


async def until(check: Callable[[], Awaitable[bool]]) -> None:
    """Wait (bounded by WAIT) until ``check`` holds."""
    async with asyncio.timeout(WAIT):
        while True:
            if await check():
                return
            await asyncio.sleep(0.05)


async def stored(archive: Archive, parts: list[bytes], **headers: str) -> None:
    response = await archive.post_parts(parts, **headers)
    assert response.status_code == (202 if headers else 200), response.text


async def instances(archive: Archive, study: str) -> set[str]:
    """The SOP Instance UIDs QIDO-RS finds in ``study``."""
    response = await archive.client.get(f"{ROOT}/studies/{study}/instances")
    if response.status_code == 204:
        return set()
    assert response.status_code == 200, response.text
    return {item["00080018"]["Value"][0] for item in response.json()}


async def keys(archive: Archive, study: str) -> set[str]:
    """The object keys under ``study`` (the SOP Instance UIDs whose objects are there)."""
    found = [key async for key in archive.objects.list(f"default/studies/{study}/")]
    return {key.rsplit("/", 1)[1].rsplit(".", 1)[0] for key in found}


def sop_of(part: bytes) -> str:
    return str(dcmread(BytesIO(part), stop_before_pixels=True).SOPInstanceUID)


async def _holds(archive: Archive, study: str, uids: set[str]) -> bool:
    return await instances(archive, study) == uids


async def _emptied(archive: Archive, study: str) -> bool:
    return not await instances(archive, study) and not await keys(archive, study)


async def study_of_two_series(archive: Archive) -> tuple[str, str, str, list[bytes]]:
    study, first, second = generate_uid(), generate_uid(), generate_uid()
    parts = [image(study, first), image(study, first), image(study, second)]
    await stored(archive, parts)
    return study, first, second, parts


async def test_delete_an_instance_a_series_and_the_study(archive: Archive) -> None:
    study, first, _, parts = await study_of_two_series(archive)
    a, b, c = (sop_of(p) for p in parts)
    client = archive.client

    gone = await client.delete(f"{ROOT}/studies/{study}/series/{first}/instances/{a}")

    assert gone.status_code == 204, gone.text
    assert await instances(archive, study) == {b, c}
    assert await keys(archive, study) == {b, c}
    retrieve = await client.get(f"{ROOT}/studies/{study}/series/{first}/instances/{a}")
    assert retrieve.status_code == 404
    counts = await client.get(f"{ROOT}/studies?StudyInstanceUID={study}")
    assert counts.json()[0]["00201208"]["Value"] == [2]  # NumberOfStudyRelatedInstances

    assert (await client.delete(f"{ROOT}/studies/{study}/series/{first}")).status_code == 204
    assert await instances(archive, study) == {c}
    assert (await client.delete(f"{ROOT}/studies/{study}")).status_code == 204
    assert await instances(archive, study) == set()
    assert await keys(archive, study) == set()
    assert (await client.get(f"{ROOT}/studies?StudyInstanceUID={study}")).json() == []
    assert (await client.delete(f"{ROOT}/studies/{study}")).status_code == 404


async def test_nothing_held_is_404_and_a_bad_uid_400(archive: Archive) -> None:
    study, _, second, parts = await study_of_two_series(archive)
    client = archive.client

    unknown = await client.delete(f"{ROOT}/studies/{generate_uid()}")
    other_series = await client.delete(
        f"{ROOT}/studies/{study}/series/{second}/instances/{sop_of(parts[0])}"
    )
    bad = await client.delete(f"{ROOT}/studies/not-a-uid")

    assert unknown.status_code == 404
    assert other_series.status_code == 404
    assert bad.status_code == 400
    assert await instances(archive, study) == {sop_of(p) for p in parts}


async def test_respond_async_is_202_and_applied_later(archive: Archive) -> None:
    study, _, _, _ = await study_of_two_series(archive)

    response = await archive.client.delete(
        f"{ROOT}/studies/{study}", headers={"Prefer": "respond-async"}
    )

    assert response.status_code == 202
    assert response.headers["Preference-Applied"] == "respond-async"
    await until(lambda: _emptied(archive, study))


async def test_not_applied_in_time_is_202(tmp_path: Path) -> None:
    async with embedded_archive(tmp_path, stow_timeout_seconds=0.2) as archive:
        study, first = generate_uid(), generate_uid()
        parts = [image(study, first), image(study, first)]
        # answered once logged (a loaded machine may take longer than the 0.2 s), then indexed
        await stored(archive, parts, Prefer="respond-async")
        await until(lambda: _holds(archive, study, {sop_of(p) for p in parts}))
        await archive.stop_processor()

        response = await archive.client.delete(f"{ROOT}/studies/{study}")

        assert response.status_code == 202
        archive.start_processor()
        await until(lambda: _emptied(archive, study))


async def test_a_study_stored_while_it_is_deleted(archive: Archive) -> None:
    """Stores published before the DELETE are deleted with the study, stores published after
    it make the study anew: the log's order, the same in the index and the object store."""
    study, first, _, _ = await study_of_two_series(archive)
    await archive.stop_processor()
    before, after = image(study, first), image(study, generate_uid())
    await stored(archive, [before], Prefer="respond-async")
    deleting = await archive.client.delete(
        f"{ROOT}/studies/{study}", headers={"Prefer": "respond-async"}
    )
    await stored(archive, [after], Prefer="respond-async")
    assert deleting.status_code == 202

    archive.start_processor()

    async def only_after() -> bool:
        return await instances(archive, study) == {sop_of(after)}

    await until(only_after)
    assert await keys(archive, study) == {sop_of(after)}
    assert not [k async for k in archive.objects.list("default/staging/")]


async def test_a_redelivered_delete_leaves_the_same_state(archive: Archive) -> None:
    study, first, _, parts = await study_of_two_series(archive)
    record = DeleteRecord(uuid.uuid4().hex, "default", study, first, None, "2026-12-07T06:00Z")
    ctx = archive.container.ingest_context

    events = await process_records([record, record], ctx)

    assert [e.status for e in events] == ["deleted", "deleted"]
    assert [e.message for e in events] == ["2 instances deleted", "0 instances deleted"]
    assert await instances(archive, study) == {sop_of(parts[2])}
    assert await keys(archive, study) == {sop_of(parts[2])}


async def test_objects_an_interrupted_delete_left_are_removed(archive: Archive) -> None:
    """A delivery stopped after the index was changed finds the objects by their keys."""
    study, first, _, parts = await study_of_two_series(archive)
    index = archive.container.index
    await index.delete_instances("default", [sop_of(parts[0]), sop_of(parts[1])])
    record = DeleteRecord(uuid.uuid4().hex, "default", study, first, None, "2026-12-07T06:00Z")

    await process_records([record], archive.container.ingest_context)

    assert await keys(archive, study) == {sop_of(parts[2])}


async def test_the_deletion_is_audited(archive: Archive) -> None:
    study, _, _, _ = await study_of_two_series(archive)
    subscription = await archive.container.bus.subscribe(AUDIT_TOPIC, f"t-{uuid.uuid4().hex}")

    assert (await archive.client.delete(f"{ROOT}/studies/{study}")).status_code == 204

    await until(lambda: _audited(subscription, study))
    await subscription.close()


async def _audited(subscription: Subscription, study: str, text: str = "") -> bool:
    """Whether the next audit messages hold a Study Deleted of ``study`` mentioning ``text``."""
    for message in await subscription.fetch(100, 0.2):
        root = etree.fromstring(message.value)
        event = root.find("EventIdentification/EventID")
        objects = [
            o.get("ParticipantObjectID") for o in root.iter("ParticipantObjectIdentification")
        ]
        description = root.findtext("EventIdentification/EventOutcomeDescription") or ""
        if (
            event is not None
            and event.get("originalText") == "DICOM Study Deleted"
            and study in objects
            and text in description
        ):
            return True
    return False


@pytest.mark.parametrize("code", ["113001", "113037", "113038", "113039"])
async def test_a_rejection_note_removes_what_it_references(archive: Archive, code: str) -> None:
    study, first, second, parts = await study_of_two_series(archive)
    rejected = [(first, sop_of(parts[0])), (second, sop_of(parts[2]))]
    note = rejection_note(code, study, rejected)

    await stored(archive, [part10(note)])

    assert await instances(archive, study) == {sop_of(parts[1]), note.SOPInstanceUID}
    assert await keys(archive, study) == {sop_of(parts[1]), note.SOPInstanceUID}
    retrieved = await archive.client.get(
        f"{ROOT}/studies/{study}/series/{note.SeriesInstanceUID}/instances/{note.SOPInstanceUID}",
        headers={"Accept": "multipart/related; type=application/dicom"},
    )
    assert retrieved.status_code == 200


async def test_a_rejection_note_is_audited_as_a_deletion(archive: Archive) -> None:
    study, first, _, parts = await study_of_two_series(archive)
    subscription = await archive.container.bus.subscribe(AUDIT_TOPIC, f"t-{uuid.uuid4().hex}")
    note = rejection_note("113039", study, [(first, sop_of(parts[0]))])

    await stored(archive, [part10(note)])

    await until(lambda: _audited(subscription, study, note.SOPInstanceUID))
    await subscription.close()


async def test_a_rejection_note_delivered_again_removes_what_was_left(archive: Archive) -> None:
    """The first delivery removed the index entry and stopped before the objects."""
    study, first, _, parts = await study_of_two_series(archive)
    await archive.container.index.delete_instances("default", [sop_of(parts[0])])
    note = rejection_note("113001", study, [(first, sop_of(parts[0]))])

    await stored(archive, [part10(note)])

    assert sop_of(parts[0]) not in await keys(archive, study)


async def test_a_key_object_of_another_title_removes_nothing(archive: Archive) -> None:
    study, first, _, parts = await study_of_two_series(archive)
    note = rejection_note("113000", study, [(first, sop_of(parts[0]))])  # "Of Interest"

    await stored(archive, [part10(note)])

    assert await instances(archive, study) == {*map(sop_of, parts), note.SOPInstanceUID}


async def test_a_rejection_note_in_the_same_request_as_its_instances(archive: Archive) -> None:
    study, series = generate_uid(), generate_uid()
    kept, rejected = image(study, series), image(study, series)
    note = rejection_note("113001", study, [(series, sop_of(rejected))])

    await stored(archive, [kept, rejected, part10(note)])

    assert await instances(archive, study) == {sop_of(kept), note.SOPInstanceUID}
    assert await keys(archive, study) == {sop_of(kept), note.SOPInstanceUID}
