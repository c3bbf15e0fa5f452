"""A stored object served as a PS3.10 file (``pacsflow.dicom.part10``, PS3.10 7.1)."""

from __future__ import annotations

import asyncio
import io
from collections.abc import AsyncIterator

import pydicom
import pytest

from pacsflow.dicom.part10 import IMPLEMENTATION_CLASS_UID, part10_head, part10_stream
from pacsflow.dicom.uids import is_valid_uid
from tests.support.corpus import CORPUS

CT = CORPUS / "modality/CT_small.dcm"  # a PS3.10 file
BARE = CORPUS / "structure/no_preamble_palette_face.dcm"  # Implicit VR LE, no head at all


async def _chunks(data: bytes, size: int) -> AsyncIterator[bytes]:
    for start in range(0, len(data), size):
        yield data[start : start + size]


def _served(data: bytes, syntax: str, size: int = 7) -> tuple[int, bytes]:
    async def run() -> tuple[int, bytes]:
        added, body = await part10_stream(_chunks(data, size), syntax)
        return added, b"".join([chunk async for chunk in body])

    return asyncio.run(run())


def test_a_ps310_file_goes_out_as_it_is() -> None:
    data = CT.read_bytes()
    assert part10_head(data[:200], "1.2.840.10008.1.2.1") == b""
    assert _served(data, "1.2.840.10008.1.2.1") == (0, data)


@pytest.mark.parametrize("size", [1, 64, 1 << 20])
def test_a_bare_data_set_gets_preamble_and_file_meta(size: int) -> None:
    data = BARE.read_bytes()
    added, served = _served(data, "1.2.840.10008.1.2", size)

    assert served[added:] == data and served[128:132] == b"DICM"
    ds = pydicom.dcmread(io.BytesIO(served))  # a PS3.10 file: no force
    source = pydicom.dcmread(BARE, force=True)
    assert ds.file_meta.MediaStorageSOPClassUID == source.SOPClassUID
    assert ds.file_meta.MediaStorageSOPInstanceUID == source.SOPInstanceUID
    assert ds.file_meta.TransferSyntaxUID == "1.2.840.10008.1.2"
    assert ds.file_meta.ImplementationClassUID == IMPLEMENTATION_CLASS_UID
    assert is_valid_uid(IMPLEMENTATION_CLASS_UID)
    assert ds.PixelData == source.PixelData


def test_file_meta_without_the_preamble_gets_the_preamble() -> None:
    data = CT.read_bytes()[128 + 4 :]  # group 0002 first, as some writers store it
    added, served = _served(data, "1.2.840.10008.1.2.1")

    assert added == 132 and served == b"\x00" * 128 + b"DICM" + data
    assert pydicom.dcmread(io.BytesIO(served)).SOPInstanceUID == pydicom.dcmread(CT).SOPInstanceUID
