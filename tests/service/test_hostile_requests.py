"""Requests an attacker sends (issue 23, point 9), each answered with a clear 4xx.

Each case was a 500, a 503 blaming the index, or a connection closed without an answer before;
the siblings found while fixing them are here too (an invalid UID in the XML response, a UID
list or a query too large for the index, a Warning value with a line break).
"""

from __future__ import annotations

import io
import re

import httpx
import pydicom
import pytest
import pytest_asyncio

from pacsflow.media.multipart_in import MAX_BOUNDARY_LENGTH
from pacsflow.query.parse import MAX_LIST_VALUES, MAX_OFFSET, MAX_PREDICATES
from pacsflow.render import MAX_ANIMATION_FRAMES
from tests.support.archive import Archive
from tests.support.corpus import CORPUS
from tests.support.dicomweb import multipart, sequence, value

pytestmark = pytest.mark.asyncio(loop_scope="module")

CT = CORPUS / "modality" / "CT_small.dcm"
MULTIFRAME = CORPUS / "multiframe" / "enhanced_MR_10frame.dcm"
SEARCHES = [
    "/studies",
    "/series",
    "/instances",
    "/studies/{study}/series",
    "/studies/{study}/instances",
    "/studies/{study}/series/{series}/instances",
]
# What uvicorn refuses in a header value (it then closes the connection without a response).
ILLEGAL_HEADER_VALUE = re.compile(r"[\x00-\x08\x0a-\x1f\x7f]")


def _paths(path: str, ds: pydicom.Dataset) -> str:
    return path.format(study=ds.StudyInstanceUID, series=ds.SeriesInstanceUID)


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def stored(archive: Archive) -> pydicom.Dataset:
    """CT_small and a multi-frame MR, stored."""
    response = await archive.stow_files(CT, MULTIFRAME)
    assert response.status_code == 200, response.text
    return pydicom.dcmread(CT, stop_before_pixels=True)


def _assert_client_error(response: httpx.Response, status: int | None = None) -> None:
    code = response.status_code
    assert 400 <= code < 500, (code, response.text[:300])
    assert status is None or code == status, (code, response.text[:300])
    assert "retry-after" not in response.headers


async def _stow_with_boundary(archive: Archive, length: int) -> httpx.Response:
    body, boundary = multipart([CT.read_bytes()], boundary="b" * length)
    content_type = f'multipart/related; type="application/dicom"; boundary={boundary}'
    return await archive.client.post(
        "/studies", content=body, headers={"Content-Type": content_type}
    )


@pytest.mark.parametrize("length", [MAX_BOUNDARY_LENGTH + 1, 257, 300, 5000])
async def test_a_boundary_longer_than_rfc_2046_allows_is_400(archive: Archive, length: int) -> None:
    response = await _stow_with_boundary(archive, length)
    _assert_client_error(response, 400)
    assert "RFC 2046" in response.json()["message"]


async def test_a_boundary_of_70_characters_is_taken(archive: Archive) -> None:
    response = await _stow_with_boundary(archive, MAX_BOUNDARY_LENGTH)
    assert response.status_code == 200, response.text


@pytest.mark.parametrize("path", SEARCHES)
@pytest.mark.parametrize("offset", ["9223372036854775808", str(MAX_OFFSET + 1), "1" + "0" * 5000])
async def test_an_offset_beyond_the_index_is_400_on_every_search(
    archive: Archive, stored: pydicom.Dataset, path: str, offset: str
) -> None:
    response = await archive.client.get(_paths(path, stored), params={"offset": offset})
    _assert_client_error(response, 400)
    assert "offset" in response.json()["message"]


@pytest.mark.parametrize("accept", [";", ";;;;", ",;,", " ; , ;", "q=1", "*/*;q=nan"])
async def test_an_accept_without_a_media_range_is_never_a_5xx(
    archive: Archive, stored: pydicom.Dataset, accept: str
) -> None:
    study, series, sop = stored.StudyInstanceUID, stored.SeriesInstanceUID, stored.SOPInstanceUID
    instance = f"/studies/{study}/series/{series}/instances/{sop}"
    paths = [
        f"/studies?StudyInstanceUID={study}",
        f"/studies/{study}",
        instance,
        f"{instance}/metadata",
        f"/studies/{study}/metadata",
        f"{instance}/frames/1",
        f"{instance}/rendered",
        f"{instance}/thumbnail",
        f"/studies/{study}/thumbnail",
        f"{instance}/bulkdata/7fe00010",
    ]
    for path in paths:
        response = await archive.client.get(path, headers={"Accept": accept})
        assert response.status_code < 500, (path, response.status_code, response.text[:200])
        if response.status_code >= 400:
            _assert_client_error(response, 406)


