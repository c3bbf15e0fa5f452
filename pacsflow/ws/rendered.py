"""Retrieve Rendered Imaging Document Set (PS3.18 2016 6.4.2) through the WADO renderer.

Each RenderedDocumentRequest is a WADO-URI rendering in other clothes: the parameters of PS3.18
2016 Chapter 8 (Annotation, Rows, Columns, Region, WindowCenter/WindowWidth, ImageQuality,
FrameNumber, CharsetList) are read by WADO-URI's own parser (``parse_wado_uri_params``) and the
document is rendered by ``pacsflow.wado.rendered.render_file`` as the first ContentTypeList
media type its kind allows (images: image/jpeg, image/png, image/gif, image/jp2; structured
reports: text/html, text/plain; encapsulated PDF: application/pdf). ``Anonymize`` "yes" renders
the de-identified object (PS3.15 Annex E Basic Profile, keyed by PACSFLOW_ANONYMIZE_SECRET), so
a patient annotation shows its replaced values. Presentation states are not applied
(PresentationUID: urn:dicom:wado:0013). Renderings are made before the envelope, into the spool.
"""

from __future__ import annotations

import asyncio
import logging
import tempfile
from pathlib import Path
from typing import Final

import pydicom

from pacsflow.errors import BadRequest, NotAcceptable, NotFound, ObjectNotFound
from pacsflow.render.anonymize import anonymize
from pacsflow.render.params import parse_wado_uri_params
from pacsflow.wado.locate import keys_of
from pacsflow.wado.rendered import DOCUMENT_TYPES, IMAGE_TYPES, Rendered, render_file
from pacsflow.ws.context import Context
from pacsflow.ws.locate import locate_documents
from pacsflow.ws.names import IHE, WADO, ErrorCode
from pacsflow.ws.registry import RegistryError
from pacsflow.ws.reply import Attachment, Reply, Spool, child
from pacsflow.ws.requests import RENDERING_PARAMETERS, RenderedRequest, rendered_requests

__all__ = ["retrieve_rendered_document_set"]

log = logging.getLogger(__name__)

# RenderedDocumentRequest elements and the WADO-URI parameters they are (PS3.18 2016 8.1, 8.2).
_URI_NAMES: Final = {
    "Annotation": "annotation",
    "Rows": "rows",
    "Columns": "columns",
    "Region": "region",
    "WindowWidth": "windowWidth",
    "WindowCenter": "windowCenter",
    "ImageQuality": "imageQuality",
    "FrameNumber": "frameNumber",
}
_RENDERED: Final = frozenset(IMAGE_TYPES) | {t for ts in DOCUMENT_TYPES.values() for t in ts}
_WILDCARDS: Final = frozenset({"*/*", "image/*", "text/*", "application/*"})


def _media_types(request: RenderedRequest) -> str | RegistryError:
    """The ContentTypeList as an Accept value, or urn:dicom:wado:0006 if none is rendered."""
    types = [t.split(";")[0].strip().lower() for t in request.content_types]
    if not any(t in _RENDERED or t in _WILDCARDS for t in types):
        offered = ", ".join(sorted(_RENDERED))
        context = f"no rendering as {', '.join(types)}; this server renders {offered}"
        return RegistryError(ErrorCode.UNSUPPORTED_FORMAT, context, request.ref.sop)
    return ",".join(types)


def _in_ws_words(reason: str) -> str:
    """A WADO-URI parser's message with the element names of the request."""
    reason = reason.replace("query parameters ", "").replace("query parameter ", "")
    for element, name in (*_URI_NAMES.items(), ("CharsetList", "charset")):
        reason = reason.replace(f"'{name}'", element)
    return reason


