"""Find the stored instances WADO-WS documents name, in the request's site, or say why not.

A document is its SOP Instance UID within the study and series the request puts it in (RAD
TF-3 4.69.4.1.2). The index is asked once per series listed (``list_instances``, as WADO-RS
asks it), and once more per document not found there, to tell an unknown document
(XDSDocumentUniqueIdError) from one stored in another study or series (urn:dicom:wado:0010).
An instance of another site is unknown: the site is the request's, as for every service.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from pacsflow.dicom.uids import is_valid_uid
from pacsflow.ports import Index, InstanceRef
from pacsflow.ws.names import ErrorCode
from pacsflow.ws.registry import RegistryError
from pacsflow.ws.requests import DocumentRef

__all__ = ["Found", "locate_documents"]


@dataclass(frozen=True, slots=True)
class Found:
    """A requested document and the stored instance it names."""

    ref: DocumentRef
    instance: InstanceRef


def _malformed(ref: DocumentRef) -> RegistryError | None:
    for name, uid in (("studyInstanceUID", ref.study), ("seriesInstanceUID", ref.series)):
        if not is_valid_uid(uid, strict=False):
            context = f"{name} {uid!r} is not a UID"
            return RegistryError(ErrorCode.INVALID_PARAMETER, context, ref.sop)
    if not is_valid_uid(ref.sop, strict=False):
        return RegistryError(
            ErrorCode.INVALID_PARAMETER, f"DocumentUniqueId {ref.sop!r} is not a UID", ref.sop
        )
    return None


async def locate_documents(
    index: Index, site: str, refs: Sequence[DocumentRef], repository: str | None
) -> list[Found | RegistryError]:
    """One ``Found`` or ``RegistryError`` per reference, in order; ``repository`` is this
    source's RepositoryUniqueId (None: any value is taken to name this source)."""
    series: dict[tuple[str, str], dict[str, InstanceRef]] = {}
    results: list[Found | RegistryError] = []
    for ref in refs:
        if repository is not None and ref.repository != repository:
            results.append(
                RegistryError(
                    ErrorCode.UNKNOWN_REPOSITORY,
                    f"RepositoryUniqueId {ref.repository!r} is not this Imaging Document Source"
                    f" ({repository})",
                    ref.sop,
                )
            )
            continue
        if (error := _malformed(ref)) is not None:
            results.append(error)
            continue
        key = (ref.study, ref.series)
        if key not in series:
            listed = await index.list_instances(site, ref.study, ref.series)
            series[key] = {instance.sop_uid: instance for instance in listed}
        instance = series[key].get(ref.sop)
        if instance is not None:
            results.append(Found(ref, instance))
            continue
        elsewhere = await index.get_instance(site, ref.sop)
        if elsewhere is None:
            context = f"DICOM object {ref.sop} is not stored here"
            results.append(RegistryError(ErrorCode.UNKNOWN_DOCUMENT, context, ref.sop))
        else:
            context = (
                f"DICOM object {ref.sop} is in series {elsewhere.series_uid} of study"
                f" {elsewhere.study_uid}, not in series {ref.series} of study {ref.study}"
            )
            results.append(RegistryError(ErrorCode.INCONSISTENT, context, ref.sop))
    return results
