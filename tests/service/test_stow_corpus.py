"""STOW-RS of every corpus file in process (PS3.18 10.5): each file's own bytes (no client
re-encoding) are stored and read back unchanged, each malformed file is refused (409) with a
Failure Reason and a Warning, and a file that is no patient's instance is refused."""

from __future__ import annotations

from pathlib import Path

import pytest

from pacsflow.dicom.status import FailureReason
from tests.support.archive import Archive
from tests.support.corpus import CORPUS, belongs_to_a_study, corpus_files, read_header
from tests.support.dicomweb import sequence, served_as_sent, value

pytestmark = pytest.mark.asyncio(loop_scope="module")


@pytest.mark.parametrize("path", corpus_files(), ids=lambda p: str(p.relative_to(CORPUS)))
async def test_raw_file_reads_back_byte_identical(archive: Archive, path: Path) -> None:
    """The file's own bytes (no re-encoding by a client) come back unchanged, with the PS3.10
    head added when the file was sent without one."""
    ds = read_header(path)
    data = path.read_bytes()
    response = await archive.stow([data])
    if not belongs_to_a_study(ds):
        assert response.status_code == 409
        return
    assert response.status_code in (200, 202), response.text
    referenced = sequence(response.json(), "00081199")
    assert len(referenced) == 1
    uids = (str(ds.StudyInstanceUID), str(ds.SeriesInstanceUID), str(ds.SOPInstanceUID))
    assert served_as_sent(data, await archive.retrieve(*uids))


@pytest.mark.parametrize(
    "path", corpus_files(malformed=True), ids=lambda p: str(p.relative_to(CORPUS))
)
async def test_malformed_file_is_refused(archive: Archive, path: Path) -> None:
    """Every malformed file is refused with a FailureReason and explained in Warning."""
    response = await archive.stow([path.read_bytes()])
    assert response.status_code == 409, response.text
    assert response.headers["content-type"] == "application/dicom+json"
    failed = sequence(response.json(), "00081198")
    assert len(failed) == 1
    assert value(failed[0], "00081197") in {int(r) for r in FailureReason}
    assert "00081199" not in response.json()
    assert "failure" in response.headers["warning"]
