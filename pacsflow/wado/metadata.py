"""WADO-RS Retrieve Metadata (PS3.18 10.4.1.1.2) from the DICOM JSON written at ingest.

Study, series and instance metadata are the stored per-instance JSON objects, read in one
batch and joined without being parsed; BulkDataURIs, stored relative to the DICOMweb root,
are made absolute. ``application/dicom+json`` (default) or
``multipart/related; type="application/dicom+xml"`` (PS3.19). The ETag derives from the
instances' content digests, so ``If-None-Match`` is answered before any object is read.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Final

import orjson

from pacsflow.dicom.xml import dataset_to_xml
from pacsflow.errors import NotFound
from pacsflow.media.accept import MetadataMedia, choose
from pacsflow.media.multipart_out import Multipart
from pacsflow.ports import Index, InstanceRef, ObjectStore
from pacsflow.wado.locate import keys_of, locate

__all__ = ["MetadataResult", "retrieve_metadata"]

_VERSION: Final = b"metadata-v1"
_RELATIVE: Final = b'"BulkDataURI":"studies/'


@dataclass(frozen=True, slots=True)
class MetadataResult:
    """A metadata response: ``body`` is ``None`` when the client's copy is current (304)."""

    content_type: str
    etag: str
    body: bytes | None


def _etag(refs: list[InstanceRef], root_url: str, media: MetadataMedia) -> str:
    digest = hashlib.sha256(_VERSION + root_url.encode() + media.name.encode())
    for ref in refs:
        digest.update(f"{ref.sop_uid}:{ref.sha256};".encode())
    return f'"{digest.hexdigest()[:40]}"'


async def retrieve_metadata(
    index: Index,
    objects: ObjectStore,
    site: str,
    root_url: str,
    accept: str,
    if_none_match: str | None,
    study: str,
    series: str | None = None,
    sop: str | None = None,
) -> MetadataResult:
    """The metadata of a study, series or instance, or a 304 answer to a current ETag."""
    media = choose(accept, list(MetadataMedia))
    refs = await locate(index, site, study, series, sop)
    etag = _etag(refs, root_url, media)
    if if_none_match is not None and etag in {t.strip() for t in if_none_match.split(",")}:
        return MetadataResult(media.media_type, etag, None)
    stored = await objects.get_many([keys_of(site, ref)["metadata"] for ref in refs])
    absolute = f'"BulkDataURI":"{root_url}/studies/'.encode()
    documents = []
    for ref, raw in zip(refs, stored, strict=True):
        if raw is None:  # deleted between the index lookup and the read
            raise NotFound(f"the metadata of instance {ref.sop_uid} is gone")
        documents.append(raw.replace(_RELATIVE, absolute))
    if media is not MetadataMedia.DICOM_XML:
        return MetadataResult(media.media_type, etag, b"[" + b",".join(documents) + b"]")
    body = Multipart("application/dicom+xml")
    xml = body.body(dataset_to_xml(orjson.loads(d)) for d in documents)
    return MetadataResult(body.content_type, etag, xml)
