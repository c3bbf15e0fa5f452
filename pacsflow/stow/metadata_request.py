"""STOW-RS of metadata and bulk data: JSON or XML data sets with their bulk data parts.

PS3.18 10.5.1.4: a ``multipart/related; type="application/dicom+json"`` request holds one part
with an array of DICOM JSON data sets (Annex F); a ``type="application/dicom+xml"`` request one
Native DICOM Model document (PS3.19) per instance; both are followed by the bulk data parts
their BulkDataURIs name by Content-Location (8.6.1.2: metadata parts come first). The parts
are collected (bulk data kept by ``spool.BulkPart``), then each instance is assembled as a
PS3.10 file (``assemble``, completed as IHE WIC asks by ``completion``) and handed to the
STOW service as an ``application/dicom`` part, so that admission, the ingest topic,
validation, storage, indexing, the duplicate policy and the dead letters are those of every
other instance. An instance that cannot be assembled becomes a ``Refusal`` with its Failure
Reason (PS3.18 Annex I); a request whose metadata cannot be read at all is a 400, one whose
metadata part is over the limit a 413.
"""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from typing import Any, Final

import orjson

from pacsflow.dicom.header import PartRejected
from pacsflow.dicom.status import FailureReason
from pacsflow.dicom.xml import xml_to_dataset
from pacsflow.errors import BadRequest, PayloadTooLarge
from pacsflow.media.multipart_in import PartEvent, media_type_parameters
from pacsflow.stow.assemble import assemble, bulk_references
from pacsflow.stow.completion import Completion
from pacsflow.stow.response import PartOutcome, StowResult
from pacsflow.stow.spool import BulkPart

__all__ = ["METADATA_TYPES", "MetadataLimits", "Refusal", "metadata_instances"]

METADATA_TYPES: Final = frozenset({"application/dicom+json", "application/dicom+xml"})
JsonDict = dict[str, Any]


@dataclass(frozen=True, slots=True)
class MetadataLimits:
    """How large a metadata part and a bulk data part may be, and what stays in memory."""

    metadata_max_bytes: int
    bulk_max_bytes: int
    memory_max_bytes: int


@dataclass(frozen=True, slots=True)
class Refusal:
    """An instance refused before admission, or a failure of no instance (Annex I)."""

    reason: FailureReason
    message: str
    sop_class_uid: str = ""
    sop_uid: str = ""
    study_uid: str = ""
    instance: bool = True

    def record(self, result: StowResult) -> None:
        """Add the refusal to the response: a Failed SOP item, or an Other Failures item."""
        if not self.instance:
            result.other_failures.append((self.reason, self.message))
            return
        outcome = PartOutcome(len(result.parts) + 1, self.sop_class_uid, self.sop_uid)
        outcome.study_uid = self.study_uid
        outcome.fail(self.reason, self.message)
        result.parts.append(outcome)


@dataclass(slots=True)
class _Request:
    """The parts of one request, as collected."""

    part_type: str
    limits: MetadataLimits
    documents: list[bytes | None] = field(default_factory=list)  # None: cut short
    bulk: list[BulkPart] = field(default_factory=list)

    def close(self) -> None:
        for part in self.bulk:
            part.close()


async def metadata_instances(
    events: AsyncIterator[PartEvent], part_type: str, study_uid: str | None, limits: MetadataLimits
) -> AsyncIterator[PartEvent | Refusal]:
    """Turn the part events of a metadata request into ``application/dicom`` part events (one
    part per assembled instance) and refusals."""
    request = _Request(part_type, limits)
    try:
        await _collect(request, events)
        items = list(_items(request))
        if not items:
            raise BadRequest(f"the {part_type} metadata holds no data set")
        usage = Counter(
            uri for item in items if isinstance(item, dict) for uri in bulk_references(item)
        )
        locations = Counter(part.location for part in request.bulk)
        parts = {part.location: part for part in request.bulk if part.location}
        for part in request.bulk:
            if usage[part.location] == 0:
                yield Refusal(
                    FailureReason.CANNOT_UNDERSTAND,
                    f"bulk data part {part.number} ({part.location or 'no Content-Location'})"
                    " is referenced by no BulkDataURI",
                    instance=False,
                )
        completion = Completion(study_uid)
        for ordinal, item in enumerate(items, start=1):
            if isinstance(item, PartRejected):
                yield Refusal(item.reason, f"data set {ordinal}: {item.message}")
                continue
            try:
                _check_references(item, parts, usage, locations)
                instance = await asyncio.to_thread(
                    assemble, item, parts, completion, ordinal, limits.bulk_max_bytes
                )
            except PartRejected as exc:
                yield Refusal(exc.reason, f"data set {ordinal}: {exc.message}", *_uids(item))
                continue
            yield PartEvent("begin", {"content-type": "application/dicom"})
            async for chunk in instance.chunks():
                yield PartEvent("data", data=chunk)
            yield PartEvent("end")
    finally:
        request.close()


