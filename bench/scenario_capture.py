"""IHE WIC captures: STOW-RS of DICOM JSON + JPEG beside PS3.10 STOW of the same images.

A capture device either sends what WIC lets it send (PS3.18 10.5.1.4: a DICOM JSON data set
with the patient/study context and the JPEG as a bulk data part, everything else completed by
the archive) or builds the DICOM instance itself (a VL Photographic Image PS3.10 file with the
same JPEG encapsulated, PS3.5 A.4). Both are stored one capture per request by N concurrent
clients (keep-alive ``http.client`` connections), on pacsflow in both modes; Orthanc does not
take metadata requests. Every answer is checked (HTTP 200, one instance referenced, none
failed) before it counts. Bodies are built before the clock starts.
"""

from __future__ import annotations

import http.client
import io
import json
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from urllib.parse import urlsplit

import numpy as np
import pydicom
from PIL import Image
from pydicom.encaps import encapsulate
from pydicom.uid import JPEGBaseline8Bit, VLPhotographicImageStorage, generate_uid

from bench.collect import Collector
from bench.context import Context, record_peaks, sampler
from bench.targets import Target
from pacsflow.media.multipart_out import Multipart

__all__ = ["run"]

GROUP = "captures, one per request"
WIDTH, HEIGHT = 1024, 768
VL_PHOTO = str(VLPhotographicImageStorage)


@dataclass(frozen=True)
class _Request:
    content_type: str
    body: bytes
    sop_uid: str | None  # the UID the answer must reference (PS3.10); None: generated


def _photos(count: int, seed: int) -> list[bytes]:
    """Camera-like JPEGs (smooth scene, sensor noise, 4:2:0, quality 90) made by Pillow."""
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:HEIGHT, 0:WIDTH]
    out = []
    for _ in range(count):
        phase = rng.uniform(0, 6.28, 3)
        scene = [127 + 100 * np.sin(x / 97 + y / 131 + p) for p in phase]
        pixels = np.stack(scene, -1) + rng.normal(0, 6, (HEIGHT, WIDTH, 3))
        buffer = io.BytesIO()
        Image.fromarray(np.clip(pixels, 0, 255).astype(np.uint8)).save(buffer, "JPEG", quality=90)
        out.append(buffer.getvalue())
    return out


def _context(index: int) -> dict[str, dict[str, object]]:
    return {
        "00100010": {"vr": "PN", "Value": [{"Alphabetic": f"Capture^Bench{index}"}]},
        "00100020": {"vr": "LO", "Value": [f"BENCH-WIC-{index}"]},
    }


def _multipart(parts: list[tuple[str, bytes, str | None]], root: str) -> _Request:
    body = Multipart(root)
    pieces = [
        body.part(media, data, **({"Content_Location": location} if location else {}))
        for media, data, location in parts
    ]
    return _Request(body.content_type, b"".join(pieces) + body.end(), None)


def metadata_request(index: int, jpeg: bytes) -> _Request:
    """What a WIC Image Capturer sends: the context as DICOM JSON, the JPEG as bulk data."""
    metadata = {**_context(index), "7FE00010": {"vr": "OB", "BulkDataURI": "urn:photo"}}
    return _multipart(
        [
            ("application/dicom+json", json.dumps([metadata]).encode(), None),
            ("image/jpeg", jpeg, "urn:photo"),
        ],
        "application/dicom+json",
    )


def part10_request(index: int, jpeg: bytes) -> _Request:
    """The same capture as a device builds it itself: a VL Photographic Image, JPEG Baseline."""
    ds = pydicom.Dataset.from_json(_context(index))
    ds.SOPClassUID, ds.SOPInstanceUID = VL_PHOTO, generate_uid(None)
    ds.StudyInstanceUID, ds.SeriesInstanceUID = generate_uid(None), generate_uid(None)
    ds.Modality, ds.InstanceNumber = "XC", 1
    ds.Rows, ds.Columns, ds.SamplesPerPixel = HEIGHT, WIDTH, 3
    ds.PhotometricInterpretation, ds.PlanarConfiguration = "YBR_FULL_422", 0
    ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 8, 8, 7, 0
    ds.LossyImageCompression, ds.LossyImageCompressionMethod = "01", "ISO_10918_1"
    ds.PixelData = encapsulate([jpeg])
    ds["PixelData"].VR = "OB"
    ds.file_meta = pydicom.dataset.FileMetaDataset()
    ds.file_meta.TransferSyntaxUID = JPEGBaseline8Bit
    buffer = io.BytesIO()
    ds.save_as(buffer, enforce_file_format=True)
    request = _multipart([("application/dicom", buffer.getvalue(), None)], "application/dicom")
    return _Request(request.content_type, request.body, str(ds.SOPInstanceUID))


