"""Complete validation of one stored instance before it is indexed (PS3.18 10.5, PS3.4 B.4).

Checks, in order: the strict structure scan (``scan``), a complete parse with pydicom, the
attributes that place the instance in the patient/study/series/instance hierarchy, the UID
syntax (PS3.5 9.1, leading zeros tolerated), the SOP Class (non-patient objects belong to
other services), and for images the Pixel Data: its size against the Image Pixel Module, each
frame's codestream headers (``pacsflow.dicom.codestream``) and, with ``decode_pixels``, every
frame decoded with the codec package of its transfer syntax.
"""

from __future__ import annotations

import io
import logging
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, BinaryIO, Final

import pydicom
from pydicom.dataset import Dataset
from pydicom.uid import (
    HEVCM10P51,
    HEVCMP51,
    JPEG2000MC,
    MPEG2MPHL,
    MPEG2MPML,
    MPEG4HP41,
    MPEG4HP41BD,
    MPEG4HP42STEREO,
    MPEG4HP422D,
    MPEG4HP423D,
    JPEG2000MCLossless,
    MediaStorageDirectoryStorage,
    RLELossless,
)

from pacsflow.dicom.codestream import HEAD_BYTES, CodestreamError, check_codestream
from pacsflow.dicom.frames import (
    FrameTable,
    ImageGeometry,
    build_frame_table,
)
from pacsflow.dicom.header import PartRejected
from pacsflow.dicom.metadata import bulkdata_path, dataset_to_json
from pacsflow.dicom.scan import PIXEL_DATA, PixelLayout, ScanResult, StructureError, scan
from pacsflow.dicom.status import FailureReason
from pacsflow.dicom.uids import (
    JPEG2000_FAMILY,
    JPEG_FAMILY,
    NATIVE_TRANSFER_SYNTAXES,
    NON_PATIENT_SOP_CLASSES,
    is_valid_uid,
)

__all__ = ["ValidatedInstance", "validate_instance"]

log = logging.getLogger(__name__)

# Encapsulated transfer syntaxes pacsflow stores without decoding (video, JPIP, JPEG 2000 Part 2
# multi-component): their structure is checked, their codestreams are not.
_STORED_AS_IS: Final = frozenset(
    {
        JPEG2000MCLossless,
        JPEG2000MC,
        "1.2.840.10008.1.2.4.94",  # JPIP Referenced (pydicom names no constant for it)
        "1.2.840.10008.1.2.4.95",  # JPIP Referenced Deflate
        MPEG2MPML,
        MPEG2MPHL,
        MPEG4HP41,
        MPEG4HP41BD,
        MPEG4HP422D,
        MPEG4HP423D,
        MPEG4HP42STEREO,
        HEVCMP51,
        HEVCM10P51,
    }
)
_DEFER: Final = 64 * 1024


@dataclass(slots=True)
class ValidatedInstance:
    """An instance that passed validation, with what ingest stores and indexes."""

    study_uid: str
    series_uid: str
    sop_uid: str
    sop_class_uid: str
    transfer_syntax: str
    metadata: dict[str, Any]
    frame_table: FrameTable | None
    has_file_meta: bool
    notes: list[str] = field(default_factory=list)
    bulk: dict[str, tuple[int, int]] = field(default_factory=dict)  # BulkDataURI path → range


