"""WADO-RS Retrieve Instance (PS3.18 10.4), the minimal form: the instance as stored.

The response streams from the object store in chunks, so its size does not matter.
Transcoding, metadata, frames and bulk data arrive with the WADO-RS issue.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass

from pacsflow.errors import NotAcceptable, NotFound
from pacsflow.multipart import media_type_parameters
from pacsflow.ports import Index, ObjectStore

__all__ = ["InstanceRetrieval", "negotiate_instance", "retrieve_instance"]


@dataclass(frozen=True, slots=True)
class InstanceRetrieval:
    """A streamed multipart/related response body and its Content-Type."""

    content_type: str
    body: AsyncIterator[bytes]


def negotiate_instance(accept: str, stored_transfer_syntax: str) -> None:
    """Accept ``multipart/related; type="application/dicom"`` in the stored transfer syntax.

    Raises ``NotAcceptable`` when the Accept header asks for anything else (PS3.18 8.7.3).
    """
    if not accept.strip():
        return
    for value in accept.split(","):
        media, params = media_type_parameters(value)
        if media in ("*/*", "multipart/*"):
            return
        if media == "multipart/related" and params.get("type", "application/dicom").lower() in (
            "application/dicom",
        ):
            syntax = params.get("transfer-syntax", "*")
            if syntax in ("*", stored_transfer_syntax):
                return
    raise NotAcceptable(
        'only multipart/related; type="application/dicom" in the stored transfer syntax '
        f"({stored_transfer_syntax}) or transfer-syntax=* can be served"
    )


async def retrieve_instance(
    index: Index, objects: ObjectStore, site: str, study: str, series: str, sop: str, accept: str
) -> InstanceRetrieval:
    """Find a stored instance and stream it as a one-part multipart/related body."""
    doc = await index.get_instance(site, sop)
    if doc is None or doc.study_uid != study or doc.series_uid != series:
        raise NotFound(f"no instance {sop} in series {series} of study {study}")
    negotiate_instance(accept, doc.transfer_syntax)
    boundary = uuid.uuid4().hex
    syntax = doc.transfer_syntax

    async def body() -> AsyncIterator[bytes]:
        yield (
            f"--{boundary}\r\nContent-Type: application/dicom; transfer-syntax={syntax}\r\n"
            f"Content-Length: {doc.size}\r\n\r\n"
        ).encode()
        async for chunk in objects.stream(doc.object_key):
            yield chunk
        yield f"\r\n--{boundary}--\r\n".encode()

    return InstanceRetrieval(
        f'multipart/related; type="application/dicom"; boundary={boundary}', body()
    )