def _check(status: int, answer: bytes, request: _Request) -> str | None:
    if status != 200:
        return f"HTTP {status}: {answer[:300]!r}"
    document = json.loads(answer)
    referenced = document.get("00081199", {}).get("Value", [])
    if "00081198" in document or len(referenced) != 1:
        return f"not one stored instance: {answer[:300]!r}"
    item = referenced[0]
    if item["00081150"]["Value"] != [VL_PHOTO]:
        return f"stored as {item['00081150']}"
    if request.sop_uid is not None and item["00081155"]["Value"] != [request.sop_uid]:
        return f"another instance referenced: {item['00081155']}"
    return None


def _throughput(root: str, work: list[_Request], concurrency: int) -> tuple[float, str | None]:
    """Seconds to store every request from ``concurrency`` keep-alive connections (one per
    pool thread); the first problem found in the answers, if any."""
    url = urlsplit(root)
    local = threading.local()
    connections: list[http.client.HTTPConnection] = []

    def send(request: _Request) -> str | None:
        if not hasattr(local, "connection"):
            local.connection = http.client.HTTPConnection(
                url.hostname or "127.0.0.1", url.port, timeout=600
            )
            connections.append(local.connection)
        headers = {"Content-Type": request.content_type, "Accept": "application/dicom+json"}
        try:
            local.connection.request("POST", f"{url.path}/studies", request.body, headers)
            response = local.connection.getresponse()
            return _check(response.status, response.read(), request)
        except (OSError, http.client.HTTPException, ValueError, KeyError) as exc:
            return f"client error: {exc!r}"

    started = time.perf_counter()
    with ThreadPoolExecutor(concurrency) as pool:
        problems = [p for p in pool.map(send, work) if p]
    seconds = time.perf_counter() - started
    for connection in connections:
        connection.close()
    return seconds, (problems[0] if problems else None)


FORMS: dict[str, Callable[[int, bytes], _Request]] = {
    "DICOM JSON + JPEG (WIC)": metadata_request,
    "PS3.10 of the same JPEG": part10_request,
}


def run(ctx: Context) -> tuple[Collector, list[str]]:
    """Each form at each concurrency, run after run, on the pacsflow targets."""
    profile = ctx.profile
    collector = Collector("capture")
    count = max(8, 8 * profile.stow_studies)
    targets: dict[str, Target] = {}
    notes: list[str] = []
    kinds = [k for k in ctx.kinds if k.startswith("pacsflow")]
    try:
        for kind in kinds:
            targets[kind] = ctx.fresh(kind, "capture")
        memory = sampler(targets)
        for number in range(profile.runs):
            with memory.window() as peaks:
                for concurrency in profile.concurrency:
                    photos = _photos(count, ctx.seed + 1000 * number + concurrency)
                    size = sum(len(p) for p in photos)
                    for form, build in FORMS.items():
                        work = [build(i, jpeg) for i, jpeg in enumerate(photos)]
                        for kind, target in targets.items():
                            seconds, error = _throughput(target.dicomweb_root, work, concurrency)
                            values = None
                            if error is None:
                                values = {
                                    "instances_per_s": count / seconds,
                                    "mb_per_s": size / 1e6 / seconds,
                                }
                                rate = values["instances_per_s"]
                                ctx.log(f"capture: {kind} {form} c={concurrency}: {rate:,.1f}/s")
                            collector.values(
                                kind,
                                GROUP,
                                form,
                                values,
                                unit="instances/s",
                                better="higher",
                                primary="instances_per_s",
                                error=error,
                                samples=count,
                                example="POST /studies",
                                params={"concurrency": concurrency},
                            )
            record_peaks(ctx, "captures", peaks)
    finally:
        for target in targets.values():
            target.stop()
    notes += [
        f"Data: {count} camera-like {WIDTH}x{HEIGHT} JPEGs (Pillow, quality 90, 4:2:0) per run "
        "and concurrency level, new ones each time; the same JPEG bytes in both forms.",
        'DICOM JSON + JPEG: `multipart/related; type="application/dicom+json"` with the '
        "patient context as the only metadata and the JPEG as the Pixel Data bulk data part; "
        "pacsflow derives the Image Pixel Description, generates the UIDs and writes the PS3.10 "
        "file before the usual ingest. PS3.10: a VL Photographic Image with the JPEG "
        "encapsulated, built by pydicom on the client.",
        "Every answer verified: HTTP 200, one VL Photographic instance referenced (the UID "
        "sent, for PS3.10), no failure. Orthanc is not measured: it takes no metadata request.",
    ]
    if "orthanc" in ctx.kinds:
        notes.append("Orthanc: skipped (STOW-RS of metadata and bulk data is not supported).")
    return collector, notes
