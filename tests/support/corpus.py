"""The real DICOM corpus (../shared/data/dicom beside the checkout) and synthetic instances."""

from __future__ import annotations

import csv
import warnings
from pathlib import Path

import pydicom
from pydicom.dataset import FileMetaDataset
from pydicom.uid import ExplicitVRLittleEndian, generate_uid

from pacsflow.dicom.uids import NON_PATIENT_SOP_CLASSES

__all__ = [
    "CORPUS",
    "belongs_to_a_study",
    "corpus_files",
    "one_file_per_instance",
    "read_header",
    "uids_of",
    "write_large_instance",
]

CORPUS = Path(__file__).resolve().parents[2].parent / "shared" / "data" / "dicom"


def corpus_files(*, malformed: bool = False) -> list[Path]:
    """Corpus files listed in MANIFEST.csv, in or outside ``malformed/``."""
    with (CORPUS / "MANIFEST.csv").open() as fp:
        paths = [row["path"] for row in csv.DictReader(fp)]
    return [CORPUS / p for p in paths if p.startswith("malformed/") == malformed]


def read_header(path: Path) -> pydicom.Dataset:
    """A file's data set without its pixels, read leniently and without warnings."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return pydicom.dcmread(path, force=True, stop_before_pixels=True)


def uids_of(path: Path) -> tuple[str, str, str]:
    """Study, Series and SOP Instance UIDs of a file."""
    ds = read_header(path)
    return str(ds.StudyInstanceUID), str(ds.SeriesInstanceUID), str(ds.SOPInstanceUID)


def belongs_to_a_study(ds: pydicom.Dataset) -> bool:
    """Whether a data set is a patient's instance in a study (what STOW-RS stores; the rest,
    DICOMDIR or a color palette among them, it refuses)."""
    meta_class = str(getattr(getattr(ds, "file_meta", None), "MediaStorageSOPClassUID", ""))
    if str(ds.get("SOPClassUID", meta_class)) in NON_PATIENT_SOP_CLASSES:
        return False
    return all(
        ds.get(k) for k in ("StudyInstanceUID", "SeriesInstanceUID", "SOPInstanceUID")
    ) and bool(ds.get("SOPClassUID"))


def one_file_per_instance(skip: tuple[str, ...] = ("DICOMDIR",)) -> list[Path]:
    """One corpus file per SOP Instance UID among the files that belong to a study, leaving
    out files whose name contains one of ``skip``."""
    seen: set[str] = set()
    chosen = []
    for path in corpus_files():
        ds = read_header(path)
        sop = str(ds.get("SOPInstanceUID", ""))
        if ds.get("StudyInstanceUID") and ds.get("SeriesInstanceUID") and sop not in seen:
            if any(part in path.name for part in skip):
                continue
            seen.add(sop)
            chosen.append(path)
    return chosen


def write_large_instance(
    path: Path, frames: int = 600, rows: int = 512
) -> tuple[pydicom.Dataset, int]:
    """A synthetic multi-frame CT (``frames`` x ``rows`` x ``rows`` x 2 bytes of Pixel Data)
    written header first, Pixel Data streamed to disk; its header and file size."""
    ds = pydicom.Dataset()
    ds.file_meta = FileMetaDataset()
    ds.file_meta.MediaStorageSOPClassUID = "1.2.840.10008.5.1.4.1.1.2.1"
    ds.file_meta.MediaStorageSOPInstanceUID = generate_uid()
    ds.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds.SOPClassUID = ds.file_meta.MediaStorageSOPClassUID
    ds.SOPInstanceUID = ds.file_meta.MediaStorageSOPInstanceUID
    ds.StudyInstanceUID, ds.SeriesInstanceUID = generate_uid(), generate_uid()
    ds.PatientName, ds.PatientID, ds.Modality = "LARGE^SYNTHETIC", "LARGE1", "CT"
    ds.Rows, ds.Columns, ds.NumberOfFrames = rows, rows, frames
    ds.SamplesPerPixel, ds.PhotometricInterpretation = 1, "MONOCHROME2"
    ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 16, 12, 11, 0
    pixel_length = frames * rows * rows * 2
    header = path.with_suffix(".head")
    pydicom.dcmwrite(header, ds, enforce_file_format=True)
    with path.open("wb") as out:
        out.write(header.read_bytes())
        out.write(b"\xe0\x7f\x10\x00OW\x00\x00" + pixel_length.to_bytes(4, "little"))
        frame = bytes(range(256)) * (rows * rows * 2 // 256)
        for _ in range(frames):
            out.write(frame)
    return ds, path.stat().st_size
