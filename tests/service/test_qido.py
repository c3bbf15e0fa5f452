"""QIDO-RS request handling in process (PS3.18 10.6): media types, paging headers, parameter
errors and status codes, over the real corpus stored through STOW-RS."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest
import pytest_asyncio

from pacsflow.dicom.xml import xml_to_dataset
from tests.support.archive import Archive, running_archive
from tests.support.corpus import CORPUS, corpus_files
from tests.support.dicomweb import parts, sequence

pytestmark = pytest.mark.asyncio(loop_scope="module")

FOLDERS = ("charset", "modality", "multiframe", "objects")


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def studies(archive: Archive) -> AsyncIterator[int]:
    """Every file of a few corpus folders stored; the number of studies the archive holds."""
    for path in corpus_files():
        if path.relative_to(CORPUS).parts[0] in FOLDERS:
            await archive.stow_files(path)
    found = (await archive.client.get("/studies", params={"limit": 1000})).json()
    assert len(found) >= 20
    yield len(found)


async def test_total_count_gives_every_match_beside_the_page(
    archive: Archive, studies: int
) -> None:
    """X-Total-Count: every match, whatever the page (PS3.18 8.3.4.4); no Warning when the
    client's own limit cut the page."""
    response = await archive.client.get("/studies", params={"limit": 3})
    assert len(response.json()) == 3
    assert response.headers["X-Total-Count"] == str(studies)
    assert "Warning" not in response.headers  # the client asked for 3


async def test_xml_results_are_the_json_results(archive: Archive, studies: int) -> None:
    """multipart/related; type="application/dicom+xml": one PS3.19 part per result."""
    accept = 'multipart/related; type="application/dicom+xml"'
    params = {"limit": "5", "includefield": "all"}
    xml = await archive.client.get("/studies", params=params, headers={"Accept": accept})
    assert xml.status_code == 200
    assert xml.headers["content-type"].startswith('multipart/related; type="application/dicom+xml"')
    found = parts(xml)
    assert len(found) == 5
    assert all(content_type.startswith("application/dicom+xml") for content_type, _ in found)
    js = (await archive.client.get("/studies", params=params)).json()
    assert [xml_to_dataset(payload) for _, payload in found] == js


async def test_no_match_is_200_with_no_results(archive: Archive, studies: int) -> None:
    """CP-2473: a search without matches succeeds with an empty result."""
    response = await archive.client.get("/studies", params={"PatientID": "no-such-patient"})
    assert (response.status_code, response.json()) == (200, [])
    assert response.headers["X-Total-Count"] == "0"


@pytest.mark.parametrize(
    ("params", "named"),
    [
        ({"NoSuchKeyword": "1"}, "NoSuchKeyword"),
        ({"StudyDate": "2020-13-01"}, "StudyDate"),
        ({"StudyDate": "2020*"}, "StudyDate"),
        ({"StudyInstanceUID": "1.2.abc"}, "StudyInstanceUID"),
        ({"Modality": "CT"}, "Modality"),
        ({"limit": "-1"}, "limit"),
        ({"offset": "x"}, "offset"),
        ({"fuzzymatching": "maybe"}, "fuzzymatching"),
        ({"includefield": "NotAnAttribute"}, "NotAnAttribute"),
        ({"PatientName.FamilyName": "x"}, "PatientName.FamilyName"),
    ],
)
async def test_bad_parameters_are_400_naming_them(
    archive: Archive, params: dict[str, str], named: str
) -> None:
    """Unknown or malformed parameters: 400 with a message that names the parameter."""
    response = await archive.client.get("/studies", params=params)
    assert response.status_code == 400
    assert named in response.json()["message"]


async def test_unacceptable_media_type_is_406(archive: Archive) -> None:
    """Only DICOM JSON, JSON and multipart DICOM XML are offered."""
    response = await archive.client.get("/studies", headers={"Accept": "text/html"})
    assert response.status_code == 406


async def test_server_maximum_cuts_the_page_with_warning_299(tmp_path: Path) -> None:
    """A page cut by PACSFLOW_QIDO_MAX_RESULTS says so (PS3.18 8.3.4.4)."""
    async with running_archive(tmp_path / "data", qido_max_results=2) as archive:
        for path in sorted((CORPUS / "charset").glob("*.dcm"))[:4]:
            response = await archive.stow_files(path)
            assert response.status_code in (200, 202)
            assert sequence(response.json(), "00081199")
        response = await archive.client.get("/studies")
        total = int(response.headers["X-Total-Count"])
        assert total >= 3 and len(response.json()) == 2
        assert response.headers["Warning"].startswith("299 ")
        last = await archive.client.get("/studies", params={"offset": str(total - 1)})
        assert len(last.json()) == 1 and "Warning" not in last.headers
        asked = await archive.client.get("/studies", params={"limit": "50"})
        assert len(asked.json()) == 2 and asked.headers["Warning"].startswith("299 ")
