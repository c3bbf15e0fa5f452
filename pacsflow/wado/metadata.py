"""WADO-RS Retrieve Metadata (PS3.18 10.4.1.1.2) from the DICOM JSON written at ingest.

Study, series and instance metadata are the stored per-instance JSON documents (each sliced
out of the instance's sidecar, ``pacsflow.pipeline.sidecar``), read in one batch and joined
without being parsed; BulkDataURIs, stored relative to the DICOMweb root, are made absolute.
``application/dicom+json`` (default) or ``multipart/related; type="application/dicom+xml"``
(PS3.19). The ETag derives from the instances' content digests, so ``If-None-Match`` is
answered before any object is read.
"""

from __future__ import annotations

from typing import Final

import orjson

from pacsflow.dicom.xml import dataset_to_xml
from pacsflow.errors import NotFound
from pacsflow.media.accept import MetadataMedia, choose
from pacsflow.media.multipart_out import Multipart
from pacsflow.pipeline.sidecar import read_metadata
from pacsflow.ports import Index, ObjectStore
from pacsflow.wado.locate import keys_of, locate
from pacsflow.wado.retrieval import Payload, ResourceKey, Retrieval
from pacsflow.wado.validators import entity_tag, is_current

__all__ = ["retrieve_metadata"]

_VERSION: Final = b"metadata-v1"
_VARY: Final = {"Vary": "Accept, Accept-Encoding"}


async def retrieve_metadata(
    index: Index, objects: ObjectStore, key: ResourceKey, retrieval: Retrieval
) -> Payload:
    """The metadata of a study, series or instance, or a 304 answer to a current ETag."""
    media = choose(retrieval.accept, list(MetadataMedia))
    site, root_url = retrieval.site, retrieval.root_url
    refs = await locate(index, site, key)
    etag = entity_tag(_VERSION, refs, root_url, media.name)
    if is_current(etag, retrieval.if_none_match):
        return Payload(media.media_type, status=304, headers=_VARY, etag=etag)
    stored = await read_metadata(objects, [keys_of(site, ref) for ref in refs], root_url)
    documents = []
    for ref, raw in zip(refs, stored, strict=True):
        if raw is None:  # deleted between the index lookup and the read
            raise NotFound(f"the metadata of instance {ref.sop_uid} is gone")
        documents.append(raw)
    if media is not MetadataMedia.DICOM_XML:
        body = b"[" + b",".join(documents) + b"]"
        return Payload(media.media_type, body, headers=_VARY, etag=etag, compressible=True)
    parts = Multipart("application/dicom+xml")
    xml = parts.body(dataset_to_xml(orjson.loads(d)) for d in documents)
    return Payload(parts.content_type, xml, headers=_VARY, etag=etag, compressible=True)
