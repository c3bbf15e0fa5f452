"""One instance of a metadata request assembled as a PS3.10 file (PS3.18 10.5.1.4, 10.5.2).

The DICOM JSON data set (PS3.18 Annex F; XML was read into the same form) becomes a pydicom
``Dataset`` with ``Dataset.from_json``; InlineBinary values are decoded there, nested
BulkDataURIs are read from their parts. Bulk values at the top level (Pixel Data, the
Encapsulated Document, long binary values) are not loaded: the file is written as a stream of
pieces, the data set's other elements encoded by pydicom in Explicit VR Little Endian and the
large values copied from their parts, so memory stays bounded whatever the bulk data's size.
Compressed Pixel Data is encapsulated unchanged (PS3.5 A.4: an empty Basic Offset Table, one
fragment per frame, at most 1 GiB per fragment for video, a trailing null byte on an odd
length); PNG and GIF are transformed (``raster``); the File Meta Information (PS3.10 7.1) names
the transfer syntax the media called for.
"""

from __future__ import annotations

import struct
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass
from typing import Any, Final

from pydicom.charset import convert_encodings
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.filebase import DicomBytesIO
from pydicom.filewriter import write_data_element, write_file_meta_info
from pydicom.uid import UID, ExplicitVRLittleEndian

from pacsflow.dicom.header import PartRejected
from pacsflow.dicom.status import FailureReason
from pacsflow.stow.codestreams import PixelMedia, probe_jpeg, probe_jpeg2000
from pacsflow.stow.completion import Completion, Content
from pacsflow.stow.documents import DOCUMENT_CLASSES, check_document
from pacsflow.stow.raster import transform_raster
from pacsflow.stow.spool import BulkPart
from pacsflow.stow.video import probe_video

__all__ = ["IMPLEMENTATION_CLASS_UID", "AssembledInstance", "assemble", "bulk_references"]

IMPLEMENTATION_CLASS_UID: Final = "2.25.272474325146417402575893616419358410915"
"""The Implementation Class UID of the files pacsflow writes (a UUID-derived UID, PS3.5 B.2)."""
IMPLEMENTATION_VERSION: Final = "PACSFLOW_0_1"
PIXEL_DATA: Final = 0x7FE00010
ENCAPSULATED_DOCUMENT: Final = 0x00420011
_STREAMED_VRS: Final = frozenset({"OB", "OD", "OF", "OL", "OV", "OW", "UN"})
_NUMBERS: Final = {"US": "<H", "SS": "<h", "UL": "<I", "SL": "<i", "FL": "<f", "FD": "<d"}
_NUMBERS_64: Final = {"SV": "<q", "UV": "<Q"}
_FRAGMENT_MAX: Final = 1 << 30
_CHUNK: Final = 1 << 20
_JPEG2000_TYPES: Final = frozenset({"image/jp2", "image/jph", "image/jphc", "image/j2c"})
_VIDEO_TYPES: Final = frozenset({"video/mp4", "video/mpeg", "video/mpeg2"})
JsonDict = dict[str, Any]


@dataclass(frozen=True, slots=True)
class _Streamed:
    """A top-level value copied from its part: defined length, or encapsulated fragments."""

    tag: int
    vr: str
    part: BulkPart
    offset: int
    length: int
    encapsulated: bool


@dataclass(frozen=True, slots=True)
class AssembledInstance:
    """A complete PS3.10 file, as pieces of bytes and values still in their parts."""

    sop_class_uid: str
    sop_uid: str
    study_uid: str
    transfer_syntax: str
    pieces: tuple[bytes | _Streamed, ...]

    async def chunks(self) -> AsyncIterator[bytes]:
        """The file's bytes, in order."""
        for piece in self.pieces:
            if isinstance(piece, bytes):
                view = memoryview(piece)
                for start in range(0, len(piece), _CHUNK):
                    yield bytes(view[start : start + _CHUNK])
                continue
            group, element = piece.tag >> 16, piece.tag & 0xFFFF
            if not piece.encapsulated:
                padded = piece.length + (piece.length & 1)
                yield struct.pack("<HH2sHI", group, element, piece.vr.encode(), 0, padded)
                async for chunk in piece.part.chunks(piece.offset, piece.length):
                    yield chunk
                if piece.length & 1:
                    yield b"\x00"
                continue
            yield struct.pack("<HH2sHI", group, element, b"OB", 0, 0xFFFFFFFF)
            yield struct.pack("<HHI", 0xFFFE, 0xE000, 0)  # an empty Basic Offset Table
            end = piece.offset + piece.length
            for start in range(piece.offset, end, _FRAGMENT_MAX):
                length = min(_FRAGMENT_MAX, end - start)
                yield struct.pack("<HHI", 0xFFFE, 0xE000, length + (length & 1))
                async for chunk in piece.part.chunks(start, length):
                    yield chunk
                if length & 1:
                    yield b"\x00"
            yield struct.pack("<HHI", 0xFFFE, 0xE0DD, 0)


