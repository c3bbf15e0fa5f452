"""Instance completion by the Image Manager of IHE Web-based Image Capture (WIC).

An Image Capturer sends the patient and study context it knows with a photo, a video or a
document; the Image Manager turns that into a complete DICOM instance (IHE RAD WIC: "the Image
Manager converts received objects into DICOM binary instances", metadata enhancement). PS3.18
10.5.2 lets the origin server add what the request omits and derive the Image Pixel Description
from the media; what it adds never replaces a value the client sent. Done here, in order:

* SOP Class UID from the media when absent (photo: VL Photographic, animated GIF: Multi-frame
  True Color Secondary Capture, video: Video Photographic, PDF/CDA/STL: the Encapsulated
  Document class of PS3.4 B.5), and checked against the media when present;
* Study Instance UID (the target study of ``/studies/{study}``, else one new study per patient
  in the request), Series Instance UID (one new series per study and modality), SOP Instance
  UID, generated (2.25 UUID-derived UIDs, PS3.5 B.2) when absent;
* Instance Creation Date/Time, Modality, Instance Number, the Type 2 attributes of the Patient,
  General Study, General Series and General Equipment modules (empty), and what the IOD of the
  class requires (Conversion Type, Image Type, Content Date/Time, the Encapsulated Document and
  Manufacturing 3D Model modules).

docs/conformance.md lists what is completed and what is refused.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Final

from pydicom.datadict import tag_for_keyword
from pydicom.dataset import Dataset
from pydicom.sequence import Sequence
from pydicom.uid import (
    UID,
    EncapsulatedSTLStorage,
    MultiFrameTrueColorSecondaryCaptureImageStorage,
    VideoPhotographicImageStorage,
    VLPhotographicImageStorage,
    generate_uid,
)

from pacsflow.dicom.header import PartRejected
from pacsflow.dicom.status import FailureReason
from pacsflow.stow.documents import DOCUMENT_CLASSES

__all__ = ["Completion", "Content"]

_STRICT: Final = (
    "Rows",
    "Columns",
    "SamplesPerPixel",
    "PhotometricInterpretation",
    "PlanarConfiguration",
    "BitsAllocated",
    "BitsStored",
    "HighBit",
    "PixelRepresentation",
    "NumberOfFrames",
)
_PIXEL_DESCRIPTION: Final = ("Rows", "Columns", "SamplesPerPixel", "PhotometricInterpretation")
_TYPE2: Final = (
    "PatientName",
    "PatientID",
    "PatientBirthDate",
    "PatientSex",
    "StudyDate",
    "StudyTime",
    "ReferringPhysicianName",
    "StudyID",
    "AccessionNumber",
    "SeriesNumber",
    "Manufacturer",
)
_MODALITY: Final = {
    "VL Photographic": "XC",
    "Video Photographic": "XC",
    "VL Endoscopic": "ES",
    "Video Endoscopic": "ES",
    "VL Microscopic": "GM",
    "Video Microscopic": "GM",
    "Secondary Capture": "OT",
    "Multi-frame": "OT",
    "Encapsulated PDF": "DOC",
    "Encapsulated CDA": "DOC",
    "Encapsulated STL": "M3D",
}


@dataclass(frozen=True, slots=True)
class Content:
    """What an instance's bulk data is: ``pixels`` (compressed or transformed media),
    ``native`` (``application/octet-stream`` Pixel Data), ``document``, or ``none``."""

    kind: str
    media_type: str = ""
    attributes: dict[str, Any] = field(default_factory=dict)
    lossy_method: str | None = None
    size: int = 0
    guessed: frozenset[str] = frozenset()


def _name(sop_class: str) -> str:
    name = UID(sop_class).name
    return "" if name == sop_class else name


def _mismatch(why: str) -> PartRejected:
    return PartRejected(FailureReason.DATA_SET_DOES_NOT_MATCH_SOP_CLASS, why)


def sop_class_for(given: str, content: Content) -> str:
    """The SOP Class UID of an instance: the one given, checked against the media, or the one
    the media implies."""
    media = content.media_type
    if not given:
        if content.kind == "document":
            return DOCUMENT_CLASSES[media]
        if content.kind == "pixels" and media.startswith("video/"):
            return VideoPhotographicImageStorage
        if content.kind == "pixels" and int(content.attributes.get("NumberOfFrames", 1)) > 1:
            return MultiFrameTrueColorSecondaryCaptureImageStorage
        if content.kind == "pixels":
            return VLPhotographicImageStorage
        raise _mismatch("the data set has no SOP Class UID (0008,0016) and no media implies one")
    name = _name(given)
    if not name:  # a class this archive does not know: stored as sent (PS3.4 B.4.1)
        return given
    if content.kind == "document" and DOCUMENT_CLASSES.get(media) != given:
        raise _mismatch(f"a {media} document cannot be the Encapsulated Document of {name}")
    if content.kind in ("pixels", "native"):
        video = name.startswith("Video ")
        if not name.endswith("Image Storage"):
            raise _mismatch(f"{name} has no Pixel Data; a {media} part cannot be stored in it")
        if content.kind == "pixels" and video != media.startswith("video/"):
            kind = "video" if video else "single-image"
            raise _mismatch(f"{name} is a {kind} SOP Class; a {media} part does not fit it")
    return given


@dataclass(slots=True)
class Completion:
    """Completes the instances of one request, so that those of one capture share UIDs."""

    target_study: str | None
    now: datetime = field(default_factory=datetime.now)
    studies: dict[tuple[str, str], str] = field(default_factory=dict)
    series: dict[tuple[str, str], str] = field(default_factory=dict)

    def complete(self, ds: Dataset, content: Content, ordinal: int) -> None:
        """Add to ``ds`` what the request omitted; raise ``PartRejected`` for what it cannot."""
        sop_class = sop_class_for(str(ds.get("SOPClassUID", "") or ""), content)
        ds.SOPClassUID = sop_class
        name = _name(sop_class)
        modality = str(ds.get("Modality", "") or "") or next(
            (m for prefix, m in _MODALITY.items() if name.startswith(prefix)), "OT"
        )
        ds.Modality = modality
        if not ds.get("StudyInstanceUID"):
            patient = (
                str(ds.get("PatientID", "") or ""),
                str(ds.get("IssuerOfPatientID", "") or ""),
            )
            study = self.target_study or self.studies.setdefault(patient, generate_uid(None))
            ds.StudyInstanceUID = study
        if not ds.get("SeriesInstanceUID"):
            key = (str(ds.StudyInstanceUID), modality)
            ds.SeriesInstanceUID = self.series.setdefault(key, generate_uid(None))
        if not ds.get("SOPInstanceUID"):
            ds.SOPInstanceUID = generate_uid(None)
        if not ds.get("InstanceCreationDate"):
            ds.InstanceCreationDate = self.now.strftime("%Y%m%d")
            ds.InstanceCreationTime = self.now.strftime("%H%M%S.%f")
        if ds.get("InstanceNumber") in (None, ""):
            ds.InstanceNumber = ordinal
        for keyword in _TYPE2:
            if keyword not in ds:
                setattr(ds, keyword, None)
        if content.kind in ("pixels", "native"):
            self._image(ds, name, content)
        if content.kind == "document":
            self._document(ds, sop_class, content)

    def _image(self, ds: Dataset, name: str, content: Content) -> None:
        if content.kind == "native":
            missing = [k for k in _PIXEL_DESCRIPTION if ds.get(k) in (None, "")]
            if missing or ds.get("BitsAllocated") in (None, ""):
                raise _mismatch(
                    "application/octet-stream Pixel Data needs the Image Pixel Description; the"
                    " data set lacks " + ", ".join(missing or ["BitsAllocated"])
                )
            return
        for keyword, value in content.attributes.items():
            sent = ds.get(keyword)
            if sent in (None, "") or keyword not in _STRICT or keyword in content.guessed:
                if sent in (None, ""):
                    setattr(ds, keyword, value)
                continue
            if str(sent).strip() != str(value):
                tag = tag_for_keyword(keyword) or 0
                raise _mismatch(
                    f"{keyword} ({tag >> 16:04X},{tag & 0xFFFF:04X}) is {sent} in the metadata"
                    f" but {value} in the {content.media_type} part (PS3.18 10.5.2)"
                )
        if content.lossy_method is not None:
            if str(ds.get("LossyImageCompression", "") or "") == "00":
                raise _mismatch(
                    f"Lossy Image Compression (0028,2110) is 00 but the {content.media_type}"
                    " part is lossy compressed"
                )
            ds.LossyImageCompression = "01"
            if not ds.get("LossyImageCompressionMethod"):
                ds.LossyImageCompressionMethod = content.lossy_method
        if name.startswith(("VL ", "Video ")):
            if not ds.get("ImageType"):
                ds.ImageType = ["ORIGINAL", "PRIMARY"]
            if "AcquisitionContextSequence" not in ds:
                ds.AcquisitionContextSequence = Sequence()
        if not ds.get("ContentDate"):
            ds.ContentDate = ds.InstanceCreationDate
            ds.ContentTime = ds.get("InstanceCreationTime", None)
        if "Secondary Capture" in name and not ds.get("ConversionType"):
            ds.ConversionType = "WSD"

    def _document(self, ds: Dataset, sop_class: str, content: Content) -> None:
        media = content.media_type
        sent = str(ds.get("MIMETypeOfEncapsulatedDocument", "") or "").strip().lower()
        if sent and sent != media:
            raise _mismatch(
                f"MIME Type of Encapsulated Document (0042,0012) is {sent} but the part is {media}"
            )
        ds.MIMETypeOfEncapsulatedDocument = media
        ds.EncapsulatedDocumentLength = content.size
        for keyword, empty in (("DocumentTitle", None), ("ConceptNameCodeSequence", Sequence())):
            if keyword not in ds:
                setattr(ds, keyword, empty)
        if not ds.get("BurnedInAnnotation"):
            ds.BurnedInAnnotation = "YES"
        if not ds.get("ContentDate"):
            ds.ContentDate = ds.InstanceCreationDate
            ds.ContentTime = ds.get("InstanceCreationTime", None)
        if sop_class != EncapsulatedSTLStorage:
            if not ds.get("ConversionType"):
                ds.ConversionType = "SD" if media == "application/pdf" else "WSD"
            return
        if not ds.get("FrameOfReferenceUID"):
            ds.FrameOfReferenceUID = generate_uid(None)
        if "MeasurementUnitsCodeSequence" not in ds:
            unit = Dataset()
            unit.CodeValue, unit.CodingSchemeDesignator, unit.CodeMeaning = "mm", "UCUM", "mm"
            ds.MeasurementUnitsCodeSequence = Sequence([unit])
        for keyword in ("Manufacturer", "ManufacturerModelName", "DeviceSerialNumber"):
            if not ds.get(keyword):
                setattr(ds, keyword, "UNKNOWN")
        if not ds.get("SoftwareVersions"):
            ds.SoftwareVersions = "UNKNOWN"
