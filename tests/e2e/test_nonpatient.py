"""The Non-Patient Instance Service (PS3.18 Chapter 12) end to end, in both modes.

Embedded: ``pacsflow serve`` (SQLite journal and index, objects on disk). Pipeline: Kafka
(Tansu), S3 (moto) and an Elasticsearch-protocol index (osmem) with a Faust worker. The
corpus's Color Palette and a Hanging Protocol built with pydicom are stored at their resources
(12.5), found by Search (12.6) and not by Studies searches, retrieved as stored (12.4),
committed (Chapter 13) and listed in the site's change feed.
The ``server`` fixture (tests/e2e/conftest.py) is a fresh deployment per mode.
"""

from __future__ import annotations

from io import BytesIO

import httpx
import orjson
import pydicom
import pytest
from pydicom.uid import generate_uid

from tests.support.corpus import CORPUS
from tests.support.dicomweb import multipart, sequence, single_part, stow_content_type, value
from tests.support.nonpatient import COLOR_PALETTE, hanging_protocol
from tests.support.servers import Server

CT = CORPUS / "modality" / "CT_small.dcm"

pytestmark = pytest.mark.timeout(900)


def _store(base: str, resource: str, parts: list[bytes]) -> httpx.Response:
    body, boundary = multipart(parts)
    headers = {"Content-Type": stow_content_type(boundary), "Accept": "application/dicom+json"}
    return httpx.post(f"{base}/{resource}", content=body, headers=headers, timeout=300)


def test_non_patient_instances_are_stored_searched_and_retrieved_apart_from_studies(
    server: Server,
) -> None:
    base = f"http://127.0.0.1:{server.port}/dicom-web"
    palette = COLOR_PALETTE.read_bytes()
    protocol = hanging_protocol("CT chest 2x1")
    protocol_uid = pydicom.dcmread(BytesIO(protocol)).SOPInstanceUID
    palette_uid = pydicom.dcmread(COLOR_PALETTE).SOPInstanceUID

    assert _store(base, "color-palettes", [palette]).status_code == 200
    stored = _store(base, f"hanging-protocols/{protocol_uid}", [protocol])
    assert stored.status_code == 200, stored.text
    (item,) = sequence(stored.json(), "00081199")
    assert value(item, "00081190").endswith(f"/hanging-protocols/{protocol_uid}")
    assert _store(base, "studies", [CT.read_bytes()]).status_code == 200

    found = httpx.get(f"{base}/hanging-protocols?HangingProtocolName=CT*", timeout=60)
    assert [value(r, "00080018") for r in found.json()] == [protocol_uid]
    palettes = httpx.get(f"{base}/color-palettes?ContentLabel=HOT_IRON", timeout=60).json()
    assert [value(r, "00080018") for r in palettes] == [palette_uid]
    assert httpx.get(f"{base}/implant-templates", timeout=60).json() == []

    for search in ("studies", "series", "instances"):
        answer = httpx.get(f"{base}/{search}", timeout=60)
        assert answer.status_code == 200
        assert palette_uid not in answer.text and protocol_uid not in answer.text

    retrieved = httpx.get(f"{base}/color-palettes/{palette_uid}", timeout=60)
    assert single_part(retrieved) == palette
    single = httpx.get(
        f"{base}/hanging-protocols/{protocol_uid}",
        headers={"Accept": "application/dicom"},
        timeout=60,
    )
    assert single.content == protocol
    assert httpx.get(f"{base}/color-palettes/{protocol_uid}", timeout=60).status_code == 404

    # Storage Commitment covers them, and the site's change feed lists them without a study
    palette_class = str(pydicom.dcmread(COLOR_PALETTE, stop_before_pixels=True).SOPClassUID)
    reference = {"00081150": {"vr": "UI", "Value": [palette_class]}}
    reference["00081155"] = {"vr": "UI", "Value": [palette_uid]}
    committed = httpx.post(
        f"{base}/commitment-requests/{generate_uid()}",
        content=orjson.dumps({"00081199": {"vr": "SQ", "Value": [reference]}}),
        headers={"Content-Type": "application/dicom+json"},
        timeout=120,
    )
    assert committed.status_code == 200, committed.text
    assert [value(i, "00081155") for i in sequence(committed.json(), "00081199")] == [palette_uid]
    fed = httpx.get(f"{base}/changefeed", params={"limit": "100"}, timeout=60).json()
    npi = {e["SopInstanceUid"]: e["State"] for e in fed if not e["StudyInstanceUid"]}
    assert npi == {palette_uid: "current", protocol_uid: "current"}
