"""A large instance streams through STOW, the processor and retrieval in bounded memory."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pydicom
import pytest
from pydicom.dataset import FileMetaDataset
from pydicom.uid import ExplicitVRLittleEndian, generate_uid

from tests.conftest import start_server
from tests.helpers import retrieve_digest, sequence, stow_file, value

FRAMES = 600
ROWS = COLUMNS = 512  # 600 frames x 512 x 512 x 2 bytes = 300 MiB of Pixel Data
CHUNK = 1 << 20


def _write_large_instance(path: Path, frames: int = FRAMES) -> tuple[pydicom.Dataset, int]:
    """A synthetic multi-frame CT written header first, Pixel Data streamed to disk."""
    ds = pydicom.Dataset()
    ds.file_meta = FileMetaDataset()
    ds.file_meta.MediaStorageSOPClassUID = "1.2.840.10008.5.1.4.1.1.2.1"
    ds.file_meta.MediaStorageSOPInstanceUID = generate_uid()
    ds.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds.SOPClassUID = ds.file_meta.MediaStorageSOPClassUID
    ds.SOPInstanceUID = ds.file_meta.MediaStorageSOPInstanceUID
    ds.StudyInstanceUID, ds.SeriesInstanceUID = generate_uid(), generate_uid()
    ds.PatientName, ds.PatientID, ds.Modality = "LARGE^SYNTHETIC", "LARGE1", "CT"
    ds.Rows, ds.Columns, ds.NumberOfFrames = ROWS, COLUMNS, frames
    ds.SamplesPerPixel, ds.PhotometricInterpretation = 1, "MONOCHROME2"
    ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 16, 12, 11, 0
    pixel_length = frames * ROWS * COLUMNS * 2
    header = path.with_suffix(".head")
    pydicom.dcmwrite(header, ds, enforce_file_format=True)
    with path.open("wb") as out:
        out.write(header.read_bytes())
        out.write(b"\xe0\x7f\x10\x00OW\x00\x00" + pixel_length.to_bytes(4, "little"))
        frame = bytes(range(256)) * (ROWS * COLUMNS * 2 // 256)
        for _ in range(frames):
            out.write(frame)
    return ds, path.stat().st_size


def _peak_rss_bytes(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) * 1024
    raise AssertionError("no VmHWM")


@pytest.mark.slow
def test_large_instance_stays_out_of_memory(tmp_path: Path) -> None:
    source = tmp_path / "large.dcm"
    ds, size = _write_large_instance(source)
    server = start_server(tmp_path / "data")
    try:
        baseline = _peak_rss_bytes(server.process.pid)
        response = stow_file(server.url, source)
        assert response.status_code == 200, response.text
        item = sequence(response.json(), "00081199")[0]
        assert value(item, "00081155") == ds.SOPInstanceUID
        received, digest = retrieve_digest(
            server.url, ds.StudyInstanceUID, ds.SeriesInstanceUID, ds.SOPInstanceUID
        )
        assert received == size
        with source.open("rb") as fp:
            expected = hashlib.file_digest(fp, "sha256").hexdigest()
        assert digest == expected
        peak = _peak_rss_bytes(server.process.pid)
        print(
            f"instance {size / 2**20:.0f} MiB; server peak RSS {peak / 2**20:.0f} MiB "
            f"(at start {baseline / 2**20:.0f} MiB)"
        )
        assert peak - baseline < size / 6, (peak, baseline, size)
    finally:
        server.stop()
