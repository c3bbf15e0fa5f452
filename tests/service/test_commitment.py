"""Storage Commitment (PS3.18 Chapter 13) in process, over the embedded adapters.

Request and Result Check, synchronous and asynchronous (an instance acknowledged with 202 and
still in the log), the Failure Reasons of PS3.3 C.14.1.1, the payload forms of Annex J, JSON and
XML, retention and the errors of 13.4.3 and 13.5.3.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import orjson
import pydicom
import pytest

from pacsflow.dicom.xml import dataset_to_xml, xml_to_dataset
from pacsflow.errors import RETRY_AFTER_SECONDS
from pacsflow.pipeline.keys import instance_keys
from tests.support.corpus import CORPUS
from tests.support.dicomweb import sequence, value
from tests.support.embedded_archive import Archive, embedded_archive
from tests.support.nonpatient import COLOR_PALETTE, store_palette

CT = CORPUS / "modality/CT_small.dcm"
MR = CORPUS / "modality/MR_siemens_csa_private.dcm"
JSON = "application/dicom+json"
WAIT = 60.0  # bound of the wait for the ingest processor; it answers long before


@pytest.fixture
async def archive(tmp_path: Path) -> AsyncIterator[Archive]:
    async with embedded_archive(tmp_path) as running:
        yield running


def transaction() -> str:
    return f"2.25.{uuid.uuid4().int}"


def by_sop(*pairs: tuple[str, str]) -> dict[str, Any]:
    """A Storage Commitment Request Module naming (SOP Class, SOP Instance) pairs."""
    items = [
        {"00081150": {"vr": "UI", "Value": [c]}, "00081155": {"vr": "UI", "Value": [i]}}
        for c, i in pairs
    ]
    return {"00081199": {"vr": "SQ", "Value": items}}


def reference(ds: pydicom.Dataset) -> tuple[str, str]:
    return str(ds.SOPClassUID), str(ds.SOPInstanceUID)


async def request(
    archive: Archive, uid: str, payload: dict[str, Any], **headers: str
) -> httpx.Response:
    return await archive.client.post(
        f"/dicom-web/commitment-requests/{uid}",
        content=orjson.dumps(payload),
        headers={"Content-Type": JSON, **headers},
    )


def committed(result: dict[str, Any]) -> list[str]:
    return [value(item, "00081155") for item in sequence(result, "00081199")]


def failed(result: dict[str, Any]) -> dict[str, int]:
    return {value(i, "00081155"): value(i, "00081197") for i in sequence(result, "00081198")}


async def test_known_instances_are_committed_at_once(archive: Archive) -> None:
    ct, mr = await archive.store(CT), await archive.store(MR)
    unknown = ("1.2.840.10008.5.1.4.1.1.2", f"2.25.{uuid.uuid4().int}")
    uid = transaction()

    answer = await request(archive, uid, by_sop(reference(ct), reference(mr), unknown))
    check = await archive.client.get(f"/dicom-web/commitment-requests/{uid}")

    assert answer.status_code == 200, answer.text
    assert answer.headers["content-type"] == JSON
    result = answer.json()
    assert committed(result) == [ct.SOPInstanceUID, mr.SOPInstanceUID]
    assert failed(result) == {unknown[1]: 0x0112}  # No such object instance
    assert [value(i, "00081150") for i in sequence(result, "00081199")] == [
        ct.SOPClassUID,
        mr.SOPClassUID,
    ]
    assert "00081195" not in result  # the Transaction UID is in the path, not the payload
    assert (check.status_code, check.json()) == (200, result)


async def test_a_transaction_uid_is_used_once(archive: Archive) -> None:
    ct = await archive.store(CT)
    uid = transaction()
    assert (await request(archive, uid, by_sop(reference(ct)))).status_code == 200

    again = await request(archive, uid, by_sop(reference(ct)))

    assert again.status_code == 409
    assert "already in use" in again.json()["message"]


async def test_a_wrong_sop_class_is_a_class_instance_conflict(archive: Archive) -> None:
    ct = await archive.store(CT)
    answer = await request(archive, transaction(), by_sop((MR_CLASS, ct.SOPInstanceUID)))

    assert failed(answer.json()) == {ct.SOPInstanceUID: 0x0119}
    assert committed(answer.json()) == []


MR_CLASS = "1.2.840.10008.5.1.4.1.1.4"


async def test_a_non_patient_instance_is_committed_too(archive: Archive) -> None:
    """A Color Palette stored at its NPI resource (PS3.18 12.5) is verified and committed."""
    stored = await store_palette(archive.client, "/dicom-web")
    assert stored.status_code == 200, stored.text
    palette = pydicom.dcmread(COLOR_PALETTE, stop_before_pixels=True)

    answer = await request(archive, transaction(), by_sop(reference(palette)))
    wrong_class = await request(archive, transaction(), by_sop((MR_CLASS, palette.SOPInstanceUID)))

    assert answer.status_code == 200, answer.text
    assert committed(answer.json()) == [palette.SOPInstanceUID]
    assert failed(wrong_class.json()) == {palette.SOPInstanceUID: 0x0119}


async def test_an_object_that_does_not_match_its_digest_is_not_committed(
    archive: Archive,
) -> None:
    ct, mr = await archive.store(CT), await archive.store(MR)
    site = archive.container.settings.site
    ct_key = instance_keys(site, ct.StudyInstanceUID, ct.SeriesInstanceUID, ct.SOPInstanceUID)
    mr_key = instance_keys(site, mr.StudyInstanceUID, mr.SeriesInstanceUID, mr.SOPInstanceUID)
    stored = await archive.objects.get(ct_key["dicom"])
    await archive.objects.put(ct_key["dicom"], stored[:-1] + bytes([stored[-1] ^ 1]))
    await archive.objects.delete(mr_key["dicom"])

    answer = await request(archive, transaction(), by_sop(reference(ct), reference(mr)))

    assert failed(answer.json()) == {ct.SOPInstanceUID: 0x0110, mr.SOPInstanceUID: 0x0110}


async def test_an_instance_still_in_the_pipeline_is_answered_later(archive: Archive) -> None:
    await archive.stop_processor()
    ct = await archive.store(CT, Prefer="respond-async")  # 202: in the log, not indexed
    uid = transaction()

    working = await request(archive, uid, by_sop(reference(ct)))
    still = await archive.client.get(f"/dicom-web/commitment-requests/{uid}")
    archive.start_processor()
    done = await _result(archive, uid)

    assert (working.status_code, working.content) == (202, b"")
    assert working.headers["retry-after"] == str(RETRY_AFTER_SECONDS)
    assert (still.status_code, still.content) == (202, b"")
    assert committed(done) == [ct.SOPInstanceUID]
    assert "00081198" not in done


async def test_an_unknown_instance_waits_for_the_pipeline_then_fails(archive: Archive) -> None:
    await archive.stop_processor()
    await archive.store(CT, Prefer="respond-async")  # something is still in the log
    unknown = ("1.2.840.10008.5.1.4.1.1.2", f"2.25.{uuid.uuid4().int}")
    uid = transaction()

    working = await request(archive, uid, by_sop(unknown))
    archive.start_processor()
    done = await _result(archive, uid)

    assert working.status_code == 202
    assert failed(done) == {unknown[1]: 0x0112}


async def test_a_request_that_the_pipeline_does_not_answer_in_time_fails(
    tmp_path: Path,
) -> None:
    async with embedded_archive(tmp_path, processor=False, commitment_timeout_seconds=0) as a:
        ct = await a.store(CT, Prefer="respond-async")

        answer = await request(a, transaction(), by_sop(reference(ct)))

    assert answer.status_code == 200
    assert failed(answer.json()) == {ct.SOPInstanceUID: 0x0110}


async def _result(archive: Archive, uid: str) -> dict[str, Any]:
    """Check the result until it is done (bounded)."""
    async with asyncio.timeout(WAIT):
        while True:
            check = await archive.client.get(f"/dicom-web/commitment-requests/{uid}")
            if check.status_code == 200:
                result: dict[str, Any] = check.json()
                return result
            assert check.status_code == 202, check.text
            await asyncio.sleep(0.1)


async def test_the_study_form_is_answered_in_the_study_form(archive: Archive) -> None:
    ct = await archive.store(CT)
    other_series = f"2.25.{uuid.uuid4().int}"
    payload = {
        "00081110": {
            "vr": "SQ",
            "Value": [
                {
                    "0020000D": {"vr": "UI", "Value": [ct.StudyInstanceUID]},
                    "00081115": {
                        "vr": "SQ",
                        "Value": [
                            _series(ct.SeriesInstanceUID, reference(ct)),
                            _series(other_series, (ct.SOPClassUID, f"2.25.{uuid.uuid4().int}")),
                        ],
                    },
                }
            ],
        }
    }

    result = (await request(archive, transaction(), payload)).json()

    [study] = sequence(result, "00081110")
    assert value(study, "0020000D") == ct.StudyInstanceUID
    [series] = sequence(study, "00081115")
    assert value(series, "0020000E") == ct.SeriesInstanceUID
    [by_class] = sequence(series, "00081112")
    assert value(by_class, "00081150") == ct.SOPClassUID
    assert [value(i, "00081155") for i in sequence(by_class, "0008114A")] == [ct.SOPInstanceUID]
    assert list(failed(result).values()) == [0x0112]
    assert "00081199" not in result


def _series(series_uid: str, pair: tuple[str, str]) -> dict[str, Any]:
    instance = {"00081155": {"vr": "UI", "Value": [pair[1]]}}
    group = {
        "00081150": {"vr": "UI", "Value": [pair[0]]},
        "0008114A": {"vr": "SQ", "Value": [instance]},
    }
    return {
        "0020000E": {"vr": "UI", "Value": [series_uid]},
        "00081112": {"vr": "SQ", "Value": [group]},
    }


async def test_xml_request_and_xml_result(archive: Archive) -> None:
    ct = await archive.store(CT)
    uid = transaction()
    answer = await archive.client.post(
        f"/dicom-web/commitment-requests/{uid}",
        content=dataset_to_xml(by_sop(reference(ct))),
        headers={"Content-Type": "application/dicom+xml", "Accept": "application/dicom+xml"},
    )
    check = await archive.client.get(
        f"/dicom-web/commitment-requests/{uid}", headers={"Accept": "application/dicom+xml"}
    )

    assert answer.headers["content-type"] == "application/dicom+xml"
    assert committed(xml_to_dataset(answer.content)) == [ct.SOPInstanceUID]
    assert check.content == answer.content


@pytest.mark.parametrize(
    ("content", "content_type", "status", "words"),
    [
        (b"{}", "application/dicom+json", 400, "neither"),
        (orjson.dumps({**by_sop(("1.2", "1.3")), "00081110": {"vr": "SQ"}}), JSON, 400, "both"),
        (orjson.dumps(by_sop(("1.2", "1.x3"))), JSON, 400, "ReferencedSOPInstanceUID"),
        (orjson.dumps({"00081199": {"vr": "SQ", "Value": []}}), JSON, 400, "no SOP Instance"),
        (b"{", JSON, 400, "JSON"),
        (orjson.dumps(by_sop(("1.2", "1.3"))), "text/plain", 415, "application/dicom+json"),
    ],
)
async def test_bad_requests_are_refused_with_a_reason(
    archive: Archive, content: bytes, content_type: str, status: int, words: str
) -> None:
    uid = transaction()
    answer = await archive.client.post(
        f"/dicom-web/commitment-requests/{uid}",
        content=content,
        headers={"Content-Type": content_type},
    )

    assert answer.status_code == status, answer.text
    assert words in answer.json()["message"]
    assert (await archive.client.get(f"/dicom-web/commitment-requests/{uid}")).status_code == 404


async def test_errors_of_the_resource(archive: Archive) -> None:
    payload = by_sop(("1.2", "1.3"))
    bad_uid = await request(archive, "not-a-uid", payload)
    unacceptable = await request(archive, transaction(), payload, Accept="image/png")
    unknown = await archive.client.get(f"/dicom-web/commitment-requests/{transaction()}")

    assert bad_uid.status_code == 400
    assert unacceptable.status_code == 406
    assert unknown.status_code == 404


async def test_results_are_kept_for_the_retention_then_gone(tmp_path: Path) -> None:
    async with embedded_archive(tmp_path, commitment_retention_seconds=0) as archive:
        ct = await archive.store(CT)
        first = transaction()
        await request(archive, first, by_sop(reference(ct)))

        expired = await archive.client.get(f"/dicom-web/commitment-requests/{first}")
        await request(archive, transaction(), by_sop(reference(ct)))  # purges the old results
        purged = await archive.client.get(f"/dicom-web/commitment-requests/{first}")

    assert expired.status_code == 410
    assert purged.status_code == 404


async def test_results_survive_a_restart(tmp_path: Path) -> None:
    async with embedded_archive(tmp_path) as archive:
        ct = await archive.store(CT)
        uid = transaction()
        before = await request(archive, uid, by_sop(reference(ct)))

    async with embedded_archive(tmp_path) as restarted:
        after = await restarted.client.get(f"/dicom-web/commitment-requests/{uid}")

    assert (after.status_code, after.json()) == (200, before.json())
