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

from pacsflow.media.accept import DatasetMedia, MetadataMedia

__all__ = [
    "DATASET_TYPES",
    "METADATA_TYPES",
    "PROBLEM",
    "QueryParameter",
    "multipart",
    "query",
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
class QueryParameter:
    """A query parameter a route reads from the request itself (not a declared argument)."""

    name: str
    description: str
    repeating: bool = False
    free_form: bool = False  # any attribute as the name: ``{attributeID}={value}``

    def to_openapi(self) -> JsonDict:
        """The OpenAPI Parameter Object."""
        if self.free_form:
            schema: JsonDict = {"type": "object", "additionalProperties": {"type": "string"}}
            return {
                "name": self.name,
                "in": "query",
                "description": self.description,
                "style": "form",
                "explode": True,
                "schema": schema,
            }
        schema = {"type": "array", "items": {"type": "string"}} if self.repeating else {}
        return {
            "name": self.name,
            "in": "query",
            "description": self.description,
            "schema": schema or {"type": "string"},
            **({"style": "form", "explode": True} if self.repeating else {}),
        }


def query(*parameters: QueryParameter, extra: JsonDict | None = None) -> JsonDict:
    """The ``openapi_extra`` of a route that reads these query parameters."""
    return {"parameters": [p.to_openapi() for p in parameters], **(extra or {})}
