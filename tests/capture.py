"""A WIC-style capture client for the tests: metadata from a patient/study context, real media.

An Image Capturer (IHE RAD WIC) knows the patient and the study (from a worklist, a QR code or
the viewer it runs in), captures a photo, a video or a document and sends it with STOW-RS as
DICOM JSON or XML metadata plus bulk data (PS3.18 10.5.1.4), leaving SOP Instance UID, series
and the Image Pixel Description to the Image Manager. Media are made by real encoders: Pillow
(JPEG, PNG, GIF, JPEG 2000, PDF), PyAV/FFmpeg (H.264 MP4, MPEG-2), and written to the format's
specification (CDA XML, binary STL).
"""

from __future__ import annotations

import io
import struct
import uuid
from dataclasses import dataclass, field
from fractions import Fraction
from typing import Any

import av
import numpy as np
from PIL import Image

from pacsflow.dicom.xml import dataset_to_xml

JsonDict = dict[str, Any]
PIXEL_DATA = "7FE00010"
ENCAPSULATED_DOCUMENT = "00420011"


@dataclass(frozen=True)
class PatientContext:
    """What the capture app knows before it captures: the patient and (maybe) the study."""

    patient_id: str = "WIC-0001"
    patient_name: str = "Capture^Wendy"
    birth_date: str = "19800101"
    sex: str = "F"
    study_uid: str | None = None
    accession: str = "ACC-WIC-1"

    def attributes(self) -> JsonDict:
        out: JsonDict = {
            "00080050": {"vr": "SH", "Value": [self.accession]},
            "00100010": {"vr": "PN", "Value": [{"Alphabetic": self.patient_name}]},
            "00100020": {"vr": "LO", "Value": [self.patient_id]},
            "00100030": {"vr": "DA", "Value": [self.birth_date]},
            "00100040": {"vr": "CS", "Value": [self.sex]},
        }
        if self.study_uid:
            out["0020000D"] = {"vr": "UI", "Value": [self.study_uid]}
        return out


@dataclass
class Bulk:
    """One bulk data part: its Content-Location, media type and bytes."""

    media_type: str
    data: bytes
    location: str = field(default_factory=lambda: f"urn:uuid:{uuid.uuid4()}")


@dataclass
class Capture:
    """One instance to send: its metadata (DICOM JSON) and its bulk data parts."""

    metadata: JsonDict
    bulk: list[Bulk] = field(default_factory=list)


def capture(
    context: PatientContext, media_type: str, data: bytes, tag: str = PIXEL_DATA, **extra: Any
) -> Capture:
    """A capture of one photo/video (Pixel Data) or document, with only the context's metadata."""
    part = Bulk(media_type, data)
    metadata = {**context.attributes(), **extra}
    metadata[tag] = {"vr": "OB", "BulkDataURI": part.location}
    return Capture(dict(sorted(metadata.items())), [part])


def _part(media_type: str, data: bytes, location: str | None = None) -> bytes:
    head = f"Content-Type: {media_type}\r\n"
    if location is not None:
        head += f"Content-Location: {location}\r\n"
    return head.encode() + b"\r\n" + data


def _body(parts: list[bytes]) -> tuple[bytes, str]:
    boundary = uuid.uuid4().hex
    chunks = [f"--{boundary}\r\n".encode() + p + b"\r\n" for p in parts]
    return b"".join(chunks) + f"--{boundary}--\r\n".encode(), boundary


def json_request(captures: list[Capture]) -> tuple[bytes, str]:
    """The body and Content-Type of a JSON metadata + bulk data request (one JSON part)."""
    import orjson

    metadata = orjson.dumps([c.metadata for c in captures])
    parts = [_part("application/dicom+json", metadata)]
    parts += [_part(b.media_type, b.data, b.location) for c in captures for b in c.bulk]
    body, boundary = _body(parts)
    return body, f'multipart/related; type="application/dicom+json"; boundary={boundary}'


