"""STOW-RS request handling in process (PS3.18 10.5): media types, parts, study targets, limits,
status codes and the Store Instances Response."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from pacsflow.dicom.status import FailureReason
from tests.support.archive import Archive, running_archive
from tests.support.corpus import CORPUS, uids_of
from tests.support.dicomweb import multipart, sequence, value

pytestmark = pytest.mark.asyncio(loop_scope="module")

CT = CORPUS / "modality" / "CT_small.dcm"
MR = CORPUS / "transfer-syntax" / "explicit_le_MR_small.dcm"
SR = CORPUS / "objects" / "SR_comprehensive_nested.dcm"


@pytest.mark.parametrize(
    "content_type",
    [
        'multipart/related; type="application/dicom"; boundary={b}',
        "multipart/related; type=application/dicom; boundary={b}",
        'multipart/related; boundary="{b}"; type="application/dicom"',
        "Multipart/Related; Type=application/dicom; Boundary={b}",
        "multipart/related; boundary={b}",
    ],
)
async def test_content_type_parameters_quoted_or_not(archive: Archive, content_type: str) -> None:
    body, boundary = multipart([CT.read_bytes()], boundary="b0und4ry-with.dots_and-=")
    header = content_type.format(b=boundary)
    response = await archive.client.post("/studies", content=body, headers={"Content-Type": header})
    assert response.status_code == 200, response.text
    assert len(sequence(response.json(), "00081199")) == 1


async def test_many_parts_in_one_request(archive: Archive) -> None:
    files = [CT, MR, SR, CORPUS / "transfer-syntax" / "rle_MR_small.dcm"]
    response = await archive.stow_files(*files)
    assert response.status_code in (200, 202)
    referenced = sequence(response.json(), "00081199")
    assert {value(i, "00081155") for i in referenced} == {uids_of(p)[2] for p in files}
    assert response.json()["00081190"] == {"vr": "UR"}  # several studies: no single study URL


async def test_some_parts_fail_gives_202_with_both_sequences(archive: Archive) -> None:
    bad = CORPUS / "malformed" / "truncated_pixel_data_MR.dcm"
    response = await archive.stow([CT.read_bytes(), b"not dicom at all", bad.read_bytes()])
    assert response.status_code == 202
    body = response.json()
    assert [value(i, "00081155") for i in sequence(body, "00081199")] == [uids_of(CT)[2]]
    reasons = [value(i, "00081197") for i in sequence(body, "00081198")]
    assert reasons == [FailureReason.CANNOT_UNDERSTAND, FailureReason.CANNOT_UNDERSTAND]
    assert "part 2" in response.headers["warning"] and "part 3" in response.headers["warning"]
    study = value(body, "00081190")
    assert study.endswith(f"/studies/{uids_of(CT)[0]}")


async def test_study_targeted_request_refuses_other_studies(archive: Archive) -> None:
    study, _, _ = uids_of(CT)
    response = await archive.stow([CT.read_bytes(), MR.read_bytes()], study=study)
    assert response.status_code == 202
    failed = sequence(response.json(), "00081198")
    assert [value(i, "00081155") for i in failed] == [uids_of(MR)[2]]
    assert value(failed[0], "00081197") == FailureReason.STUDY_INSTANCE_UID_MISMATCH
    assert value(response.json(), "00081190").endswith(f"/studies/{study}")
    only_other = await archive.stow([MR.read_bytes()], study=study)
    assert only_other.status_code == 409


async def test_invalid_study_uid_in_path_is_400(archive: Archive) -> None:
    response = await archive.stow([CT.read_bytes()], study="not-a-uid")
    assert response.status_code == 400


@pytest.mark.parametrize(
    "content_type",
    [
        "application/dicom",
        "text/plain",
        'multipart/related; type="application/octet-stream"; boundary=x',  # not a STOW type
        "multipart/form-data; boundary=x",
        "",
    ],
)
async def test_other_media_types_get_415(archive: Archive, content_type: str) -> None:
    response = await archive.client.post(
        "/studies",
        content=CT.read_bytes(),
        headers={"Content-Type": content_type} if content_type else {},
    )
    assert response.status_code == 415
    assert "message" in response.json()


async def test_missing_boundary_or_empty_body_is_400(archive: Archive) -> None:
    no_boundary = await archive.client.post(
        "/studies",
        content=b"x",
        headers={"Content-Type": 'multipart/related; type="application/dicom"'},
    )
    assert no_boundary.status_code == 400
    empty = await archive.client.post(
        "/studies",
        content=b"",
        headers={"Content-Type": 'multipart/related; type="application/dicom"; boundary=x'},
    )
    assert empty.status_code == 400


async def test_body_cut_inside_a_part_is_a_bad_request(archive: Archive) -> None:
    """A body that ends inside a part is a malformed request (400), not a failed instance."""
    body, boundary = multipart([MR.read_bytes(), CT.read_bytes()])
    cut = body[: len(body) - 2000]
    response = await archive.client.post(
        "/studies",
        content=cut,
        headers={"Content-Type": f"multipart/related; type=application/dicom; boundary={boundary}"},
    )
    assert response.status_code == 400
    assert "ended inside part 2" in response.json()["message"]
    assert "nothing of it was stored" in response.json()["message"]


async def test_part_with_another_media_type_is_refused(archive: Archive) -> None:
    boundary = "bnd"
    body = (
        f"--{boundary}\r\nContent-Type: image/jpeg\r\n\r\n".encode()
        + b"\xff\xd8\xff\xd9"
        + f"\r\n--{boundary}--\r\n".encode()
    )
    response = await archive.client.post(
        "/studies",
        content=body,
        headers={"Content-Type": f"multipart/related; type=application/dicom; boundary={boundary}"},
    )
    assert response.status_code == 409


async def test_identical_resend_is_idempotent(archive: Archive) -> None:
    first = await archive.stow_files(SR)
    again = await archive.stow_files(SR, SR)
    assert first.status_code == 200 and again.status_code == 200
    study, series, sop = uids_of(SR)
    studies = (await archive.client.get("/studies")).json()
    match = [s for s in studies if s["0020000D"]["Value"] == [study]]
    assert match[0]["00201208"]["Value"] == [1]
    assert await archive.retrieve(study, series, sop) == SR.read_bytes()


async def test_request_above_the_limit_gets_413(tmp_path: Path) -> None:
    async with running_archive(tmp_path / "data", max_request_bytes=20000) as archive:
        small = await archive.stow_files(SR)
        assert small.status_code == 200
        big = await archive.stow_files(CT)
        assert big.status_code == 413
        body, boundary = multipart([CT.read_bytes()])

        async def chunks() -> AsyncIterator[bytes]:  # no Content-Length: the limit applies
            for i in range(0, len(body), 4096):  # while streaming
                yield body[i : i + 4096]

        streamed = await archive.client.post(
            "/studies",
            content=chunks(),
            headers={"Content-Type": f"multipart/related; boundary={boundary}"},
        )
        assert streamed.status_code == 413
        assert "content-length" not in streamed.request.headers
        stored = [p for p in (tmp_path / "data" / "objects").rglob("*.dcm")]
        assert [p.name for p in stored] == [f"{uids_of(SR)[2]}.dcm"]  # the SR; nothing staged


async def test_reject_duplicate_policy(tmp_path: Path) -> None:
    async with running_archive(tmp_path / "data", duplicate_policy="reject") as archive:
        first = CORPUS / "transfer-syntax" / "explicit_le_MR_small.dcm"
        other = CORPUS / "transfer-syntax" / "implicit_le_MR_small.dcm"  # same SOP Instance UID
        assert (await archive.stow_files(first)).status_code == 200
        response = await archive.stow_files(other)
        assert response.status_code == 409
        failed = sequence(response.json(), "00081198")
        assert value(failed[0], "00081197") == FailureReason.DUPLICATE_SOP_INSTANCE
        assert await archive.retrieve(*uids_of(first)) == first.read_bytes()


async def test_durable_consistency_answers_before_indexing(archive: Archive) -> None:
    path = CORPUS / "objects" / "RTPLAN_small.dcm"
    response = await archive.stow([path.read_bytes()], Prefer="respond-async")
    assert response.status_code == 202
    assert response.headers["preference-applied"] == "respond-async"
    item = sequence(response.json(), "00081199")[0]
    assert value(item, "00081155") == uids_of(path)[2]
    deadline = time.monotonic() + 60  # bounded wait for the processor, not a timing assertion
    while time.monotonic() < deadline:
        studies = (await archive.client.get("/studies")).json()
        if any(s["0020000D"]["Value"] == [uids_of(path)[0]] for s in studies):
            break
        await asyncio.sleep(0.1)
    assert await archive.retrieve(*uids_of(path)) == path.read_bytes()


async def test_search_after_stow_finds_the_study(archive: Archive) -> None:
    path = CORPUS / "objects" / "ECG_12lead_waveform.dcm"
    assert (await archive.stow_files(path)).status_code == 200
    studies = (await archive.client.get("/studies", params={"limit": 1000})).json()
    assert any(s["0020000D"]["Value"] == [uids_of(path)[0]] for s in studies)


async def test_unknown_instance_is_404(archive: Archive) -> None:
    response = await archive.client.get("/studies/1.2/series/1.3/instances/1.4")
    assert response.status_code == 404


async def test_staged_parts_and_headers_beyond_the_prefix_limit(tmp_path: Path) -> None:
    """Every part staged (claim check) and headers read from the staged object, not memory."""
    limits = {"inline_max_bytes": 0, "header_prefix_max_bytes": 1024}
    async with running_archive(tmp_path / "data", **limits) as archive:
        files = [CT, MR, CORPUS / "modality" / "MR_siemens_csa_private.dcm"]
        response = await archive.stow([p.read_bytes() for p in files] + [b"\x00" * 5000])
        assert response.status_code == 202
        assert len(sequence(response.json(), "00081199")) == 3
        assert len(sequence(response.json(), "00081198")) == 1
        for path in files:
            assert await archive.retrieve(*uids_of(path)) == path.read_bytes()
        assert not list((tmp_path / "data" / "objects").rglob("staging/*"))


async def test_processing_that_outlasts_the_wait_gives_202(tmp_path: Path) -> None:
    """With no processor running, STOW stops waiting at its timeout and says so (202)."""
    async with running_archive(
        tmp_path / "data", processors=False, stow_timeout_seconds=1
    ) as archive:
        response = await archive.stow_files(SR)
        assert response.status_code == 202
        referenced = sequence(response.json(), "00081199")
        assert [value(i, "00081155") for i in referenced] == [uids_of(SR)[2]]
        assert "still being processed" in response.headers["warning"]