def bulk_references(item: JsonDict) -> list[str]:
    """Every BulkDataURI of a DICOM JSON data set, nested sequences included."""
    found: list[str] = []
    for attribute in item.values():
        if not isinstance(attribute, dict):
            continue
        uri = attribute.get("BulkDataURI")
        if isinstance(uri, str):
            found.append(uri.strip())
        if attribute.get("vr") == "SQ":
            for nested in attribute.get("Value") or ():
                if isinstance(nested, dict):
                    found.extend(bulk_references(nested))
    return found


def assemble(
    item: JsonDict,
    parts: Mapping[str, BulkPart],
    completion: Completion,
    ordinal: int,
    max_bytes: int,
) -> AssembledInstance:
    """Build one instance from its metadata and bulk data parts (run it off the event loop).

    Raises ``PartRejected`` with the Failure Reason of the instance when it cannot be built.
    """
    item = _clean(item)
    streamed = {
        int(key, 16): attribute
        for key, attribute in item.items()
        if "BulkDataURI" in attribute
        and (
            int(key, 16) in (PIXEL_DATA, ENCAPSULATED_DOCUMENT) or attribute["vr"] in _STREAMED_VRS
        )
    }
    rest = {key: value for key, value in item.items() if int(key, 16) not in streamed}

    def bulk(tag: str, vr: str, uri: str) -> Any:
        return _value(vr, parts[uri.strip()].read_all())

    try:
        ds = Dataset.from_json(rest, bulk)
    except PartRejected:
        raise
    except Exception as exc:  # pydicom raises many types on a malformed data set
        raise PartRejected(
            FailureReason.CANNOT_UNDERSTAND, f"the metadata cannot be read: {exc}"
        ) from exc
    pieces: dict[int, _Streamed] = {}
    content, syntax = Content("none"), str(ExplicitVRLittleEndian)
    for tag, attribute in sorted(streamed.items()):
        part = parts[attribute["BulkDataURI"].strip()]
        if tag == PIXEL_DATA and part.media_type != "application/octet-stream":
            media = _probe(part, max_bytes)
            content = Content(
                "pixels", part.media_type, media.attributes, media.lossy_method, 0, media.guessed
            )
            syntax = media.transfer_syntax
            if media.native is not None:
                ds.add_new(
                    PIXEL_DATA,
                    "OB" if media.attributes["BitsAllocated"] <= 8 else "OW",
                    media.native,
                )
            elif media.span is not None:
                pieces[tag] = _Streamed(tag, "OB", part, media.span[0], media.span[1], True)
            continue
        if tag == ENCAPSULATED_DOCUMENT:
            if part.media_type not in DOCUMENT_CLASSES:
                raise PartRejected(
                    FailureReason.TRANSFER_SYNTAX_NOT_SUPPORTED,
                    f"an Encapsulated Document of media type {part.media_type} is not supported;"
                    " application/pdf, text/xml (CDA) and model/stl are",
                )
            check_document(part.reader(), part.media_type, part.size)
            content = Content("document", part.media_type, size=part.size)
        elif part.media_type != "application/octet-stream":
            raise PartRejected(
                FailureReason.DATA_SET_DOES_NOT_MATCH_SOP_CLASS,
                f"bulk data of ({tag >> 16:04X},{tag & 0xFFFF:04X}) is {part.media_type};"
                " uncompressed bulk data is application/octet-stream (PS3.18 10.5.1.4)",
            )
        elif tag == PIXEL_DATA:
            content = Content("native", part.media_type)
        if part.size > 0xFFFFFFFE:
            raise PartRejected(FailureReason.OUT_OF_RESOURCES, "a bulk value above 4 GiB")
        vr = "OB" if tag == ENCAPSULATED_DOCUMENT else attribute["vr"]
        pieces[tag] = _Streamed(tag, vr, part, 0, part.size, False)
    if content.kind == "none" and PIXEL_DATA in ds:
        content = Content("native", "application/octet-stream")
    completion.complete(ds, content, ordinal)
    return AssembledInstance(
        str(ds.SOPClassUID),
        str(ds.SOPInstanceUID),
        str(ds.StudyInstanceUID),
        syntax,
        (_file_meta(ds, syntax), *_encode(ds, pieces)),
    )


