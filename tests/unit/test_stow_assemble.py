"""Assembly and completion of metadata-request instances, and the XML response (unit level).

PS3.18 10.5.1.4 and 10.5.2 (instances from metadata and bulk data), IHE WIC (completion),
PS3.18 10.5.3 and Annex I (the response module in DICOM JSON and PS3.19 XML).
"""

from __future__ import annotations

import asyncio
import io
from datetime import datetime
from typing import Any

import pydicom
import pytest
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.uid import ExplicitVRLittleEndian

from pacsflow.dicom.header import PartRejected
from pacsflow.dicom.status import FailureReason
from pacsflow.dicom.xml import dataset_to_xml, xml_to_dataset
from pacsflow.stow.assemble import (
    IMPLEMENTATION_CLASS_UID,
    IMPLEMENTATION_VERSION,
    AssembledInstance,
    assemble,
)
from pacsflow.stow.completion import Completion, Content, sop_class_for
from pacsflow.stow.response import PartOutcome, StowResult
from pacsflow.stow.spool import BulkPart
from tests.support import capture as wic
from tests.support.corpus import CORPUS


async def _part(location: str, media_type: str, data: bytes, memory: int = 64) -> BulkPart:
    part = BulkPart(1, location, media_type, memory, 1 << 30)
    for start in range(0, len(data), 1000):
        await part.write(data[start : start + 1000])
    return part


async def _bytes(instance: AssembledInstance) -> bytes:
    return b"".join([chunk async for chunk in instance.chunks()])


def test_a_spooled_instance_is_byte_identical_to_pydicom_writing_it() -> None:
    """Streamed from a part spooled to disk, the file is what pydicom.dcmwrite makes of the
    same data set (Explicit VR Little Endian, the same File Meta)."""
    source = pydicom.dcmread(CORPUS / "modality/CT_small.dcm")
    capture = wic.from_dataset(source, threshold=64)

    async def run() -> bytes:
        spooled = {b.location: await _part(b.location, b.media_type, b.data) for b in capture.bulk}
        instance = assemble(capture.metadata, spooled, Completion(None), 1, 1 << 30)
        return await _bytes(instance)

    written = asyncio.run(run())
    expected = pydicom.dcmread(io.BytesIO(written))
    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = expected.SOPClassUID
    meta.MediaStorageSOPInstanceUID = expected.SOPInstanceUID
    meta.TransferSyntaxUID = ExplicitVRLittleEndian
    meta.ImplementationClassUID = IMPLEMENTATION_CLASS_UID
    meta.ImplementationVersionName = IMPLEMENTATION_VERSION
    expected.file_meta = meta
    buffer = io.BytesIO()
    pydicom.dcmwrite(buffer, expected, enforce_file_format=True)
    assert written == buffer.getvalue()
    assert expected.PixelData == source.PixelData


def _photo_content(**attributes: Any) -> Content:
    base = {"Rows": 4, "Columns": 6, "SamplesPerPixel": 3, "PhotometricInterpretation": "RGB"}
    return Content("pixels", "image/png", {**base, **attributes})


def test_completion_fills_what_is_missing_and_keeps_what_was_sent() -> None:
    completion = Completion(None, now=datetime(2024, 3, 14, 9, 26, 53))
    first, second, sent = Dataset(), Dataset(), Dataset()
    for ds in (first, second):
        ds.PatientID = "P1"
    sent.PatientID, sent.Modality, sent.InstanceNumber = "P1", "ES", 7
    sent.SOPInstanceUID = "1.2.3.4"
    for number, ds in enumerate((first, second, sent), start=1):
        completion.complete(ds, _photo_content(), number)
    assert first.StudyInstanceUID == second.StudyInstanceUID == sent.StudyInstanceUID
    assert first.SeriesInstanceUID == second.SeriesInstanceUID != sent.SeriesInstanceUID
    assert first.SOPInstanceUID != second.SOPInstanceUID and sent.SOPInstanceUID == "1.2.3.4"
    assert (first.InstanceCreationDate, first.InstanceCreationTime) == ("20240314", "092653.000000")
    assert (first.Modality, sent.Modality, sent.InstanceNumber) == ("XC", "ES", 7)
    assert first.SOPClassUID == "1.2.840.10008.5.1.4.1.1.77.1.4"
    for keyword in ("PatientName", "StudyDate", "AccessionNumber", "ReferringPhysicianName"):
        assert keyword in first and first[keyword].value in (None, "")
    other = Dataset()
    other.PatientID = "P2"
    completion.complete(other, _photo_content(), 4)
    assert other.StudyInstanceUID != first.StudyInstanceUID  # one new study per patient
    targeted = Dataset()
    Completion("1.2.826.0.1.3680043.8.498.9").complete(targeted, _photo_content(), 1)
    assert targeted.StudyInstanceUID == "1.2.826.0.1.3680043.8.498.9"