@pytest.mark.parametrize(
    "parameters",
    [
        {"PatientName": "*" + "a" * 50_000 + "*"},
        {"PatientName": " ".join(["a"] * (MAX_PREDICATES + 1)), "fuzzymatching": "true"},
        {"PatientName": " ".join(["ab"] * 600), "fuzzymatching": "true"},
        {"PatientName": "\\".join(["DOE*"] * (MAX_PREDICATES + 1))},
        {"PatientID": "*a" * 20},
        {"StudyInstanceUID": ",".join(f"1.2.{i}" for i in range(MAX_LIST_VALUES + 1))},
        {"StudyDescription": "x" * 2000},
    ],
    ids=["long-wildcard", "fuzzy-words", "fuzzy-long", "many-values", "stars", "uids", "long"],
)
async def test_a_query_too_large_for_the_index_is_the_clients_error(
    archive: Archive, stored: pydicom.Dataset, parameters: dict[str, str]
) -> None:
    for path in SEARCHES:
        response = await archive.client.get(_paths(path, stored), params=parameters)
        _assert_client_error(response, 400)
        assert "SQLite" not in response.text


async def test_a_query_at_the_limits_is_answered(archive: Archive, stored: pydicom.Dataset) -> None:
    names = " ".join(["a"] * MAX_PREDICATES)
    parameters = {"PatientName": names, "fuzzymatching": "true"}
    assert (await archive.client.get("/studies", params=parameters)).status_code == 200
    uids = ",".join(
        [str(stored.StudyInstanceUID)] + [f"1.2.{i}" for i in range(MAX_LIST_VALUES - 1)]
    )
    found = await archive.client.get("/studies", params={"StudyInstanceUID": uids})
    assert found.status_code == 200, found.text[:300]
    assert [value(s, "0020000D") for s in found.json()] == [str(stored.StudyInstanceUID)]


def _with_sop_uid(uid: str) -> bytes:
    ds = pydicom.dcmread(CT)
    ds.SOPInstanceUID = ds.file_meta.MediaStorageSOPInstanceUID = uid
    out = io.BytesIO()
    ds.save_as(out, enforce_file_format=False)
    return out.getvalue()


@pytest.mark.parametrize("uid", ["1.2\x003.4", "1.2.3\r\nX-Injected: 1", "1.2\n3.4", "1.2.\x7f3"])
@pytest.mark.parametrize("accept", ["application/dicom+json", "application/dicom+xml"])
async def test_a_control_character_in_a_uid_fails_its_part_with_a_legal_response(
    archive: Archive, uid: str, accept: str
) -> None:
    """The response names what was kept: the valid part stored, the other one failed."""
    valid = _with_sop_uid(pydicom.uid.generate_uid())
    response = await archive.stow([_with_sop_uid(uid), valid], Accept=accept)
    assert response.status_code == 202, response.text
    for name, header in response.headers.multi_items():
        assert not ILLEGAL_HEADER_VALUE.search(header), (name, header)
    assert "X-Injected" not in response.headers
    assert "failure A900" in response.headers["warning"]
    if accept == "application/dicom+json":
        body = response.json()
        assert [value(i, "00081197") for i in sequence(body, "00081198")] == [0xA900]
        stored_uid = value(sequence(body, "00081199")[0], "00081155")
        assert stored_uid == pydicom.dcmread(io.BytesIO(valid)).SOPInstanceUID
        assert not ILLEGAL_HEADER_VALUE.search(response.text.replace("\\n", ""))


async def test_an_animation_of_too_many_frames_is_406_before_any_is_rendered(
    archive: Archive, stored: pydicom.Dataset
) -> None:
    mr = pydicom.dcmread(MULTIFRAME, stop_before_pixels=True)
    study, series = mr.StudyInstanceUID, mr.SeriesInstanceUID
    instance = f"/studies/{study}/series/{series}/instances/{mr.SOPInstanceUID}"
    frames = ",".join(["1"] * (MAX_ANIMATION_FRAMES + 1))
    response = await archive.client.get(
        f"{instance}/frames/{frames}/rendered", headers={"Accept": "image/gif"}
    )
    _assert_client_error(response, 406)
    assert "fewer frames" in response.json()["message"]
    every = await archive.client.get(f"{instance}/rendered", headers={"Accept": "image/gif"})
    assert every.status_code == 200 and every.content.startswith(b"GIF89a")


async def test_a_rendered_study_is_one_part_per_instance(
    archive: Archive, stored: pydicom.Dataset
) -> None:
    """The parts are rendered and sent one after the other (a study is never whole in memory)."""
    study = stored.StudyInstanceUID
    instances = await archive.client.get(f"/studies/{study}/instances")
    assert instances.status_code == 200
    response = await archive.client.get(
        f"/studies/{study}/rendered", headers={"Accept": "image/png"}
    )
    assert response.status_code == 200
    boundary = response.headers["content-type"].split("boundary=")[1].split(";")[0].strip('"')
    parts = response.content.split(f"--{boundary}".encode())[1:-1]
    assert len(parts) == len(instances.json()) >= 1
    assert all(b"\r\n\r\n\x89PNG" in part for part in parts)
    assert response.content.endswith(f"--{boundary}--\r\n".encode())
