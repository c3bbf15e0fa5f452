"""What the routes declare about themselves for the OpenAPI document and the WADL description.

Every route states the media types of its success answer (``responses``), of its request
payload (``request_body``) and the query parameters it reads (``query``), built from the same
constants the core negotiates with where there are such constants. FastAPI turns them, with
the path and header parameters of the routes' dependencies, into the OpenAPI document
(``/dicom-web/openapi.json``), and ``services.capabilities`` turns that into the Capabilities
Description (PS3.18 8.9, Annex H), so both follow the routes that exist.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Final

from pacsflow.dicom.codecs import MEDIA_TYPES
from pacsflow.media.accept import DatasetMedia, MetadataMedia
from pacsflow.wado.rendered import DOCUMENT_TYPES, IMAGE_TYPES

__all__ = [
    "BULKDATA_TYPES",
    "DATASET_TYPES",
    "FRAME_TYPES",
    "INSTANCE_TYPES",
    "METADATA_TYPES",
    "PROBLEM",
    "QIDO",
    "RENDERED",
    "RENDERED_TYPES",
    "STATUS_REPORT",
    "THUMBNAIL_TYPES",
    "WADO_URI",
    "Parameter",
    "multipart",
    "parameters",
    "request_body",
    "responses",
]

JsonDict = dict[str, Any]

PROBLEM: Final[JsonDict] = {
    "description": "The request failed: the status and a reason (PS3.18 8.5)",
    "content": {
        "application/json": {
            "schema": {
                "type": "object",
                "properties": {"status": {"type": "integer"}, "message": {"type": "string"}},
                "required": ["status", "message"],
            }
        }
    },
}
_BINARY: Final[JsonDict] = {"schema": {"type": "string", "format": "binary"}}


def multipart(part_type: str) -> str:
    """A ``multipart/related`` media type whose parts are ``part_type``."""
    return f'multipart/related; type="{part_type}"'


def _types(offers: Iterable[DatasetMedia | MetadataMedia]) -> tuple[str, ...]:
    return tuple(multipart(o.part_type) if o.part_type else o.media_type for o in offers)


DATASET_TYPES: Final = _types(DatasetMedia)
METADATA_TYPES: Final = _types(MetadataMedia)
STATUS_REPORT: Final = ("application/json",)
OCTET_STREAM: Final = "application/octet-stream"
BULKDATA_TYPES: Final = (multipart(OCTET_STREAM), OCTET_STREAM)
INSTANCE_TYPES: Final = (
    multipart("application/dicom"),
    "application/dicom",
    "application/zip",
    multipart(OCTET_STREAM),
)
FRAME_TYPES: Final = tuple(
    multipart(m) for m in dict.fromkeys([OCTET_STREAM, *MEDIA_TYPES.values()])
)
THUMBNAIL_TYPES: Final = IMAGE_TYPES
RENDERED_TYPES: Final = (*IMAGE_TYPES, *(m for kind in DOCUMENT_TYPES.values() for m in kind))


def responses(
    media_types: Sequence[str],
    extra: Mapping[int | str, JsonDict] | None = None,
    *,
    status: int = 200,
    description: str = "Success",
) -> dict[int | str, JsonDict]:
    """The answers of a route: its success media types, then ``extra``, then its errors."""
    success: JsonDict = {"description": description}
    if media_types:
        success["content"] = {media_type: dict(_BINARY) for media_type in media_types}
    return {status: success, **(extra or {}), "4XX": PROBLEM, "503": PROBLEM}


def request_body(media_types: Sequence[str], *, required: bool = True) -> JsonDict:
    """The ``openapi_extra`` of a route that reads a payload of ``media_types``."""
    content = {media_type: dict(_BINARY) for media_type in media_types}
    return {"requestBody": {"required": required, "content": content}}


@dataclass(frozen=True, slots=True)
class Parameter:
    """A query or header parameter a route reads from the request itself (not an argument)."""

    name: str
    description: str
    repeating: bool = False
    free_form: bool = False  # any attribute as the name: ``{attributeID}={value}``
    location: str = "query"

    def to_openapi(self) -> JsonDict:
        """The OpenAPI Parameter Object."""
        described: JsonDict = {
            "name": self.name,
            "in": self.location,
            "description": self.description,
        }
        if self.free_form:
            schema = {"type": "object", "additionalProperties": {"type": "string"}}
            return {**described, "style": "form", "explode": True, "schema": schema}
        if self.repeating:
            array = {"type": "array", "items": {"type": "string"}}
            return {**described, "style": "form", "explode": True, "schema": array}
        return {**described, "schema": {"type": "string"}}


def parameters(*read: Parameter, extra: JsonDict | None = None) -> JsonDict:
    """The ``openapi_extra`` of a route that reads these parameters."""
    return {"parameters": [p.to_openapi() for p in read], **(extra or {})}


ACCEPT: Final = Parameter("Accept", "the Acceptable Media Types (PS3.18 8.4)", location="header")
QIDO: Final = (
    Parameter(
        "attributeID",
        "{attributeID}={value}: a matching key, by keyword, tag or a dotted sequence path"
        " (PS3.18 8.3.4.1)",
        free_form=True,
    ),
    Parameter("includefield", "attributes to return, or all (PS3.18 8.3.4.3)", repeating=True),
    Parameter("fuzzymatching", "true or false (PS3.18 8.3.4.2)"),
    Parameter("limit", "the most results to return (PS3.18 8.3.4.4)"),
    Parameter("offset", "results to skip (PS3.18 8.3.4.4)"),
    ACCEPT,
)
RENDERED: Final = (
    Parameter("accept", "the Acceptable Media Types, over the header (PS3.18 8.3.3.1)"),
    Parameter("annotation", "patient and/or technique: burned-in text (PS3.18 8.3.5.1.1)"),
    Parameter("charset", "the character set of text renderings (PS3.18 8.3.3.2)"),
    Parameter("quality", "1-100, for lossy media types (PS3.18 8.3.5.1.2)"),
    Parameter("viewport", "vw,vh[,sx,sy,sw,sh] (PS3.18 8.3.5.1.3)"),
    Parameter("window", "center,width,function (PS3.18 8.3.5.1.4)"),
    Parameter("iccprofile", "no, yes, srgb, adobergb or rommrgb (PS3.18 8.3.5.1.5)"),
)
WADO_URI: Final = tuple(
    Parameter(name, description)
    for name, description in (
        ("requestType", "WADO (PS3.18 9.1.2.1.1)"),
        ("studyUID", "the Study Instance UID"),
        ("seriesUID", "the Series Instance UID"),
        ("objectUID", "the SOP Instance UID"),
        ("contentType", "application/dicom or a rendered media type"),
        ("charset", "the character set of text renderings"),
        ("anonymize", "yes: de-identified (application/dicom)"),
        ("annotation", "patient and/or technique"),
        ("rows", "height of the rendering in pixels"),
        ("columns", "width of the rendering in pixels"),
        ("region", "xmin,ymin,xmax,ymax in 0.0-1.0"),
        ("windowCenter", "the center of the VOI window"),
        ("windowWidth", "the width of the VOI window"),
        ("frameNumber", "the frame to render"),
        ("imageQuality", "1-100, for lossy media types"),
        ("presentationUID", "a presentation state (refused: not applied)"),
        ("presentationSeriesUID", "its series (refused: not applied)"),
        ("transferSyntax", "the transfer syntax of application/dicom"),
    )
)
