"""The strict structure scan (``pacsflow.dicom.scan``) on the real corpus and on cut objects."""

from __future__ import annotations

import csv
import io
import struct
import warnings
import zlib
from pathlib import Path

import pydicom
import pytest
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.encaps import encapsulate, generate_fragments, parse_basic_offsets
from pydicom.sequence import Sequence
from pydicom.uid import (
    DeflatedExplicitVRLittleEndian,
    ExplicitVRLittleEndian,
    JPEGBaseline8Bit,
)

from pacsflow.dicom.scan import PIXEL_DATA, ScanResult, StructureError, Truncated, scan
from tests.support.corpus import CORPUS, corpus_files

# Malformed files whose structure is sound: validation refuses them later (bad value, bad UID,
# broken codestream).
STRUCTURALLY_SOUND = {
    "malformed/invalid_IS_value.dcm",
    "malformed/invalid_sequence_encoding.dcm",
    "malformed/j2k_embedded_sequence_delimiter.dcm",
    "malformed/jpeg_extended_12bit_bad_sos.dcm",
}
# Outside malformed/, but their File Meta lacks Type 1 elements (PS3.10 7.1): Media Storage SOP
# Class UID is absent from one and empty in the other. The strict scan refuses both.
META_LACKS_TYPE_1 = {
    "structure/empty_specific_character_set.dcm",
    "structure/private_sq_nested.dcm",
}
NATIVE_FILES = [
    "modality/CT_small.dcm",
    "transfer-syntax/explicit_be_MR_small.dcm",
    "transfer-syntax/implicit_le_MR_small.dcm",
    "structure/no_preamble_palette_face.dcm",
    "structure/odd_dimensions_rgb_3x3.dcm",
    "structure/trailing_padding_MR_small.dcm",
    "objects/SEG_liver_3frame.dcm",
    "multiframe/enhanced_MR_10frame_big_endian.dcm",
]
MULTIFRAME_ENCAPSULATED = [
    "transfer-syntax/rle_rgb_32bit_2frame.dcm",
    "modality/XA_4frame_jpeg_lossless.dcm",
    "multiframe/US_cine_30frame_jpeg_ybr_full_422.dcm",
    "multiframe/US_palette_2frame_rle.dcm",
    "multiframe/enhanced_MR_10frame_j2k_lossless.dcm",
    "multiframe/enhanced_MR_10frame_jpegls_lossless.dcm",
    "multiframe/enhanced_MR_10frame_rle.dcm",
    "derived/htj2k_lossless_enhanced_MR_10frame.dcm",
]


def _rel(path: Path) -> str:
    return path.relative_to(CORPUS).as_posix()


def _manifest() -> dict[str, dict[str, str]]:
    with (CORPUS / "MANIFEST.csv").open() as fp:
        return {row["path"]: row for row in csv.DictReader(fp)}


MANIFEST = _manifest()
GOOD = [p for p in corpus_files() if _rel(p) not in META_LACKS_TYPE_1]


def scan_file(path: Path) -> ScanResult:
    with path.open("rb") as fp:
        return scan(fp, path.stat().st_size)


def scan_bytes(data: bytes, **kwargs: object) -> ScanResult:
    return scan(io.BytesIO(data), len(data), **kwargs)  # type: ignore[arg-type]


def read(path: Path, **kwargs: object) -> Dataset:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return pydicom.dcmread(path, force=True, **kwargs)  # type: ignore[arg-type]


@pytest.mark.parametrize("path", GOOD, ids=_rel)
def test_corpus_file_scans_and_matches_the_manifest(path: Path) -> None:
    result = scan_file(path)

    row = MANIFEST[_rel(path)]
    assert result.complete
    if row["TransferSyntaxUID"]:
        assert result.transfer_syntax == row["TransferSyntaxUID"]
    assert result.has_file_meta == ("not in File Meta" not in row["notes"])
    deflated = result.transfer_syntax == DeflatedExplicitVRLittleEndian
    assert result.addressable == (not deflated)


