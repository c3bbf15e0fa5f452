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
import orjson
from PIL import Image

from pacsflow.dicom.xml import dataset_to_xml
from pacsflow.media.multipart_out import Multipart

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


def multipart_body(root: str, parts: list[tuple[str, bytes, str | None]]) -> tuple[bytes, str]:
    """A multipart/related body of (media type, bytes, Content-Location) parts, and its
    Content-Type with ``type`` = ``root``."""
    body = Multipart(root)
    chunks = [
        body.part(media, data, **({"Content_Location": location} if location else {}))
        for media, data, location in parts
    ]
    return b"".join(chunks) + body.end(), body.content_type


def json_request(captures: list[Capture]) -> tuple[bytes, str]:
    """The body and Content-Type of a JSON metadata + bulk data request (one JSON part)."""
    metadata = orjson.dumps([c.metadata for c in captures])
    parts: list[tuple[str, bytes, str | None]] = [("application/dicom+json", metadata, None)]
    parts += [(b.media_type, b.data, b.location) for c in captures for b in c.bulk]
    return multipart_body("application/dicom+json", parts)


def xml_request(captures: list[Capture]) -> tuple[bytes, str]:
    """The body and Content-Type of an XML request (one Native DICOM Model part per instance)."""
    parts: list[tuple[str, bytes, str | None]] = [
        ("application/dicom+xml", dataset_to_xml(c.metadata), None) for c in captures
    ]
    parts += [(b.media_type, b.data, b.location) for c in captures for b in c.bulk]
    return multipart_body("application/dicom+xml", parts)


def from_dataset(ds: Any, threshold: int = 256) -> Capture:
    """An existing instance as metadata + bulk data: values over ``threshold`` bytes become
    octet-stream parts (PS3.18 8.7.3.3.1), smaller binary values InlineBinary (F.2.7)."""
    parts: list[Bulk] = []

    def bulk(element: Any) -> str:
        parts.append(Bulk("application/octet-stream", element.value, f"urn:part:{len(parts)}"))
        return parts[-1].location

    return Capture(ds.to_json_dict(threshold, bulk), parts)


def bulk_values(capture: Capture) -> dict[str, bytes]:
    """The bytes of each bulk data part, by Content-Location."""
    return {b.location: b.data for b in capture.bulk}


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


@dataclass
class Stored:
    """One instance a STOW response references: its class, UID and WADO-RS URL."""

    sop_class_uid: str
    sop_uid: str
    url: str
    warning: int | None = None


def referenced(response: JsonDict) -> list[Stored]:
    """The Referenced SOP Sequence of a Store Instances Response Module (DICOM JSON)."""
    out = []
    for item in response.get("00081199", {}).get("Value", []):
        warning = item.get("00081196", {}).get("Value", [None])[0]
        out.append(
            Stored(
                item["00081150"]["Value"][0],
                item["00081155"]["Value"][0],
                item["00081190"]["Value"][0],
                warning,
            )
        )
    return out


def failed(response: JsonDict) -> list[tuple[str, int]]:
    """(SOP Instance UID or "", Failure Reason) of each Failed SOP Sequence item."""
    return [
        ((item.get("00081155", {}).get("Value") or [""])[0], item["00081197"]["Value"][0])
        for item in response.get("00081198", {}).get("Value", [])
    ]


def multipart_parts(content_type: str, body: bytes) -> list[tuple[str, bytes]]:
    """(Content-Type, payload) of each part of a multipart/related body."""
    boundary = content_type.split("boundary=")[1].split(";")[0].strip('"').encode()
    out = []
    for chunk in body.split(b"--" + boundary)[1:]:
        if chunk.startswith(b"--"):
            break
        head, _, payload = chunk.partition(b"\r\n\r\n")
        headers = dict(
            line.split(": ", 1) for line in head.decode().strip().split("\r\n") if ": " in line
        )
        out.append((headers.get("Content-Type", ""), payload[:-2]))
    return out


class CaptureClient:
    """A WIC Image Capturer over HTTP: STOW-RS of captures, and the reads that check them."""

    def __init__(self, client: Any, root: str) -> None:
        self.client, self.root = client, root

    async def store(
        self,
        captures: list[Capture],
        *,
        xml: bool = False,
        study: str | None = None,
        accept: str = "application/dicom+json",
    ) -> Any:
        """POST the captures as JSON (or XML) metadata with bulk data; the httpx response."""
        body, content_type = (xml_request if xml else json_request)(captures)
        target = f"{self.root}/studies" + (f"/{study}" if study else "")
        return await self.client.post(
            target, content=body, headers={"Content-Type": content_type, "Accept": accept}
        )

    async def instance(self, url: str) -> Any:
        """The instance at a RetrieveURL, as stored (transfer-syntax=*), read by pydicom."""
        import pydicom

        response = await self.client.get(
            url,
            headers={"Accept": 'multipart/related; type="application/dicom"; transfer-syntax=*'},
        )
        assert response.status_code == 200, response.text
        ((_, payload),) = multipart_parts(response.headers["content-type"], response.content)
        return pydicom.dcmread(io.BytesIO(payload))

    async def frame(self, url: str, number: int = 1) -> tuple[str, bytes]:
        """One frame as stored: its part's Content-Type and bytes."""
        response = await self.client.get(
            f"{url}/frames/{number}",
            headers={"Accept": 'multipart/related; type="*/*"; transfer-syntax=*'},
        )
        assert response.status_code == 200, response.text
        ((content_type, payload),) = multipart_parts(
            response.headers["content-type"], response.content
        )
        return content_type, payload

    async def rendered(self, url: str, accept: str = "image/png") -> Any:
        """The rendered instance (PS3.18 10.4.1.1.3, rendered resources)."""
        return await self.client.get(f"{url}/rendered", headers={"Accept": accept})


def without_huffman_tables(jpeg: bytes) -> bytes:
    """A JPEG whose headers are whole but whose DHT segments are gone: no decoder can read it."""
    out, i = bytearray(jpeg[:2]), 2
    while i < len(jpeg):
        marker, length = jpeg[i + 1], struct.unpack(">H", jpeg[i + 2 : i + 4])[0]
        if marker == 0xDA:  # the scan: the rest of the file
            return bytes(out + jpeg[i:])
        if marker != 0xC4:
            out += jpeg[i : i + 2 + length]
        i += 2 + length
    return bytes(out)
