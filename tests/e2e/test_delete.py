"""DELETE and IOCM rejection notes end to end, in each mode, through dicomweb-client.

Embedded (``pacsflow serve``: SQLite journal and index, objects on disk) and pipeline (the same
server on Tansu, moto and osmem, a Faust worker applying the records): the archive's answers
and its backends, opened with pacsflow's own adapters, agree that the deleted instances are gone.
"""

from __future__ import annotations

import asyncio
from io import BytesIO

import pydicom
import pytest
from dicomweb_client.api import DICOMwebClient
from pydicom.uid import generate_uid
from requests import HTTPError

from tests.support.backends import stored_object_keys
from tests.support.deletion import image, part10, rejection_note
from tests.support.durable import also_durable
from tests.support.servers import Server


def _datasets(*parts: bytes) -> list[pydicom.Dataset]:
    return [pydicom.dcmread(BytesIO(p)) for p in parts]


def _held(client: DICOMwebClient, study: str) -> set[str]:
    found = client.search_for_instances(study_instance_uid=study)
    return {item["00080018"]["Value"][0] for item in found}


def _keys(server: Server, study: str) -> set[str]:
    """The SOP Instance UIDs whose objects are under ``study`` (a series thumbnail made ahead,
    ``pacsflow.wado.thumbnail_store``, is not an instance's: current only while it shows the
    series' middle instance)."""
    keys = asyncio.run(stored_object_keys(server.settings()))
    prefix = f"default/studies/{study}/"
    names = {k.rsplit("/", 1)[1].rsplit(".", 1)[0] for k in keys if k.startswith(prefix)}
    return names - {"thumbnail"}


@also_durable()
def test_delete_instance_series_and_study(server: Server) -> None:
    client = DICOMwebClient(url=server.url)
    study, first, second = generate_uid(), generate_uid(), generate_uid()
    a, b, c = _datasets(image(study, first), image(study, first), image(study, second))
    client.store_instances([a, b, c])

    client.delete_instance(study, first, a.SOPInstanceUID)

    assert _held(client, study) == {b.SOPInstanceUID, c.SOPInstanceUID}
    assert _keys(server, study) == {b.SOPInstanceUID, c.SOPInstanceUID}
    with pytest.raises(HTTPError) as missing:
        client.retrieve_instance(study, first, a.SOPInstanceUID)
    assert missing.value.response.status_code == 404

    client.delete_series(study, first)
    assert _held(client, study) == {c.SOPInstanceUID}
    client.delete_study(study)
    assert _held(client, study) == set()
    assert _keys(server, study) == set()
    with pytest.raises(HTTPError) as again:
        client.delete_study(study)
    assert again.value.response.status_code == 404


def test_a_rejection_note_removes_the_instances_it_references(server: Server) -> None:
    client = DICOMwebClient(url=server.url)
    study, series = generate_uid(), generate_uid()
    kept, rejected = _datasets(image(study, series), image(study, series))
    client.store_instances([kept, rejected])
    note = rejection_note("113037", study, [(series, rejected.SOPInstanceUID)])

    client.store_instances(_datasets(part10(note)))

    assert _held(client, study) == {kept.SOPInstanceUID, note.SOPInstanceUID}
    assert _keys(server, study) == {kept.SOPInstanceUID, note.SOPInstanceUID}