def test_encapsulated_stl_gets_its_mandatory_attributes() -> None:
    ds = Dataset()
    Completion(None).complete(ds, Content("document", "model/stl", size=684), 1)
    assert ds.SOPClassUID == "1.2.840.10008.5.1.4.1.1.104.3" and ds.Modality == "M3D"
    assert ds.MeasurementUnitsCodeSequence[0].CodeValue == "mm"
    assert ds.FrameOfReferenceUID and ds.Manufacturer == "UNKNOWN"
    assert (ds.MIMETypeOfEncapsulatedDocument, ds.EncapsulatedDocumentLength) == ("model/stl", 684)


@pytest.mark.parametrize(
    ("given", "content", "expected"),
    [
        ("", Content("pixels", "image/jpeg"), "1.2.840.10008.5.1.4.1.1.77.1.4"),
        ("", Content("pixels", "video/mp4"), "1.2.840.10008.5.1.4.1.1.77.1.4.1"),
        ("", Content("pixels", "image/gif", {"NumberOfFrames": 3}), "1.2.840.10008.5.1.4.1.1.7.4"),
        ("", Content("document", "text/xml"), "1.2.840.10008.5.1.4.1.1.104.2"),
        ("1.2.840.10008.5.1.4.1.1.2", Content("native"), "1.2.840.10008.5.1.4.1.1.2"),
        ("1.2.840.10008.5.1.4.1.1.7", Content("pixels", "image/png"), "1.2.840.10008.5.1.4.1.1.7"),
        ("1.2.3.4.5", Content("pixels", "image/png"), "1.2.3.4.5"),  # unknown: as sent
        ("1.2.840.10008.5.1.4.1.1.88.11", Content("none"), "1.2.840.10008.5.1.4.1.1.88.11"),
    ],
)
def test_sop_class_from_and_against_the_media(given: str, content: Content, expected: str) -> None:
    assert sop_class_for(given, content) == expected


@pytest.mark.parametrize(
    ("given", "content"),
    [
        ("", Content("none")),
        ("", Content("native")),
        ("1.2.840.10008.5.1.4.1.1.104.1", Content("document", "model/stl")),
        ("1.2.840.10008.5.1.4.1.1.77.1.1.1", Content("pixels", "image/jpeg")),
        ("1.2.840.10008.5.1.4.1.1.4", Content("pixels", "video/mp4")),
        ("1.2.840.10008.5.1.4.1.1.481.3", Content("native")),  # RT Structure Set: no pixels
    ],
)
def test_media_that_do_not_fit_the_sop_class(given: str, content: Content) -> None:
    with pytest.raises(PartRejected) as caught:
        sop_class_for(given, content)
    assert caught.value.reason == FailureReason.DATA_SET_DOES_NOT_MATCH_SOP_CLASS


def test_native_pixel_data_needs_its_description() -> None:
    ds = Dataset()
    ds.SOPClassUID, ds.Rows = "1.2.840.10008.5.1.4.1.1.7", 4
    with pytest.raises(PartRejected) as caught:
        Completion(None).complete(ds, Content("native", "application/octet-stream"), 1)
    assert "Columns" in caught.value.message


def test_the_xml_response_says_what_the_json_one_says() -> None:
    """PS3.18 10.5.3: the Store Instances Response Module in either encoding; tags ascending."""
    result = StowResult(study_uid=None, consistency="indexed")
    stored = PartOutcome(1, "1.2.840.10008.5.1.4.1.1.77.1.4", "2.25.1", "2.25.2", "2.25.3")
    stored.published = stored.processed = True
    failed = PartOutcome(2, "1.2.840.10008.5.1.4.1.1.104.1", "2.25.4")
    failed.fail(FailureReason.BULK_DATA_MISSING, "no part")
    result.parts += [stored, failed]
    result.other_failures.append((FailureReason.CANNOT_UNDERSTAND, "part 3 unreferenced"))
    dataset = result.to_json("http://host/dicom-web")
    assert list(dataset) == ["00081190", "00081198", "00081199", "0008119A"]
    assert xml_to_dataset(dataset_to_xml(dataset)) == dataset
    assert result.status_code == 202
    assert any("part 3 unreferenced" in w for w in result.warnings())
    assert wic.failed(dataset) == [("2.25.4", 0xC410)]
