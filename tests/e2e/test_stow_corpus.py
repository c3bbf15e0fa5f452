"""STOW-RS end to end with the real corpus (PS3.18 10.5), in both modes: where the processor
records the instances it refuses (the dead-letter topic), what refused instances leave behind
(nothing), every file through dicomweb-client. Each file's own bytes and each malformed file's
refusal are in tests/service/test_stow_corpus.py.

The tests share one archive per mode and run in the order written: the refusals first, while
the archive and its dead-letter topic are still empty, then the whole corpus.
"""

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
from tests.support.backends import read_dead_letters, stored_object_keys
from tests.support.corpus import CORPUS, belongs_to_a_study, corpus_files
from tests.support.dicomweb import (
    client_encoding,
    retrieve_bytes,
    sequence,
    served_as_sent,
    stow,
    value,
)
from tests.support.servers import Server

# pydicom.dcmwrite (which dicomweb-client uses to encode) pads this file's odd last Pixel Data
# fragment after its item, one byte before the Sequence Delimiter. pacsflow keeps such an
# object as sent, with Warning Reason B101 (docs/conformance.md).
PADDED_BY_CLIENT_ENCODING = {"modality/XA_4frame_jpeg_lossless.dcm"}


def _read(path: Path) -> pydicom.Dataset:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return pydicom.dcmread(path, force=True)


async def test_rejected_instances_are_recorded_on_the_dead_letter_topic(
    server_module: Server,
) -> None:
    """Instances refused by the processor are on ``dead-letter`` with their reason."""
    rejected_late = [  # these pass the STOW header check and fail complete validation
        CORPUS / "malformed" / "truncated_pixel_data_MR.dcm",
        CORPUS / "malformed" / "jpeg_extended_12bit_bad_sos.dcm",
        CORPUS / "malformed" / "invalid_IS_value.dcm",
    ]
    response = stow(server_module.url, [p.read_bytes() for p in rejected_late])
    assert response.status_code == 409
    letters = await read_dead_letters(server_module.settings(), len(rejected_late))
    assert len(letters) == len(rejected_late)
    assert all(letter.failure_reason == FailureReason.CANNOT_UNDERSTAND for letter in letters)
    assert all(letter.record and letter.record["sop_uid"] for letter in letters)
    assert all(letter.record and "inline" not in letter.record for letter in letters)


def test_malformed_files_leave_nothing_behind(server_module: Server) -> None:
    """After refusing every malformed file, no study, object or staged part remains."""
    parts = [p.read_bytes() for p in corpus_files(malformed=True)]
    response = stow(server_module.url, parts)
    assert response.status_code == 409
    assert len(sequence(response.json(), "00081198")) == len(parts)
    assert httpx.get(f"{server_module.url}/studies").json() == []
    assert asyncio.run(stored_object_keys(server_module.settings())) == []


def test_every_corpus_file_through_dicomweb_client(server_module: Server) -> None:
    """Files of a study are stored and read back as sent; the others are refused with reasons.

    Files that share a SOP Instance UID are stored one after the other: the duplicate policy
    ("replace") makes each new object the stored one, with Warning Reason B100 when it differs.
    """
    client = DICOMwebClient(url=server_module.url)
    stored_bytes: dict[str, bytes] = {}
    refused = 0
    for path in corpus_files():
        ds = _read(path)
        sent = client_encoding(_read(path))  # encoding converts raw elements: use a fresh copy
        padded = str(path.relative_to(CORPUS)) in PADDED_BY_CLIENT_ENCODING
        if not belongs_to_a_study(ds):
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
        served = retrieve_bytes(server_module.url, ds.StudyInstanceUID, ds.SeriesInstanceUID, sop)
        assert served_as_sent(sent, served), path
        stored_bytes[sop] = sent
    assert refused >= 5  # DICOMDIR, color palette, and the charset/structure fragments
    studies = client.search_for_studies()
    assert len(studies) >= 20