def validate_instance(
    source: Path | bytes,
    size: int,
    instance_path: str,
    *,
    decode_pixels: bool = False,
    non_patient: bool = False,
) -> ValidatedInstance:
    """Validate an object (a file, or bytes in memory); raise ``PartRejected`` if refused.

    ``instance_path`` is the instance's path below the DICOMweb root, used for BulkDataURIs.
    ``non_patient``: the object was stored at a Non-Patient Instance resource (PS3.18 12.5),
    must be of an NPI SOP Class and is filed under its SOP Instance UID as study and series.
    """
    with source.open("rb") if isinstance(source, Path) else io.BytesIO(source) as fp:
        try:
            result = scan(fp, size)
        except StructureError as exc:
            raise PartRejected(FailureReason.CANNOT_UNDERSTAND, f"malformed DICOM: {exc}") from exc
        _check_transfer_syntax(result)
        ds = _parse(source)
        uids = _hierarchy(ds, non_patient)
        try:
            metadata = dataset_to_json(ds, instance_path.format(**uids))
        except (ValueError, TypeError, KeyError, UnicodeError, OverflowError) as exc:
            raise PartRejected(
                FailureReason.CANNOT_UNDERSTAND, f"an attribute cannot be decoded: {exc}"
            ) from exc
        frame_table = None
        if result.pixel is not None and "Rows" in ds and result.addressable:
            frame_table = _frames(ds, result, result.pixel, fp, decode_pixels)
    return ValidatedInstance(
        study_uid=uids["study"],
        series_uid=uids["series"],
        sop_uid=uids["instance"],
        sop_class_uid=uids["sop_class"],
        transfer_syntax=result.transfer_syntax,
        metadata=metadata,
        frame_table=frame_table,
        has_file_meta=result.has_file_meta,
        notes=list(result.notes),
        bulk=_bulk(result),
    )


def _bulk(result: ScanResult) -> dict[str, tuple[int, int]]:
    """Byte ranges of the bulk values other than Pixel Data, by their BulkDataURI path."""
    if not result.addressable:
        return {}
    return {
        bulkdata_path(value.path): (value.offset, value.length)
        for value in result.bulk
        if value.path != (PIXEL_DATA,) and value.length != 0xFFFFFFFF
    }


def _check_transfer_syntax(result: ScanResult) -> None:
    ts = result.transfer_syntax
    if (
        ts in NATIVE_TRANSFER_SYNTAXES
        or ts in JPEG_FAMILY
        or ts in JPEG2000_FAMILY
        or ts == RLELossless
        or ts in _STORED_AS_IS
    ):
        return
    raise PartRejected(
        FailureReason.TRANSFER_SYNTAX_NOT_SUPPORTED, f"unknown transfer syntax {ts!r}"
    )


def _parse(source: Path | bytes) -> Dataset:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            if isinstance(source, Path):  # large values stay on disk until asked for
                ds = pydicom.dcmread(source, force=True, defer_size=_DEFER)
            else:
                ds = pydicom.dcmread(io.BytesIO(source), force=True)
        except Exception as exc:  # pydicom raises many types on bad input
            raise PartRejected(
                FailureReason.CANNOT_UNDERSTAND, f"pydicom cannot parse it: {exc}"
            ) from exc
    return ds


def _hierarchy(ds: Dataset, non_patient: bool) -> dict[str, str]:
    names = {
        "sop_class": "SOPClassUID",
        "instance": "SOPInstanceUID",
        "study": "StudyInstanceUID",
        "series": "SeriesInstanceUID",
    }
    uids: dict[str, str] = {}
    for key, keyword in names.items():
        try:
            value = str(ds.get(keyword, "") or "").strip()
        except Exception as exc:  # a value that pydicom cannot convert
            raise PartRejected(
                FailureReason.CANNOT_UNDERSTAND, f"{keyword} cannot be read: {exc}"
            ) from exc
        uids[key] = value
    meta = getattr(ds, "file_meta", None)
    sop_class = uids["sop_class"] or str(getattr(meta, "MediaStorageSOPClassUID", "") or "")
    if non_patient:
        if sop_class not in NON_PATIENT_SOP_CLASSES or sop_class == MediaStorageDirectoryStorage:
            raise PartRejected(
                FailureReason.SOP_CLASS_NOT_SUPPORTED,
                f"SOP Class {sop_class[:64]!r} is not a non-patient object (PS3.18 12.1.1)",
            )
        uids["study"] = uids["series"] = uids["instance"]
    elif sop_class in NON_PATIENT_SOP_CLASSES:
        raise PartRejected(
            FailureReason.SOP_CLASS_NOT_SUPPORTED,
            f"{NON_PATIENT_SOP_CLASSES[sop_class]} is not a patient/study object: "
            "it belongs to the Non-Patient Instance service, not to the Studies service",
        )
    missing = [names[k] for k, v in uids.items() if not v]
    if missing:
        raise PartRejected(
            FailureReason.DATA_SET_DOES_NOT_MATCH_SOP_CLASS,
            "the data set lacks " + ", ".join(missing) + ", needed to place it in a study",
        )
    for key, value in uids.items():
        if not is_valid_uid(value, strict=False):
            raise PartRejected(
                FailureReason.DATA_SET_DOES_NOT_MATCH_SOP_CLASS,
                f"{names[key]} {value[:80]!r} is not a valid UID (PS3.5 9.1)",
            )
    return uids