@pytest.mark.parametrize("name", sorted(META_LACKS_TYPE_1))
def test_file_meta_without_media_storage_sop_class_is_refused(name: str) -> None:
    with pytest.raises(StructureError, match=r"Media Storage SOP Class UID"):
        scan_file(CORPUS / name)


@pytest.mark.parametrize(
    "path",
    [p for p in corpus_files(malformed=True) if _rel(p) not in STRUCTURALLY_SOUND],
    ids=_rel,
)
def test_malformed_file_raises_structure_error(path: Path) -> None:
    with pytest.raises(StructureError):
        scan_file(path)


@pytest.mark.parametrize("name", sorted(STRUCTURALLY_SOUND))
def test_malformed_file_with_sound_structure_scans(name: str) -> None:
    assert scan_file(CORPUS / name).complete


@pytest.mark.parametrize(
    "name",
    [
        "malformed/gen_truncated_in_pixel_data.dcm",
        "malformed/gen_truncated_in_sequence.dcm",
        "malformed/gen_truncated_mid_element_header.dcm",
        "malformed/gen_truncated_in_encapsulated_frame.dcm",
        "malformed/gen_pixel_data_length_overflow.dcm",
        "malformed/truncated_pixel_data_MR.dcm",
        "malformed/j2k_missing_sequence_delimiter.dcm",
    ],
)
def test_cut_corpus_files_raise_truncated(name: str) -> None:
    with pytest.raises(Truncated):
        scan_file(CORPUS / name)


@pytest.mark.parametrize("name", NATIVE_FILES)
def test_native_pixel_layout_matches_pydicom(name: str) -> None:
    path = CORPUS / name
    result = scan_file(path)

    element = read(path, defer_size=1024)["PixelData"]  # pydicom 3: file_tell = value offset
    assert result.pixel is not None
    assert not result.pixel.encapsulated
    assert result.pixel.tag == PIXEL_DATA
    assert (result.pixel.offset, result.pixel.length) == (element.file_tell, len(element.value))


@pytest.mark.parametrize("name", MULTIFRAME_ENCAPSULATED)
def test_encapsulated_fragments_match_pydicom(name: str) -> None:
    path = CORPUS / name
    result = scan_file(path)

    buffer = io.BytesIO(read(path).PixelData)
    offsets = parse_basic_offsets(buffer)
    fragments = list(generate_fragments(buffer))
    assert result.pixel is not None
    assert result.pixel.encapsulated
    assert list(result.pixel.basic_offsets) == offsets
    assert len(result.pixel.fragments) == len(fragments)
    data = path.read_bytes()
    assert [data[o : o + n] for o, n in result.pixel.fragments] == fragments


def test_deflated_offsets_are_not_addressable() -> None:
    result = scan_file(CORPUS / "transfer-syntax/deflated_CT_small.dcm")

    assert result.transfer_syntax == DeflatedExplicitVRLittleEndian
    assert not result.addressable
    assert result.pixel is not None
    assert result.pixel.length == 128 * 128 * 2


def test_want_returns_top_level_values_and_stop_after_ends_early() -> None:
    path = CORPUS / "modality/CT_small.dcm"
    ds = read(path)
    wanted = (0x00080018, 0x0020000D, 0x00100010)
    with path.open("rb") as fp:
        result = scan(fp, path.stat().st_size, want=wanted, stop_after=0x0020000E)

    assert not result.complete
    assert result.pixel is None
    assert result.values[0x00080018].rstrip(b"\x00 ").decode() == ds.SOPInstanceUID
    assert result.values[0x0020000D].rstrip(b"\x00 ").decode() == ds.StudyInstanceUID
    assert result.values[0x00100010].rstrip(b"\x00 ").decode() == str(ds.PatientName)
    assert result.meta[0x00020010].rstrip(b"\x00 ").decode() == ds.file_meta.TransferSyntaxUID


# Synthetic objects: written with pydicom, then cut or patched.