def _clean(item: JsonDict) -> JsonDict:
    """Upper-case tags; no File Meta or group length (PS3.18 F.2.2); UTF-8 when not ASCII."""
    cleaned: JsonDict = {}
    for key, attribute in item.items():
        if not isinstance(key, str) or len(key) != 8 or not isinstance(attribute, dict):
            raise PartRejected(
                FailureReason.CANNOT_UNDERSTAND, f"{str(key)[:20]!r} is not a DICOM JSON attribute"
            )
        try:
            tag = int(key, 16)
        except ValueError:
            raise PartRejected(
                FailureReason.CANNOT_UNDERSTAND, f"{key!r} is not a tag (8 hex digits)"
            ) from None
        if tag >> 16 != 0x0002 and tag & 0xFFFF != 0 and isinstance(attribute.get("vr"), str):
            cleaned[key.upper()] = attribute
        elif not isinstance(attribute.get("vr"), str):
            raise PartRejected(FailureReason.CANNOT_UNDERSTAND, f"attribute {key} has no vr")
    if "00080005" not in cleaned and not _ascii(cleaned):
        cleaned["00080005"] = {"vr": "CS", "Value": ["ISO_IR 192"]}  # PS3.18 F.2: UTF-8
    return cleaned


def _ascii(value: Any) -> bool:
    if isinstance(value, str):
        return value.isascii()
    if isinstance(value, dict):
        return all(_ascii(v) for k, v in value.items() if k != "InlineBinary")
    if isinstance(value, list):
        return all(_ascii(v) for v in value)
    return True


def _value(vr: str, data: bytes) -> Any:
    """A nested bulk value as pydicom holds it (F.2.7: the Value Field, little endian)."""
    if vr in _NUMBERS or vr in _NUMBERS_64:
        code = _NUMBERS.get(vr) or _NUMBERS_64[vr]
        size = struct.calcsize(code)
        values = [
            struct.unpack_from(code, data, i)[0] for i in range(0, len(data) - size + 1, size)
        ]
        return values[0] if len(values) == 1 else values
    if vr in ("DS", "IS", "LT", "ST", "UC", "UT"):
        return data.decode("utf-8", "replace").rstrip("\x00 ")
    return data


def _probe(part: BulkPart, max_bytes: int) -> PixelMedia:
    """Pixel Data of a compressed or raster media type (PS3.18 Table 10.5.2-1)."""
    media = part.media_type
    if media == "image/jpeg":
        return probe_jpeg(part.reader(), part.size)
    if media in _JPEG2000_TYPES:
        return probe_jpeg2000(part.reader(), part.size, media)
    if media in ("image/png", "image/gif"):
        return transform_raster(part.reader(), media, max_bytes)
    if media in _VIDEO_TYPES:
        return probe_video(part.reader(), media, part.size)
    raise PartRejected(
        FailureReason.TRANSFER_SYNTAX_NOT_SUPPORTED,
        f"Pixel Data of media type {media} is not supported: image/jpeg, image/jp2, image/jph,"
        " image/png, image/gif, video/mp4, video/mpeg or application/octet-stream"
        " (PS3.18 Table 10.5.2-1)",
    )


def _file_meta(ds: Dataset, syntax: str) -> bytes:
    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = ds.SOPClassUID
    meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
    meta.TransferSyntaxUID = UID(syntax)
    meta.ImplementationClassUID = UID(IMPLEMENTATION_CLASS_UID)
    meta.ImplementationVersionName = IMPLEMENTATION_VERSION
    fp = _writer()
    write_file_meta_info(fp, meta, enforce_standard=True)
    return b"\x00" * 128 + b"DICM" + fp.getvalue()


def _writer() -> DicomBytesIO:
    fp = DicomBytesIO()
    fp.is_little_endian, fp.is_implicit_VR = True, False
    return fp


def _encode(ds: Dataset, streamed: dict[int, _Streamed]) -> list[bytes | _Streamed]:
    """The data set's elements in tag order, streamed values where they belong (PS3.5 7.1)."""
    encodings = convert_encodings(ds.get("SpecificCharacterSet") or "ISO_IR 6")
    pieces: list[bytes | _Streamed] = []
    fp = _writer()
    for tag in sorted({int(t) for t in ds.keys()} | set(streamed)):  # noqa: SIM118
        if tag in streamed:
            pieces += [fp.getvalue(), streamed[tag]]
            fp = _writer()
            continue
        try:
            write_data_element(fp, ds[tag], encodings)
        except Exception as exc:  # pydicom raises many types on a value it cannot encode
            raise PartRejected(
                FailureReason.CANNOT_UNDERSTAND, f"attribute {tag:08X} cannot be encoded: {exc}"
            ) from exc
    pieces.append(fp.getvalue())
    return [p for p in pieces if not isinstance(p, bytes) or p]
