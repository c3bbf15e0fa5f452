"""STOW-RS end to end with the real corpus, through dicomweb-client and raw HTTP (PS3.18 10.5)."""

from __future__ import annotations

import asyncio
import warnings
from pathlib import Path

import httpx
import pydicom
import pytest
import requests
from dicomweb_client.api import DICOMwebClient

from pacsflow.dicom.status import FailureReason, WarningReason
from pacsflow.dicom.uids import NON_PATIENT_SOP_CLASSES
from tests.conftest import CORPUS, Server, corpus_files
from tests.helpers import (
    client_encoding,
    read_dead_letters,
    retrieve_bytes,
    sequence,
    served_as_sent,
    stored_object_keys,
    stow,
    value,
)

# pydicom.dcmwrite (which dicomweb-client uses to encode) pads this file's odd last Pixel Data
# fragment after its item, one byte before the Sequence Delimiter. pacsflow keeps such an
# object as sent, with Warning Reason B101 (docs/conformance.md).
PADDED_BY_CLIENT_ENCODING = {"modality/XA_4frame_jpeg_lossless.dcm"}


def _read(path: Path) -> pydicom.Dataset:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return pydicom.dcmread(path, force=True)


def _belongs_to_a_study(ds: pydicom.Dataset) -> bool:
    meta_class = str(getattr(getattr(ds, "file_meta", None), "MediaStorageSOPClassUID", ""))
    if str(ds.get("SOPClassUID", meta_class)) in NON_PATIENT_SOP_CLASSES:
        return False
    return all(
        ds.get(k) for k in ("StudyInstanceUID", "SeriesInstanceUID", "SOPInstanceUID")
    ) and bool(ds.get("SOPClassUID"))


def test_every_corpus_file_through_dicomweb_client(server: Server) -> None:
    """Files of a study are stored and read back as sent; the others are refused with reasons.

    Files that share a SOP Instance UID are stored one after the other: the duplicate policy
    ("replace") makes each new object the stored one, with Warning Reason B100 when it differs.
    """
    client = DICOMwebClient(url=server.url)
    stored_bytes: dict[str, bytes] = {}
    refused = 0
    for path in corpus_files():
        ds = _read(path)
        sent = client_encoding(_read(path))  # encoding converts raw elements: use a fresh copy
        padded = str(path.relative_to(CORPUS)) in PADDED_BY_CLIENT_ENCODING
        if not _belongs_to_a_study(ds):
            with pytest.raises(requests.HTTPError) as info:
                client.store_instances([_read(path)])
            assert info.value.response.status_code == 409, path
            failed = sequence(info.value.response.json(), "00081198")
            assert len(failed) == 1
            assert value(failed[0], "00081197") in {
                FailureReason.SOP_CLASS_NOT_SUPPORTED,
                FailureReason.DATA_SET_DOES_NOT_MATCH_SOP_CLASS,
                FailureReason.CANNOT_UNDERSTAND,
            }
            assert "299" in info.value.response.headers["Warning"]
            refused += 1
            continue
        sop = str(ds.SOPInstanceUID)
        result = client.store_instances([_read(path)])
        referenced = result.ReferencedSOPSequence
        assert [str(i.ReferencedSOPInstanceUID) for i in referenced] == [sop], path
        item = referenced[0]
        previous = stored_bytes.get(sop)
        if previous is not None and previous != sent:
            assert item.WarningReason == WarningReason.REPLACED_DIFFERENT_INSTANCE, path
        elif padded:
            assert item.WarningReason == WarningReason.ENCODING_TOLERATED, path
        else:
            assert "WarningReason" not in item, path
        assert item.RetrieveURL.endswith(
            f"/studies/{ds.StudyInstanceUID}/series/{ds.SeriesInstanceUID}/instances/{sop}"
        )
        served = retrieve_bytes(server.url, ds.StudyInstanceUID, ds.SeriesInstanceUID, sop)
        assert served_as_sent(sent, served), path
        stored_bytes[sop] = sent
    assert refused >= 5  # DICOMDIR, color palette, and the charset/structure fragments
    studies = client.search_for_studies()
    assert len(studies) >= 20


@pytest.mark.parametrize("path", corpus_files(), ids=lambda p: str(p.relative_to(CORPUS)))
def test_raw_file_reads_back_byte_identical(server_module: Server, path: Path) -> None:
    """The file's own bytes (no re-encoding by a client) come back unchanged, with the PS3.10
    head added when the file was sent without one."""
    ds = _read(path)
    data = path.read_bytes()
    response = stow(server_module.url, [data])
    if not _belongs_to_a_study(ds):
        assert response.status_code == 409
        return
    assert response.status_code in (200, 202), response.text
    referenced = sequence(response.json(), "00081199")
    assert len(referenced) == 1
    served = retrieve_bytes(
        server_module.url, ds.StudyInstanceUID, ds.SeriesInstanceUID, ds.SOPInstanceUID
    )
    assert served_as_sent(data, served)


@pytest.mark.parametrize(
    "path", corpus_files(malformed=True), ids=lambda p: str(p.relative_to(CORPUS))
)
def test_malformed_file_is_refused(server_module: Server, path: Path) -> None:
    """Every malformed file is refused with a FailureReason and explained in Warning."""
    response = stow(server_module.url, [path.read_bytes()])
    assert response.status_code == 409, response.text
    assert response.headers["content-type"] == "application/dicom+json"
    failed = sequence(response.json(), "00081198")
    assert len(failed) == 1
    assert value(failed[0], "00081197") in {int(r) for r in FailureReason}
    assert "00081199" not in response.json()
    assert "failure" in response.headers["warning"]


def test_malformed_files_leave_nothing_behind(server: Server) -> None:
    """After refusing every malformed file, no study, object or staged part remains."""
    parts = [p.read_bytes() for p in corpus_files(malformed=True)]
    response = stow(server.url, parts)
    assert response.status_code == 409
    assert len(sequence(response.json(), "00081198")) == len(parts)
    assert httpx.get(f"{server.url}/studies").json() == []
    assert asyncio.run(stored_object_keys(server.settings())) == []


async def test_rejected_instances_are_recorded_on_the_dead_letter_topic(server: Server) -> None:
    """Instances refused by the processor are on ``dead-letter`` with their reason."""
    rejected_late = [  # these pass the STOW header check and fail complete validation
        CORPUS / "malformed" / "truncated_pixel_data_MR.dcm",
        CORPUS / "malformed" / "jpeg_extended_12bit_bad_sos.dcm",
        CORPUS / "malformed" / "invalid_IS_value.dcm",
    ]
    response = stow(server.url, [p.read_bytes() for p in rejected_late])
    assert response.status_code == 409
    letters = await read_dead_letters(server.settings(), len(rejected_late))
    assert len(letters) == len(rejected_late)
    assert all(letter.failure_reason == FailureReason.CANNOT_UNDERSTAND for letter in letters)
    assert all(letter.record and letter.record["sop_uid"] for letter in letters)
    assert all(letter.record and "inline" not in letter.record for letter in letters)
