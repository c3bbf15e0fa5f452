"""STOW-RS when publishing to the log fails (issue 23, "refused yet stored"; PS3.18 10.5.3).

The faults are injected at the bus adapter: the archive's embedded journal, whose chosen
``ingest`` publishes append and then lose their answer (``PublishUnconfirmed``, as a Kafka
produce request that timed out after the broker appended it), or are refused before anything
is appended (``BusUnavailable``). The pipeline test with a real broker whose answers are lost
is ``tests/e2e/test_faults.py``.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from pathlib import Path

import pytest

from pacsflow.adapters.embedded_bus import EmbeddedBus
from pacsflow.container import _path
from pacsflow.dicom.status import FailureReason
from pacsflow.errors import BusUnavailable, PublishUnconfirmed
from pacsflow.pipeline.records import INGEST_GROUP, INGEST_TOPIC
from pacsflow.ports.bus import Headers
from tests.support.corpus import CORPUS, uids_of
from tests.support.dicomweb import sequence, value
from tests.support.embedded_archive import Archive, embedded_archive

pytestmark = pytest.mark.asyncio(loop_scope="module")

CT = CORPUS / "modality" / "CT_small.dcm"
MR = CORPUS / "transfer-syntax" / "explicit_le_MR_small.dcm"


class _FaultyJournal(EmbeddedBus):
    """The archive's journal; each ``ingest`` publish takes the next step of ``plan``:
    ``lost`` appends and loses the answer, ``refused`` appends nothing, ``ok`` appends."""

    def __init__(self, path: Path, plan: list[str]) -> None:
        super().__init__(path)
        self.plan = plan
        self.attempts = 0

    async def publish_batch(
        self, topic: str, items: Sequence[tuple[bytes, bytes, Headers]]
    ) -> None:
        step = self.plan.pop(0) if topic == INGEST_TOPIC and self.plan else "ok"
        self.attempts += topic == INGEST_TOPIC
        if step == "refused":
            raise BusUnavailable("the log refused the records")
        await super().publish_batch(topic, items)
        if step == "lost":
            raise PublishUnconfirmed("the answer of the log was lost")


@asynccontextmanager
async def _archive(tmp_path: Path, plan: list[str], **settings: object) -> AsyncIterator[Archive]:
    """An embedded archive whose STOW publishes through a ``_FaultyJournal`` on its journal."""
    async with embedded_archive(tmp_path / "data", **settings) as archive:
        journal = _FaultyJournal(_path(archive.container.settings.resolved_bus_url()), plan)
        await journal.start()
        archive.container.bus = journal
        try:
            yield archive
        finally:
            await journal.close()


async def _logged(archive: Archive) -> int:
    """Records the ``ingest`` topic holds (its partitions' ends)."""
    positions = await archive.container.bus.positions(INGEST_TOPIC, INGEST_GROUP)
    return sum(end for _, end in positions.values())


async def test_a_lost_answer_is_confirmed_by_sending_again(tmp_path: Path) -> None:
    """Twice appended, the answer lost: sent a third time and acknowledged; stored once."""
    async with _archive(tmp_path, ["lost", "lost"]) as archive:
        response = await archive.post_parts([CT.read_bytes()])
        assert response.status_code == 200, response.text
        journal = archive.container.bus
        assert isinstance(journal, _FaultyJournal) and journal.attempts == 3
        assert await _logged(archive) == 3  # the same record three times on the log
        study, series, sop = uids_of(CT)
        found = await archive.client.get(
            "/dicom-web/instances", params={"SOPInstanceUID": sop, "includefield": "all"}
        )
        assert len(found.json()) == 1
        assert (await archive.container.index.get_instance("default", sop)) is not None
        retrieved = await archive.client.get(
            f"/dicom-web/studies/{study}/series/{series}/instances/{sop}",
            headers={"Accept": 'multipart/related; type="application/dicom"'},
        )
        assert retrieved.status_code == 200


async def test_an_unconfirmed_publish_is_refused_after_the_window(tmp_path: Path) -> None:
    """Never confirmed within the window: 503 with Retry-After, saying it may be stored."""
    plan = ["lost"] * 50
    async with _archive(tmp_path, plan, stow_publish_confirm_seconds=1.2) as archive:
        response = await archive.post_parts([CT.read_bytes()])
        assert response.status_code == 503, response.text
        assert int(response.headers["retry-after"]) > 0
        assert "may still be stored" in response.text
        journal = archive.container.bus
        assert isinstance(journal, _FaultyJournal) and 2 <= journal.attempts < 50


async def test_a_refusal_before_anything_was_logged_is_503_at_once(tmp_path: Path) -> None:
    """The log refuses the records outright (nothing appended): 503, not sent again."""
    async with _archive(tmp_path, ["refused"]) as archive:
        response = await archive.post_parts([CT.read_bytes()])
        assert response.status_code == 503, response.text
        assert await _logged(archive) == 0
        journal = archive.container.bus
        assert isinstance(journal, _FaultyJournal) and journal.attempts == 1


async def test_a_batch_refused_after_an_earlier_one_fails_only_its_parts(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The first batch is logged, the second refused: 202, the first batch's part stored,
    the second's failed with Out of Resources (A700) and not on the log."""
    monkeypatch.setattr("pacsflow.stow.service._BATCH_BYTES", 1)  # a batch per part
    async with _archive(tmp_path, ["ok", "refused"]) as archive:
        response = await archive.post_parts([CT.read_bytes(), MR.read_bytes()])
        assert response.status_code == 202, response.text
        body = response.json()
        stored = [value(i, "00081155") for i in sequence(body, "00081199")]
        failed = {value(i, "00081155"): value(i, "00081197") for i in sequence(body, "00081198")}
        assert stored == [uids_of(CT)[2]]
        assert failed == {uids_of(MR)[2]: FailureReason.OUT_OF_RESOURCES}
        assert await _logged(archive) == 1
        index = archive.container.index
        assert await index.get_instance("default", uids_of(CT)[2]) is not None
        assert await index.get_instance("default", uids_of(MR)[2]) is None
