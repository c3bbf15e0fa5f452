"""WADO-URI (PS3.18 9): ``?requestType=WADO&studyUID=…&seriesUID=…&objectUID=…``.

``contentType`` chooses the representation: application/dicom (the object, in
``transferSyntax`` — Explicit VR Little Endian by default — optionally de-identified on the
fly with ``anonymize=yes``, PS3.15 Annex E Basic Profile, when the server has a
de-identification secret), or a rendered one (image/jpeg,
image/png, image/gif, image/jp2, text/html, text/plain, application/pdf) with ``rows``,
``columns``, ``region``, ``windowCenter``/``windowWidth``, ``frameNumber``, ``imageQuality``,
``annotation`` and ``charset``. Without ``contentType``: image/jpeg for images, text/html for
structured reports, application/pdf for PDF, application/dicom otherwise.
"""

from __future__ import annotations

import asyncio
import io
from collections.abc import Sequence
from pathlib import Path
from typing import Final

import pydicom
from pydicom.uid import ExplicitVRLittleEndian

from pacsflow.dicom.transcode import transcode_instance
from pacsflow.dicom.uids import is_valid_uid
from pacsflow.errors import BadRequest, NotAcceptable, NotFound
from pacsflow.ports import Index, ObjectStore
from pacsflow.render.anonymize import anonymize
from pacsflow.render.params import WADO_URI_OBJECT_PARAMETERS, parse_wado_uri_params
from pacsflow.wado.locate import keys_of, locate
from pacsflow.wado.rendered import Rendered, instance_kind, render_file
from pacsflow.wado.retrieval import Payload, ResourceKey, Retrieval

__all__ = ["retrieve_wado_uri"]

DICOM: Final = "application/dicom"
_DEFAULTS: Final = {"image": "image/jpeg", "sr": "text/html", "pdf": "application/pdf"}
_ROUTE: Final = WADO_URI_OBJECT_PARAMETERS | {"anonymize"}


def _single(parameters: Sequence[tuple[str, str]]) -> dict[str, str]:
    values: dict[str, str] = {}
    for name, value in parameters:
        if name in values:
            raise BadRequest(f"query parameter {name!r} is given more than once")
        values[name] = value
    return values


def _uid(values: dict[str, str], name: str) -> str:
    uid = values.get(name, "").strip()
    if not uid:
        raise BadRequest(f"query parameter {name!r} is required")
    if not is_valid_uid(uid, strict=False):
        raise BadRequest(f"query parameter {name!r}: {uid!r} is not a UID")
    return uid


async def retrieve_wado_uri(
    index: Index, objects: ObjectStore, secret: str | None, retrieval: Retrieval
) -> Payload:
    """Answer one WADO-URI request (PS3.18 9.1); ``secret`` keys ``anonymize=yes`` (None: off)."""
    parameters = retrieval.parameters
    values = _single(parameters)
    if values.get("requestType") != "WADO":
        raise BadRequest("query parameter 'requestType' must be WADO")
    study, series, sop = (_uid(values, n) for n in ("studyUID", "seriesUID", "objectUID"))
    anonymized = values.get("anonymize")
    if anonymized not in (None, "yes"):
        raise BadRequest("query parameter 'anonymize' can only be 'yes'")
    if anonymized == "yes" and secret is None:  # PS3.18 9.4.2.3: the server may refuse
        raise BadRequest(
            "anonymize=yes is not available: this server has no de-identification secret"
            " (PACSFLOW_ANONYMIZE_SECRET)"
        )
    content_type = values.get("contentType", "").strip()
    [ref] = await locate(index, retrieval.site, ResourceKey(study, series, sop))
    key = keys_of(retrieval.site, ref)["dicom"]
    async with objects.local_file(key) as path:
        answer = await asyncio.to_thread(
            _answer, path, content_type, values, parameters, anonymized == "yes", secret or ""
        )
    return Payload(answer.content_type, answer.body)


def _answer(
    path: Path,
    content_type: str,
    values: dict[str, str],
    parameters: Sequence[tuple[str, str]],
    anonymized: bool,
    secret: str,
) -> Rendered:
    header = pydicom.dcmread(path, stop_before_pixels=True, force=True)
    kind = instance_kind(header)
    wanted = [t.split(";")[0].strip() for t in content_type.split(",") if t.strip()]
    wanted = wanted or [_DEFAULTS.get(kind, DICOM)]
    if DICOM in wanted[:1] or (wanted == [DICOM]):
        return _dicom(path, values.get("transferSyntax"), anonymized, secret)
    if anonymized:
        raise BadRequest("query parameter 'anonymize' applies to contentType application/dicom")
    if "transferSyntax" in values:
        raise BadRequest("query parameter 'transferSyntax' applies to application/dicom")
    render = parse_wado_uri_params(parameters, ignore=_ROUTE)
    frames = [render.frame_number] if render.frame_number is not None else None
    try:
        return render_file(path, ",".join(wanted), render.params, frames)
    except NotFound as exc:  # PS3.18 9: an invalid frameNumber is a bad request
        raise BadRequest(f"query parameter 'frameNumber': {exc}") from exc
    except NotAcceptable:
        if DICOM in wanted:
            return _dicom(path, values.get("transferSyntax"), anonymized, secret)
        raise


def _dicom(path: Path, syntax: str | None, anonymized: bool, secret: str) -> Rendered:
    """The object as application/dicom in the requested (default Explicit VR LE) syntax."""
    data = path.read_bytes()
    target = syntax or ExplicitVRLittleEndian
    if not is_valid_uid(target, strict=False):
        raise BadRequest(f"query parameter 'transferSyntax': {target!r} is not a UID")
    data, _actual = transcode_instance(data, target)
    if anonymized:
        ds = anonymize(pydicom.dcmread(io.BytesIO(data)), secret=secret)
        out = io.BytesIO()
        ds.save_as(out, enforce_file_format=True)
        data = out.getvalue()
    return Rendered(DICOM, data)