async def _collect(request: _Request, events: AsyncIterator[PartEvent]) -> None:
    """Read every part: metadata parts in memory (bounded), bulk data parts kept by location."""
    limits = request.limits
    document: bytearray | None = None
    bulk: BulkPart | None = None
    async for event in events:
        if event.kind == "begin":
            first = not request.documents and not request.bulk
            media, _ = media_type_parameters(event.headers.get("content-type", ""))
            media = media or (request.part_type if first else "application/octet-stream")
            if media == "application/json" and request.part_type == "application/dicom+json":
                media = request.part_type  # the generic JSON type some clients send
            if first and media != request.part_type:
                raise BadRequest(
                    f"the first part is {media}; a {request.part_type} request starts with its"
                    " metadata (PS3.18 8.6.1.2)"
                )
            if media == request.part_type:
                document = bytearray()
                continue
            location = event.headers.get("content-location", "").strip()
            number = len(request.bulk) + 1
            bulk = BulkPart(number, location, media, limits.memory_max_bytes, limits.bulk_max_bytes)
            request.bulk.append(bulk)
        elif event.kind == "data" and document is not None:
            document.extend(event.data)
            if len(document) > limits.metadata_max_bytes:
                raise PayloadTooLarge(
                    f"a {request.part_type} part exceeds {limits.metadata_max_bytes} bytes"
                    " (PACSFLOW_STOW_METADATA_MAX_BYTES)"
                )
        elif event.kind == "data" and bulk is not None:
            await bulk.write(event.data)
        elif event.kind in ("end", "truncated"):
            if document is not None:
                request.documents.append(bytes(document) if event.kind == "end" else None)
            elif bulk is not None:
                bulk.truncated = event.kind == "truncated"
            document, bulk = None, None


def _items(request: _Request) -> Iterator[JsonDict | PartRejected]:
    """The data sets of the metadata parts; a part that cannot be read fails its instances."""
    for document in request.documents:
        if document is None:
            if request.part_type == "application/dicom+json":
                raise BadRequest("the request ended inside the application/dicom+json part")
            yield PartRejected(FailureReason.CANNOT_UNDERSTAND, "the request ended inside it")
        elif request.part_type == "application/dicom+json":
            yield from _json_items(document)
        else:
            yield _xml_item(document)


def _json_items(document: bytes) -> Iterator[JsonDict | PartRejected]:
    try:
        data = orjson.loads(document)
    except orjson.JSONDecodeError as exc:
        raise BadRequest(f"the application/dicom+json part is not JSON: {exc}") from exc
    if not isinstance(data, list):
        raise BadRequest("the application/dicom+json part is not an array of data sets (F.2.1)")
    for item in data:
        if isinstance(item, dict):
            yield item
        else:
            yield PartRejected(FailureReason.CANNOT_UNDERSTAND, "not a DICOM JSON object")


def _xml_item(document: bytes) -> JsonDict | PartRejected:
    """One Native DICOM Model document (PS3.19 A.1); no DTD or entity declarations."""
    if b"<!DOCTYPE" in document.upper() or b"<!ENTITY" in document.upper():
        return PartRejected(FailureReason.CANNOT_UNDERSTAND, "DTDs and entities are not allowed")
    try:
        return xml_to_dataset(document)
    except (SyntaxError, ValueError, TypeError) as exc:  # ElementTree's ParseError is a SyntaxError
        return PartRejected(
            FailureReason.CANNOT_UNDERSTAND, f"not a Native DICOM Model document: {exc}"
        )


def _check_references(
    item: JsonDict, parts: dict[str, BulkPart], usage: Counter[str], locations: Counter[str]
) -> None:
    """Each BulkDataURI names exactly one whole part, that no other attribute names."""
    for uri in bulk_references(item):
        if uri not in parts:
            raise PartRejected(
                FailureReason.BULK_DATA_MISSING,
                f"BulkDataURI {uri!r} matches the Content-Location of no part",
            )
        part = parts[uri]
        if locations[uri] > 1:
            raise PartRejected(
                FailureReason.BULK_DATA_AMBIGUOUS,
                f"{locations[uri]} parts have Content-Location {uri!r}",
            )
        if usage[uri] > 1:
            raise PartRejected(
                FailureReason.BULK_DATA_AMBIGUOUS,
                f"bulk data part {part.number} ({uri}) is referenced {usage[uri]} times",
            )
        if part.oversize:
            raise PartRejected(
                FailureReason.OUT_OF_RESOURCES,
                f"bulk data part {part.number} ({uri}) exceeds {part.size_max_bytes} bytes"
                " (PACSFLOW_STOW_BULK_MAX_BYTES)",
            )
        if part.truncated:
            raise PartRejected(
                FailureReason.CANNOT_UNDERSTAND, f"the request ended inside bulk data part {uri}"
            )


def _uids(item: JsonDict) -> tuple[str, str, str]:
    """SOP Class, SOP Instance and Study Instance UIDs as sent (for a refusal)."""

    def first(tag: str) -> str:
        attribute = item.get(tag)
        values = (attribute.get("Value") if isinstance(attribute, dict) else None) or [""]
        return values[0] if isinstance(values[0], str) else ""

    return first("00080016"), first("00080018"), first("0020000D")