def _dataset(transfer_syntax: str = ExplicitVRLittleEndian) -> Dataset:
    ds = Dataset()
    ds.file_meta = FileMetaDataset()
    ds.file_meta.MediaStorageSOPClassUID = "1.2.840.10008.5.1.4.1.1.7"
    ds.file_meta.MediaStorageSOPInstanceUID = "1.2.3.4.5.6"
    ds.file_meta.TransferSyntaxUID = transfer_syntax
    ds.SOPClassUID = "1.2.840.10008.5.1.4.1.1.7"
    ds.SOPInstanceUID = "1.2.3.4.5.6"
    ds.PatientName = "DOE^JOHN^QUINCY"
    item = Dataset()
    item.SeriesInstanceUID = "1.2.3.4.777.888"
    ds.ReferencedSeriesSequence = Sequence([item])
    ds.StudyInstanceUID = "1.2.3.4"
    ds.SeriesInstanceUID = "1.2.3.4.5"
    ds.Rows, ds.Columns = 4, 4
    ds.BitsAllocated, ds.SamplesPerPixel = 8, 1
    ds.PixelData = bytes(range(16))
    return ds


def _encode(ds: Dataset, *, undefined_sequence: bool = False) -> bytes:
    ds["ReferencedSeriesSequence"].is_undefined_length = undefined_sequence
    for item in ds.ReferencedSeriesSequence:
        item.is_undefined_length_sequence_item = undefined_sequence
    buffer = io.BytesIO()
    ds.save_as(buffer, enforce_file_format=True)
    return buffer.getvalue()


def _native() -> bytes:
    return _encode(_dataset())


def _patch_length(data: bytes, tag: bytes, vr: bytes, new_length: int) -> bytes:
    """Overwrite the length field of the first explicit VR element ``tag``."""
    at = data.index(tag + vr)
    if vr in (b"OB", b"OW", b"SQ", b"UN"):
        return data[: at + 8] + struct.pack("<I", new_length) + data[at + 12 :]
    return data[: at + 6] + struct.pack("<H", new_length) + data[at + 8 :]


def test_synthetic_object_scans_whole() -> None:
    data = _native()

    result = scan_bytes(data, want=[0x00100010])

    assert result.values[0x00100010] == b"DOE^JOHN^QUINCY "
    assert result.pixel is not None
    assert data[result.pixel.offset : result.pixel.offset + result.pixel.length] == bytes(range(16))


@pytest.mark.parametrize(
    "cut",
    [
        pytest.param(lambda d: d.index(b"DOE^JOHN") + 3, id="inside a value"),
        pytest.param(lambda d: d.index(b"\x28\x00\x10\x00US") + 5, id="inside an element header"),
        pytest.param(lambda d: d.index(b"1.2.3.4.777") + 4, id="inside a sequence item"),
        pytest.param(lambda d: len(d) - 5, id="inside pixel data"),
        pytest.param(lambda d: d.index(b"DICM") + 20, id="inside the file meta"),
        pytest.param(lambda d: d.index(b"DICM") + 4, id="right after DICM"),
    ],
)
def test_cut_synthetic_object_raises_truncated(cut: object) -> None:
    data = _native()
    at = cut(data)  # type: ignore[operator]

    with pytest.raises(Truncated):
        scan_bytes(data[:at])


def test_cut_inside_an_undefined_length_sequence_raises_truncated() -> None:
    data = _encode(_dataset(), undefined_sequence=True)
    item_end = data.index(b"\xfe\xff\x0d\xe0")  # (FFFE,E00D) Item Delimitation Item
    assert scan_bytes(data).complete

    for at in (data.index(b"1.2.3.4.777") + 4, item_end + 8, item_end + 10):
        with pytest.raises(Truncated):
            scan_bytes(data[:at])