def xml_request(captures: list[Capture]) -> tuple[bytes, str]:
    """The body and Content-Type of an XML request (one Native DICOM Model part per instance)."""
    parts = [_part("application/dicom+xml", dataset_to_xml(c.metadata)) for c in captures]
    parts += [_part(b.media_type, b.data, b.location) for c in captures for b in c.bulk]
    body, boundary = _body(parts)
    return body, f'multipart/related; type="application/dicom+xml"; boundary={boundary}'


def photo(width: int = 96, height: int = 64, seed: int = 1) -> np.ndarray:
    """A smooth colour test image (what a camera sees compresses like a camera picture)."""
    y, x = np.mgrid[0:height, 0:width]
    rng = np.random.default_rng(seed)
    noise = rng.integers(0, 8, (height, width, 3))
    rgb = np.stack([x * 255 // width, y * 255 // height, (x + y) * 127 // (width + height)], -1)
    return np.clip(rgb + noise, 0, 255).astype(np.uint8)


def encode(array: np.ndarray, fmt: str, **options: Any) -> bytes:
    """``array`` written by Pillow in ``fmt`` (JPEG, PNG, GIF, JPEG2000, PDF)."""
    buffer = io.BytesIO()
    Image.fromarray(array).save(buffer, format=fmt, **options)
    return buffer.getvalue()


def gif(frames: list[np.ndarray], duration_ms: int = 100) -> bytes:
    """An animated GIF (Pillow)."""
    images = [Image.fromarray(f) for f in frames]
    buffer = io.BytesIO()
    images[0].save(
        buffer, format="GIF", save_all=True, append_images=images[1:], duration=duration_ms, loop=0
    )
    return buffer.getvalue()


def video(frames: list[np.ndarray], fmt: str = "mp4", rate: int = 10) -> bytes:
    """Frames encoded by FFmpeg through PyAV: H.264 in MP4, or MPEG-2 in an MPEG program stream."""
    buffer = io.BytesIO()
    codec = "libx264" if fmt == "mp4" else "mpeg2video"
    with av.open(buffer, "w", format=fmt) as container:
        stream = container.add_stream(codec, rate=Fraction(rate))
        stream.height, stream.width = frames[0].shape[:2]
        stream.pix_fmt = "yuv420p"
        if codec == "mpeg2video":
            stream.codec_context.profile = "Main"
        for frame in frames:
            for packet in stream.encode(av.VideoFrame.from_ndarray(frame, format="rgb24")):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
    return buffer.getvalue()


def cda(title: str = "Wound care note") -> bytes:
    """A minimal HL7 CDA R2 document (the root and header elements CDA requires)."""
    return f"""<?xml version="1.0" encoding="UTF-8"?>
<ClinicalDocument xmlns="urn:hl7-org:v3">
  <typeId root="2.16.840.1.113883.1.3" extension="POCD_HD000040"/>
  <id root="{uuid.uuid4()}"/>
  <code code="34109-9" codeSystem="2.16.840.1.113883.6.1" displayName="Note"/>
  <title>{title}</title>
  <effectiveTime value="20240314120000"/>
  <confidentialityCode code="N" codeSystem="2.16.840.1.113883.5.25"/>
  <recordTarget><patientRole><id extension="WIC-0001" root="1.2.3"/></patientRole></recordTarget>
  <component><nonXMLBody><text>Healing well.</text></nonXMLBody></component>
</ClinicalDocument>
""".encode()


def stl() -> bytes:
    """A binary STL tetrahedron: 80-byte header, triangle count, 50 bytes per facet."""
    v = [(0.0, 0.0, 0.0), (10.0, 0.0, 0.0), (0.0, 10.0, 0.0), (0.0, 0.0, 10.0)]
    faces = [(0, 2, 1), (0, 1, 3), (0, 3, 2), (1, 2, 3)]
    out = bytearray(b"pacsflow test tetrahedron".ljust(80, b" "))
    out += struct.pack("<I", len(faces))
    for a, b, c in faces:
        normal = np.cross(np.subtract(v[b], v[a]), np.subtract(v[c], v[a]))
        normal = normal / np.linalg.norm(normal)
        out += struct.pack("<12fH", *normal, *v[a], *v[b], *v[c], 0)
    return bytes(out)
