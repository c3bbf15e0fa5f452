"""HTTP Accept negotiation (RFC 9110 12.5.1) for the DICOMweb media types (PS3.18 8.7).

Written here because no maintained library parses ``multipart/related; type=...`` ranges with
their parameters and q-values the way PS3.18 8.7.3 needs them; it is a few lines.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from enum import Enum
from typing import Protocol, TypeVar

from pacsflow.errors import NotAcceptable

__all__ = ["DatasetMedia", "MediaOffer", "MediaRange", "MetadataMedia", "choose", "parse_accept"]


class MediaOffer(Protocol):
    """A representation a resource offers: a media type, and the ``type`` of a multipart one."""

    @property
    def media_type(self) -> str: ...

    @property
    def part_type(self) -> str | None: ...


class MetadataMedia(Enum):
    """DICOM attributes as QIDO-RS results and WADO-RS metadata (PS3.18 8.7.3, Annex F, PS3.19).

    The order is the preference: DICOM JSON for ``*/*`` or no Accept at all.
    """

    DICOM_JSON = ("application/dicom+json", None)
    JSON = ("application/json", None)
    DICOM_XML = ("multipart/related", "application/dicom+xml")

    @property
    def media_type(self) -> str:
        """The media type (of the whole body, for a multipart one)."""
        media_type: str = self.value[0]
        return media_type

    @property
    def part_type(self) -> str | None:
        """The media type of each part of a multipart representation."""
        part_type: str | None = self.value[1]
        return part_type


class DatasetMedia(Enum):
    """One data set as a single body (a workitem, PS3.18 11.5): DICOM JSON or PS3.19 XML."""

    DICOM_JSON = ("application/dicom+json", None)
    JSON = ("application/json", None)
    DICOM_XML = ("application/dicom+xml", None)

    @property
    def media_type(self) -> str:
        """The media type of the body."""
        media_type: str = self.value[0]
        return media_type

    @property
    def part_type(self) -> str | None:
        """Always ``None``: the body is not multipart."""
        return None


Offer = TypeVar("Offer", bound=MediaOffer)


@dataclass(frozen=True, slots=True)
class MediaRange:
    """One entry of an Accept header: ``type/subtype``, its parameters and its quality."""

    media_type: str
    parameters: tuple[tuple[str, str], ...]
    quality: float

    def parameter(self, name: str) -> str | None:
        """A parameter's value (unquoted, lowercased name), or ``None``."""
        return next((v for k, v in self.parameters if k == name), None)


def _split(header: str, separator: str) -> list[str]:
    """Split on ``separator`` outside double quotes."""
    parts: list[str] = []
    current: list[str] = []
    quoted = False
    for char in header:
        if char == '"':
            quoted = not quoted
        if char == separator and not quoted:
            parts.append("".join(current))
            current = []
        else:
            current.append(char)
    parts.append("".join(current))
    return [p.strip() for p in parts if p.strip()]


def parse_accept(header: str) -> list[MediaRange]:
    """The media ranges of an Accept header, best first (stable for equal q); ``*/*`` if empty."""
    ranges = []
    for entry in _split(header, ",") or ["*/*"]:
        media_type, *raw = _split(entry, ";") or [""]
        if "/" not in media_type:  # ";", "text": no media range (RFC 9110 12.5.1); skipped
            continue
        quality, parameters = 1.0, []
        for item in raw:
            name, _, value = item.partition("=")
            name, value = name.strip().lower(), value.strip().strip('"')
            if name == "q":
                try:
                    number = float(value)
                except ValueError:
                    number = 0.0
                quality = max(0.0, min(1.0, number)) if math.isfinite(number) else 0.0
            else:
                parameters.append((name, value))
        ranges.append(MediaRange(media_type.lower(), tuple(parameters), quality))
    return sorted(ranges, key=lambda r: -r.quality)


def choose(header: str, offers: Sequence[Offer]) -> Offer:
    """The best of ``offers`` for an Accept ``header``, or ``NotAcceptable`` (406).

    ``*/*`` and ``type/*`` match the first offer of that kind; ``multipart/related`` matches by
    its ``type`` parameter (any multipart offer when absent).
    """
    for media in parse_accept(header):
        if media.quality <= 0:
            continue
        for offer in offers:
            kind = offer.media_type
            if media.media_type in ("*/*", kind) or media.media_type == kind.split("/")[0] + "/*":
                wanted = media.parameter("type")
                part_type = offer.part_type
                if media.media_type == kind and part_type and wanted and wanted != part_type:
                    continue
                return offer
    supported = ", ".join(
        f'{o.media_type}; type="{o.part_type}"' if o.part_type else o.media_type for o in offers
    )
    raise NotAcceptable(
        f"none of the accepted media types is available; this resource offers {supported}"
    )