@pytest.mark.parametrize(
    ("tag", "vr", "length"),
    [
        (b"\x10\x00\x10\x00", b"PN", 0xFFF0),
        (b"\xe0\x7f\x10\x00", b"OB", 0x7FFFFFF0),
        (b"\x08\x00\x15\x11", b"SQ", 0x00010000),
    ],
    ids=["PatientName", "PixelData", "ReferencedSeriesSequence"],
)
def test_length_past_the_end_raises_truncated(tag: bytes, vr: bytes, length: int) -> None:
    data = _patch_length(_native(), tag, vr, length)

    with pytest.raises(Truncated):
        scan_bytes(data)


def test_item_longer_than_its_sequence_raises_truncated() -> None:
    data = _native()
    item = data.index(b"\xfe\xff\x00\xe0")  # the only item of ReferencedSeriesSequence
    data = data[: item + 4] + struct.pack("<I", 0x1000) + data[item + 8 :]

    with pytest.raises(Truncated):
        scan_bytes(data)


def test_invalid_vr_is_a_structure_error_not_truncation() -> None:
    data = _native()
    at = data.index(b"\x10\x00\x10\x00PN")
    data = data[: at + 4] + b"ZZ" + data[at + 6 :]

    with pytest.raises(StructureError) as info:
        scan_bytes(data)
    assert not isinstance(info.value, Truncated)


def _two_jpeg_frames() -> bytes:
    """An object with two 104-byte JPEG frames, encapsulated with a Basic Offset Table."""
    ds = _dataset(JPEGBaseline8Bit)
    ds.NumberOfFrames = 2
    ds.PixelData = encapsulate([b"\xff\xd8" + b"a" * 100 + b"\xff\xd9"] * 2, has_bot=True)
    ds["PixelData"].is_undefined_length = True
    ds["PixelData"].VR = "OB"
    return _encode(ds)


def test_cut_inside_an_encapsulated_fragment_raises_truncated() -> None:
    data = _two_jpeg_frames()
    result = scan_bytes(data)
    assert result.pixel is not None
    assert len(result.pixel.fragments) == 2

    last_fragment = result.pixel.fragments[-1][0]
    for at in (last_fragment + 50, len(data) - 4):  # in a fragment; before the delimiter ends
        with pytest.raises(Truncated):
            scan_bytes(data[:at])


def _odd_fragments(pad: bytes) -> bytes:
    """Two frames, the last of odd length, with ``pad`` between its item and the delimiter."""
    data = _two_jpeg_frames()
    end = data.rindex(b"\xfe\xff\xdd\xe0")
    last = data.rindex(b"\xfe\xff\x00\xe0")
    odd = bytearray(data[:end])
    odd[last + 4 : last + 8] = struct.pack("<I", 103)  # one byte less: an odd fragment
    return bytes(odd[: end - 1]) + pad + data[end:]


def test_an_odd_fragment_padded_after_its_item_is_tolerated_and_noted() -> None:
    result = scan_bytes(_odd_fragments(b"\x00"))

    assert result.pixel is not None
    assert [length for _, length in result.pixel.fragments] == [104, 103]
    assert len(result.notes) == 1 and "padded after its item" in result.notes[0]
    assert scan_bytes(_odd_fragments(b"")).notes == ()  # odd, unpadded: as PS3.5 reads it


def test_a_byte_after_an_odd_fragment_that_is_not_padding_is_refused() -> None:
    with pytest.raises(StructureError, match="bad fragment item"):
        scan_bytes(_odd_fragments(b"\x07"))


def test_cut_deflated_stream_raises_truncated() -> None:
    ds = _dataset(DeflatedExplicitVRLittleEndian)
    ds.PixelData = bytes(range(256)) * 64
    ds.Rows, ds.Columns = 128, 128
    data = _encode(ds)
    assert not scan_bytes(data).addressable
    start = data.index(b"DICM") + 4
    meta_end = start + 12 + struct.unpack("<I", data[start + 8 : start + 12])[0]
    zlib.decompressobj(-zlib.MAX_WBITS).decompress(data[meta_end:])  # really deflated

    with pytest.raises(Truncated):
        scan_bytes(data[: meta_end + (len(data) - meta_end) // 2])