def _frames(
    ds: Dataset, result: ScanResult, layout: PixelLayout, fp: BinaryIO, decode: bool
) -> FrameTable:
    try:
        geometry = ImageGeometry.of(ds)
        table = build_frame_table(layout, geometry, result.transfer_syntax, fp)
    except (AttributeError, ValueError, TypeError) as exc:
        raise PartRejected(
            FailureReason.DATA_SET_DOES_NOT_MATCH_SOP_CLASS,
            f"Pixel Data does not match the Image Pixel Module: {exc}",
        ) from exc
    ts = result.transfer_syntax
    if table.encapsulated:
        for number, segments in enumerate(table.frames, start=1):
            if decode:
                data = b"".join(_read(fp, offset, length) for offset, length in segments)
                _check_frame(ts, data, data[-3:], len(data), number, geometry)
                _decode_frame(result.transfer_syntax, data, geometry, number)
            elif segments:
                (first, first_length), (last, last_length) = segments[0], segments[-1]
                head = _read(fp, first, min(first_length, HEAD_BYTES))
                tail = _read(fp, last + max(last_length - 3, 0), min(last_length, 3))
                size = sum(length for _, length in segments)
                if len(segments) > 1 and len(head) < HEAD_BYTES:
                    head = b"".join(_read(fp, o, n) for o, n in segments)[:HEAD_BYTES]
                _check_frame(ts, head, tail, size, number, geometry)
    return table


def _check_frame(
    ts: str, head: bytes, tail: bytes, size: int, number: int, geometry: ImageGeometry
) -> None:
    shape = (geometry.rows, geometry.columns, geometry.samples_per_pixel)
    try:
        check_codestream(ts, head, tail, size, shape)
    except CodestreamError as exc:
        raise PartRejected(FailureReason.CANNOT_UNDERSTAND, f"frame {number}: {exc}") from exc


def _read(fp: BinaryIO, offset: int, length: int) -> bytes:
    fp.seek(offset)
    return fp.read(length)


def _decode_frame(ts: str, data: bytes, geometry: ImageGeometry, number: int) -> None:
    """Decode one frame with its codec package; a codestream that fails is refused."""
    try:
        if ts in JPEG_FAMILY:
            from libjpeg.utils import decode as jpeg_decode

            jpeg_decode(data)
        elif ts in JPEG2000_FAMILY:
            from openjpeg.utils import decode as j2k_decode

            j2k_decode(data)
        elif ts == RLELossless:
            from rle.utils import decode_pixel_data as rle_decode

            rle_decode(
                data,
                version=2,
                rows=geometry.rows,
                columns=geometry.columns,
                bits_allocated=geometry.bits_allocated,
                samples_per_pixel=geometry.samples_per_pixel,
                number_of_frames=1,
                pixel_keyword="PixelData",
            )
    except Exception as exc:  # codec packages raise RuntimeError/ValueError variously
        raise PartRejected(
            FailureReason.CANNOT_UNDERSTAND, f"frame {number} cannot be decoded ({ts}): {exc}"
        ) from exc
