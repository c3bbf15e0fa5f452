"""Retrieve Imaging Document Set (IHE RAD-69, RAD TF-3 4.69; PS3.18 2016 6.4.1).

Each document goes out as stored when its transfer syntax is in TransferSyntaxUIDList, else
transcoded to the first listed syntax this server can write for it (the WADO-RS transcoding path,
``pacsflow.dicom.transcode``); when none fits, or transcoding fails, the document gets a
RegistryError urn:dicom:wado:0007 (PS3.18 2016 6.4.4) instead of a DocumentResponse.

Documents sent as stored stream from the object store straight into the response. Transcoded
ones are made before the envelope is written (its RegistryResponse must already say which
documents failed), one at a time, into the reply's ``Spool`` file, and stream from there.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from typing import Final

from lxml import etree

from pacsflow.dicom.part10 import as_part10
from pacsflow.dicom.transcode import TranscodeError, can_transcode, transcode_instance
from pacsflow.dicom.uids import is_valid_uid
from pacsflow.errors import ObjectNotFound
from pacsflow.ports import InstanceRef
from pacsflow.wado.locate import keys_of
from pacsflow.ws.context import Context
from pacsflow.ws.faults import SoapFault
from pacsflow.ws.locate import locate_documents
from pacsflow.ws.names import IHE, ErrorCode
from pacsflow.ws.registry import RegistryError
from pacsflow.ws.reply import Attachment, Reply, Spool, child
from pacsflow.ws.requests import document_refs, transfer_syntaxes

__all__ = ["retrieve_document_set"]

DICOM: Final = "application/dicom"


def _target(instance: InstanceRef, listed: Sequence[str]) -> str | None:
    """The syntax to send ``instance`` in: as stored if listed, else the first reachable."""
    if instance.transfer_syntax in listed:
        return instance.transfer_syntax
    return next((ts for ts in listed if can_transcode(instance.transfer_syntax, ts)), None)


def _listed(payload: etree._Element) -> list[str]:
    """TransferSyntaxUIDList, each a UID (else the request is malformed: a Sender fault)."""
    listed = transfer_syntaxes(payload)
    for uid in listed:
        if not is_valid_uid(uid, strict=False):
            raise SoapFault("Sender", f"TransferSyntaxUID {uid!r} is not a UID")
    return listed


async def _document(
    context: Context, spool: Spool, instance: InstanceRef, listed: Sequence[str]
) -> Attachment | RegistryError:
    """The bytes of one instance in a listed syntax, or why they cannot be sent."""
    sop, stored = instance.sop_uid, instance.transfer_syntax
    target = _target(instance, listed)
    if target is None:
        context_text = f"stored in {stored}; not sent in any of {', '.join(listed)}"
        return RegistryError(ErrorCode.NOT_PROVIDED, context_text, sop)
    key = keys_of(context.site, instance)["dicom"]
    if target == stored:
        return Attachment(DICOM, lambda: as_part10(context.objects.stream(key), stored))
    try:
        data = await context.objects.get(key)
        data, actual = await asyncio.to_thread(transcode_instance, data, target)
    except ObjectNotFound:
        return RegistryError(ErrorCode.UNKNOWN_DOCUMENT, f"DICOM object {sop} is gone", sop)
    except TranscodeError as exc:
        return RegistryError(ErrorCode.NOT_PROVIDED, f"cannot be sent in {target}: {exc}", sop)
    if actual not in listed:  # an object without pixels is written in Explicit VR LE
        context_text = f"has no pixel data; it is sent in {actual}, which is not listed"
        return RegistryError(ErrorCode.NOT_PROVIDED, context_text, sop)
    return Attachment(DICOM, await spool.add(data))


async def retrieve_document_set(context: Context, reply: Reply, spool: Spool) -> None:
    """Answer a RetrieveImagingDocumentSetRequest: DocumentResponses, RegistryResponse."""
    payload = reply.request
    listed = _listed(payload)
    refs = document_refs(payload)
    errors: list[RegistryError] = []
    located = await locate_documents(context.index, context.site, refs, context.repository)
    for ref, found in zip(refs, located, strict=True):
        if isinstance(found, RegistryError):
            errors.append(found)
            continue
        document = await _document(context, spool, found.instance, listed)
        if isinstance(document, RegistryError):
            errors.append(document)
            continue
        entry = reply.entry(f"{{{IHE}}}DocumentResponse", ref)  # ITI TF-2 3.43.4.2.2
        child(entry, f"{{{IHE}}}mimeType", document.media_type)
        reply.attach(entry, f"{{{IHE}}}Document", document)
    reply.finish(errors)
