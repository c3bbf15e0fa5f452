"""The Non-Patient Instance Service (PS3.18 Chapter 12) in process, on the embedded pipeline.

Real objects: the corpus's Color Palette (Hot Iron) and Hanging Protocols built with pydicom.
Store at the category's resources (12.5), Search (12.6) with the model's keys, Retrieve (12.4)
as stored; kept apart from patient studies: a Studies search finds none, a Studies store refuses
them (0122), a category refuses another's instances, and a palette is not a hanging protocol.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pydicom
import pytest

from pacsflow.cli import main
from tests.support.archive import running_archive
from tests.support.corpus import CORPUS
from tests.support.dicomweb import multipart, sequence, single_part, value
from tests.support.embedded_archive import STOW_TYPE, Archive, embedded_archive
from tests.support.nonpatient import COLOR_PALETTE, hanging_protocol, store_palette

ROOT = "/dicom-web"
CT = CORPUS / "modality" / "CT_small.dcm"


@pytest.fixture
async def archive(tmp_path: Path) -> AsyncIterator[Archive]:
    async with embedded_archive(tmp_path) as running:
        yield running


async def store(archive: Archive, target: str, parts: list[bytes]) -> httpx.Response:
    body, boundary = multipart(parts)
    headers = {"Content-Type": STOW_TYPE.format(boundary), "Accept": "application/dicom+json"}
    return await archive.client.post(f"{ROOT}/{target}", content=body, headers=headers)


async def test_a_palette_and_hanging_protocols_are_stored_searched_and_retrieved(
    archive: Archive,
) -> None:
    palette = COLOR_PALETTE.read_bytes()
    palette_uid = pydicom.dcmread(COLOR_PALETTE).SOPInstanceUID
    stored = await store(archive, "color-palettes", [palette])
    assert stored.status_code == 200, stored.text
    (item,) = sequence(stored.json(), "00081199")
    assert value(item, "00081190") == f"http://pacsflow{ROOT}/color-palettes/{palette_uid}"

    ct_protocol, mr_protocol = hanging_protocol("CT chest"), hanging_protocol("MR brain", "MR")
    answer = await store(archive, "hanging-protocols", [ct_protocol, mr_protocol])
    assert answer.status_code == 200, answer.text

    found = await archive.client.get(f"{ROOT}/color-palettes")
    assert found.status_code == 200 and found.headers["X-Total-Count"] == "1"
    (result,) = found.json()
    assert value(result, "00080018") == palette_uid
    assert value(result, "00700080") == "HOT_IRON"  # Content Label, a return key of the model
    assert value(result, "00081190").endswith(f"/color-palettes/{palette_uid}")

    by_name = await archive.client.get(f"{ROOT}/hanging-protocols?HangingProtocolName=MR*")
    assert [value(r, "00720002") for r in by_name.json()] == ["MR brain"]
    by_modality = await archive.client.get(
        f"{ROOT}/hanging-protocols", params={"HangingProtocolDefinitionSequence.Modality": "CT"}
    )
    assert [value(r, "00720002") for r in by_modality.json()] == ["CT chest"]
    both = await archive.client.get(f"{ROOT}/hanging-protocols", params={"limit": "10"})
    assert both.headers["X-Total-Count"] == "2"
    dated = await archive.client.get(
        f"{ROOT}/color-palettes", params={"InstanceCreationDate": "20120101-20121231"}
    )
    assert [value(r, "00080018") for r in dated.json()] == [palette_uid]
    undated = await archive.client.get(
        f"{ROOT}/color-palettes", params={"InstanceCreationDate": "20130101-"}
    )
    assert undated.json() == []

    retrieved = await archive.client.get(
        f"{ROOT}/color-palettes/{palette_uid}", headers={"Accept": "application/dicom"}
    )
    assert retrieved.status_code == 200
    assert retrieved.headers["content-type"].startswith("application/dicom")
    assert retrieved.content == palette
    mr_uid = pydicom.dcmread(pydicom.filebase.DicomBytesIO(mr_protocol)).SOPInstanceUID
    multipart_answer = await archive.client.get(f"{ROOT}/hanging-protocols/{mr_uid}")
    assert single_part(multipart_answer) == mr_protocol


async def test_non_patient_instances_are_kept_apart_from_studies(archive: Archive) -> None:
    palette_uid = pydicom.dcmread(COLOR_PALETTE).SOPInstanceUID
    assert (await store(archive, "color-palettes", [COLOR_PALETTE.read_bytes()])).is_success
    assert (await archive.post_parts([CT.read_bytes()])).status_code == 200

    for search in ("studies", "series", f"instances?SOPInstanceUID={palette_uid}"):
        answer = await archive.client.get(f"{ROOT}/{search}")
        assert palette_uid not in answer.text, search
    studies = await archive.client.get(f"{ROOT}/studies")
    assert studies.headers["X-Total-Count"] == "1"  # the CT only
    # nor is a patient instance found among the non-patient ones
    assert (await archive.client.get(f"{ROOT}/color-palettes")).headers["X-Total-Count"] == "1"
    ct_uid = pydicom.dcmread(CT).SOPInstanceUID
    assert (await archive.client.get(f"{ROOT}/color-palettes/{ct_uid}")).status_code == 404

    refused = await archive.post_parts([COLOR_PALETTE.read_bytes()])  # at /studies
    assert refused.status_code == 409
    (failed,) = sequence(refused.json(), "00081198")
    assert value(failed, "00081197") == 0x0122


async def test_a_category_refuses_the_instances_of_another(archive: Archive) -> None:
    palette_uid = pydicom.dcmread(COLOR_PALETTE).SOPInstanceUID
    wrong = await store(archive, "hanging-protocols", [COLOR_PALETTE.read_bytes()])
    assert wrong.status_code == 409
    (failed,) = sequence(wrong.json(), "00081198")
    assert value(failed, "00081197") == 0x0122
    assert "/color-palettes" in wrong.headers["Warning"]
    patient = await store(archive, "color-palettes", [CT.read_bytes()])
    assert patient.status_code == 409 and "/studies" in patient.headers["Warning"]
    mismatch = await store(archive, "color-palettes/1.2.3.4", [COLOR_PALETTE.read_bytes()])
    assert mismatch.status_code == 409
    ok = await store(archive, f"color-palettes/{palette_uid}", [COLOR_PALETTE.read_bytes()])
    assert ok.status_code == 200
    assert (await archive.client.get(f"{ROOT}/hanging-protocols/{palette_uid}")).status_code == 404


async def test_bad_requests_get_clear_4xx(archive: Archive) -> None:
    assert (await archive.client.get(f"{ROOT}/color-palettes/not-a-uid")).status_code == 400
    assert (await archive.client.get(f"{ROOT}/color-palettes/1.2.3")).status_code == 404
    bad_key = await archive.client.get(f"{ROOT}/hanging-protocols?NoSuchKeyword=1")
    assert bad_key.status_code == 400
    body, boundary = multipart([b"{}"])
    json_type = f'multipart/related; type="application/dicom+json"; boundary={boundary}'
    refused = await archive.client.post(
        f"{ROOT}/color-palettes", content=body, headers={"Content-Type": json_type}
    )
    assert refused.status_code == 415


async def _searches(data_dir: Path, store: bool) -> tuple[Any, Any]:
    async with running_archive(data_dir) as archive:
        if store:
            answer = await store_palette(archive.client, "")
            assert answer.status_code == 200, answer.text
        palettes = (await archive.client.get("/color-palettes")).json()
        studies = (await archive.client.get("/studies")).json()
    return palettes, studies


def test_reindex_rebuilds_the_entries_of_non_patient_instances(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    before = asyncio.run(_searches(data_dir, store=True))
    assert len(before[0]) == 1 and before[1] == []
    (data_dir / "index.sqlite").unlink()
    for sidecar in data_dir.glob("index.sqlite-*"):
        sidecar.unlink()
    assert main(["reindex", "--data-dir", str(data_dir)]) == 0
    assert asyncio.run(_searches(data_dir, store=False)) == before