def _checked(request: RenderedRequest, secret: str | None) -> RegistryError | None:
    """Why the parameters cannot be used (PS3.18 2016 6.4.4), or None."""
    sop, parameters = request.ref.sop, request.parameters
    for name in ("PresentationUID", "PresentationSeriesUID"):
        if name in parameters:
            context = f"{name}: presentation states are not applied by this server"
            return RegistryError(ErrorCode.UNSUPPORTED_PARAMETER, context, sop)
    anonymized = parameters.get("Anonymize")
    if anonymized not in (None, "yes"):
        return RegistryError(ErrorCode.INVALID_PARAMETER, "Anonymize can only be 'yes'", sop)
    if anonymized == "yes" and secret is None:
        context = "this server has no de-identification secret (PACSFLOW_ANONYMIZE_SECRET)"
        return RegistryError(ErrorCode.NO_ANONYMIZATION, context, sop)
    return None


def _render(path: Path, accept: str, request: RenderedRequest, secret: str | None) -> Rendered:
    """Render one stored object as asked (in a worker thread)."""
    pairs = [(_URI_NAMES[n], v) for n, v in request.parameters.items() if n in _URI_NAMES]
    if request.charsets:
        pairs.append(("charset", ",".join(request.charsets)))
    render = parse_wado_uri_params(pairs, ignore=frozenset())
    frames = [render.frame_number] if render.frame_number is not None else None
    if request.parameters.get("Anonymize") != "yes" or secret is None:
        return render_file(path, accept, render.params, frames)
    ds = anonymize(pydicom.dcmread(path, force=True), secret=secret)
    with tempfile.NamedTemporaryFile(suffix=".dcm") as copy:
        ds.save_as(copy.name, enforce_file_format=True)
        return render_file(Path(copy.name), accept, render.params, frames)


async def _rendered(
    context: Context, spool: Spool, request: RenderedRequest, key: str
) -> Attachment | RegistryError:
    """One rendering, spooled, or the RegistryError that replaces it."""
    sop = request.ref.sop
    accept = _media_types(request)
    if isinstance(accept, RegistryError):
        return accept
    if (error := _checked(request, context.anonymize_secret)) is not None:
        return error
    try:
        async with context.objects.local_file(key) as path:
            secret = context.anonymize_secret
            rendered = await asyncio.to_thread(_render, path, accept, request, secret)
    except ObjectNotFound:
        return RegistryError(ErrorCode.UNKNOWN_DOCUMENT, f"DICOM object {sop} is gone", sop)
    except BadRequest as exc:
        return RegistryError(ErrorCode.INVALID_PARAMETER, _in_ws_words(str(exc)), sop)
    except NotFound as exc:
        return RegistryError(ErrorCode.FRAME_OUT_OF_RANGE, str(exc), sop)
    except NotAcceptable as exc:
        return RegistryError(ErrorCode.NOT_PROVIDED, str(exc), sop)
    except Exception as exc:  # a decoder's failure on one document fails that document only
        log.exception("WADO-WS: rendering %s failed", sop)
        return RegistryError(ErrorCode.PROCESSING_FAILURE, f"rendering failed: {exc}", sop)
    return Attachment(rendered.content_type.split(";")[0], await spool.add(rendered.body))


async def retrieve_rendered_document_set(context: Context, reply: Reply, spool: Spool) -> None:
    """Answer a RetrieveRenderedImagingDocumentSetRequest (PS3.18 2016 6.4.2.2)."""
    requests = rendered_requests(reply.request)
    errors: list[RegistryError] = []
    refs = [r.ref for r in requests]
    located = await locate_documents(context.index, context.site, refs, context.repository)
    for request, found in zip(requests, located, strict=True):
        if isinstance(found, RegistryError):
            errors.append(found)
            continue
        key = keys_of(context.site, found.instance)["dicom"]
        document = await _rendered(context, spool, request, key)
        if isinstance(document, RegistryError):
            errors.append(document)
            continue
        source = f"{{{WADO}}}SourceDocumentUniqueId"  # PS3.18 2016 6.4.2.2
        entry = reply.entry(f"{{{WADO}}}RenderedDocumentResponse", request.ref, source)
        for name in RENDERING_PARAMETERS:  # the values used: those asked for
            if name in request.parameters:
                child(entry, f"{{{WADO}}}{name}", request.parameters[name])
        child(entry, f"{{{IHE}}}mimeType", document.media_type)
        reply.attach(entry, f"{{{IHE}}}Document", document)
    reply.finish(errors)
