"""Instances for the deletion tests: small images, and IHE IOCM rejection notes (Key Object
Selection Documents titled from PS3.16 CID 7011)."""

from __future__ import annotations

from io import BytesIO

from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.sequence import Sequence
from pydicom.uid import ExplicitVRLittleEndian, generate_uid

from pacsflow.pipeline.rejection import KEY_OBJECT_SELECTION

__all__ = ["image", "part10", "rejection_note"]


def _code(value: str, meaning: str) -> Dataset:
    item = Dataset()
    item.CodeValue, item.CodingSchemeDesignator, item.CodeMeaning = value, "DCM", meaning
    return item


def rejection_note(
    code: str,
    study_uid: str,
    references: list[tuple[str, str]],
    sop_class_uid: str = "1.2.840.10008.5.1.4.1.1.7",
    patient_id: str = "IOCM-1",
) -> Dataset:
    """A KOS in ``study_uid`` titled ``code`` (DCM) referencing ``(series, sop)`` instances."""
    ds = Dataset()
    ds.SOPClassUID, ds.SOPInstanceUID = KEY_OBJECT_SELECTION, generate_uid()
    ds.StudyInstanceUID, ds.SeriesInstanceUID = study_uid, generate_uid()
    ds.Modality, ds.SeriesNumber, ds.InstanceNumber = "KO", 99, 1
    ds.PatientID, ds.PatientName = patient_id, "IOCM^Test"
    ds.ContentDate, ds.ContentTime = "20261207", "060000"
    ds.ValueType, ds.ContinuityOfContent = "CONTAINER", "SEPARATE"
    ds.ConceptNameCodeSequence = Sequence([_code(code, "rejection note")])
    series: dict[str, list[str]] = {}
    for series_uid, sop_uid in references:
        series.setdefault(series_uid, []).append(sop_uid)
    study = Dataset()
    study.StudyInstanceUID = study_uid
    study.ReferencedSeriesSequence = Sequence()
    for series_uid, sops in series.items():
        item = Dataset()
        item.SeriesInstanceUID = series_uid
        item.ReferencedSOPSequence = Sequence()
        for sop_uid in sops:
            ref = Dataset()
            ref.ReferencedSOPClassUID, ref.ReferencedSOPInstanceUID = sop_class_uid, sop_uid
            item.ReferencedSOPSequence.append(ref)
        study.ReferencedSeriesSequence.append(item)
    ds.CurrentRequestedProcedureEvidenceSequence = Sequence([study])
    ds.ContentSequence = Sequence()
    return ds


def image(study_uid: str, series_uid: str, patient_id: str = "IOCM-1") -> bytes:
    """A small Secondary Capture image of ``study_uid``/``series_uid`` as a PS3.10 file."""
    ds = Dataset()
    ds.SOPClassUID, ds.SOPInstanceUID = "1.2.840.10008.5.1.4.1.1.7", generate_uid()
    ds.StudyInstanceUID, ds.SeriesInstanceUID = study_uid, series_uid
    ds.PatientID, ds.PatientName, ds.Modality = patient_id, "IOCM^Test", "OT"
    ds.SeriesNumber, ds.InstanceNumber, ds.ConversionType = 1, 1, "WSD"
    ds.Rows = ds.Columns = 4
    ds.SamplesPerPixel, ds.PhotometricInterpretation = 1, "MONOCHROME2"
    ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 8, 8, 7, 0
    ds.PixelData = bytes(range(16))
    return part10(ds)


def part10(ds: Dataset) -> bytes:
    """``ds`` as a PS3.10 file (Explicit VR Little Endian)."""
    ds.file_meta = FileMetaDataset()
    ds.file_meta.MediaStorageSOPClassUID = ds.SOPClassUID
    ds.file_meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
    ds.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
    out = BytesIO()
    ds.save_as(out, enforce_file_format=True)
    return out.getvalue()
