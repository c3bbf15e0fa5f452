"""WADO-RS end to end through dicomweb-client (PS3.18 10.4, 8.3.5), in both modes: the real
corpus stored by STOW-RS, its metadata, instances, frames, bulk data and rendered images read
back. The protocol cases (media types, Range, ETag, errors) are in tests/service/test_wado.py."""

from __future__ import annotations

import io
from typing import Any

import numpy as np
import pytest
from dicomweb_client.api import DICOMwebClient
from PIL import Image
from pydicom.encaps import generate_frames

from tests.support.corpus import CORPUS, uids_of
from tests.support.dicomweb import value
from tests.support.stored import EXPLICIT_LE, Stored, syntax_of

JsonDict = dict[str, Any]


@pytest.fixture
def stored(corpus_archive: Stored) -> Stored:
    """The corpus as the archive of this mode holds it (tests/e2e/conftest.py)."""
    return corpus_archive


def _strip_uris(js: JsonDict) -> JsonDict:
    out: JsonDict = {}
    for tag, element in js.items():
        element = dict(element)
        if "BulkDataURI" in element or "InlineBinary" in element:
            element.pop("BulkDataURI", None)
            element.pop("InlineBinary", None)
            element["bulk"] = True
        elif element.get("vr") == "SQ" and element.get("Value"):
            element["Value"] = [_strip_uris(item) for item in element["Value"]]
        out[tag] = element
    return out


def test_every_instance_metadata_matches_pydicom(stored: Stored) -> None:
    """Instance metadata is pydicom's DICOM JSON of the file (bulk values by URI)."""
    client = DICOMwebClient(url=stored.url)
    compared = 0
    for sop in stored.files:
        ds = stored.dataset(sop)
        ours = client.retrieve_instance_metadata(
            str(ds.StudyInstanceUID), str(ds.SeriesInstanceUID), sop
        )
        theirs = ds.to_json_dict(bulk_data_threshold=1024, bulk_data_element_handler=lambda e: "x")
        assert _strip_uris(ours).keys() == _strip_uris(theirs).keys(), stored.files[sop]
        for tag, element in _strip_uris(theirs).items():
            if "bulk" not in element and element.get("vr") != "SQ":
                assert _strip_uris(ours)[tag] == element, (stored.files[sop], tag)
        compared += 1
    assert compared == len(stored.files)


def test_bulkdata_byte_range_through_the_client(stored: Stored) -> None:
    """retrieve_bulkdata with a byte range: the first bytes of the bulk value."""
    sop = stored.by_name("US_palette_segmented_16bit_lut.dcm")
    whole = bytes(stored.dataset(sop)[0x00281221].value)
    url = f"{stored.path_of(sop)}/bulkdata/00281221"
    client = DICOMwebClient(url=stored.url)
    assert client.retrieve_bulkdata(url, byte_range=(0, 9))[0] == whole[:10]


def test_dicomweb_client_retrieves_study_series_instance_and_frames(stored: Stored) -> None:
    """retrieve_study/series/instance (Explicit VR LE by default) and retrieve_instance_frames."""
    client = DICOMwebClient(url=stored.url)
    sop = stored.by_name("enhanced_MR_10frame")
    ds = stored.dataset(sop)
    study, series = str(ds.StudyInstanceUID), str(ds.SeriesInstanceUID)
    stored_syntax = syntax_of(ds)
    assert stored_syntax == "1.2.840.10008.1.2.5"  # RLE: the last of the files sharing the UID
    as_stored = client.retrieve_instance(study, series, sop)  # the client asks for "*"
    assert as_stored.file_meta.TransferSyntaxUID == stored_syntax
    instance = client.retrieve_instance(
        study, series, sop, media_types=(("application/dicom", EXPLICIT_LE),)
    )
    assert instance.file_meta.TransferSyntaxUID == EXPLICIT_LE
    assert np.array_equal(instance.pixel_array, ds.pixel_array)
    in_series = client.retrieve_series(study, series)
    assert sop in {str(i.SOPInstanceUID) for i in in_series}
    in_study = client.retrieve_study(study)
    assert len(in_study) >= len(in_series)
    [frame] = client.retrieve_instance_frames(
        study, series, sop, frame_numbers=[3], media_types=(("image/dicom-rle", stored_syntax),)
    )
    expected = list(generate_frames(ds.PixelData, number_of_frames=10))[2]
    assert frame == expected
    metadata = client.retrieve_series_metadata(study, series)
    assert sop in {value(m, "00080018") for m in metadata}


def test_instance_rendered_through_dicomweb_client(stored: Stored) -> None:
    """retrieve_instance_rendered and retrieve_instance_frames_rendered (PS3.18 8.3.5)."""
    client = DICOMwebClient(url=stored.url)
    uids = uids_of(CORPUS / "modality" / "CT_small.dcm")  # or its deflated copy, same UIDs
    assert uids[2] in stored.files
    jpeg = Image.open(io.BytesIO(client.retrieve_instance_rendered(*uids)))
    assert (jpeg.format, jpeg.size, jpeg.mode) == ("JPEG", (128, 128), "L")
    png = client.retrieve_instance_rendered(*uids, media_types=("image/png",))
    assert Image.open(io.BytesIO(png)).format == "PNG"
    small = client.retrieve_instance_rendered(*uids, params={"viewport": "64,64"})
    assert Image.open(io.BytesIO(small)).size == (64, 64)
    frame = client.retrieve_instance_frames_rendered(*uids, frame_numbers=[1])
    assert Image.open(io.BytesIO(frame)).size == (128, 128)
