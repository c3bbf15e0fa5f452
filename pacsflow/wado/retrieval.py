"""What a retrieval names, asks and returns (PS3.18 10.4, 9): key, request and payload.

``ResourceKey`` names a study, a series of it or an instance of that series (PS3.18 10.4.1.1
resources); ``Retrieval`` is what the request asks besides the resource (the site it reads,
Accept, Range, If-None-Match, Cache-Control, query parameters, the DICOMweb root);
``Payload`` is what every WADO-RS and WADO-URI retrieval returns, whatever its resource.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass, field

__all__ = ["Payload", "ResourceKey", "Retrieval"]


@dataclass(frozen=True, slots=True)
class ResourceKey:
    """A study, a series of it, or an instance of that series, by UIDs (PS3.18 10.4.1.1)."""

    study: str
    series: str | None = None
    instance: str | None = None

    def __post_init__(self) -> None:
        if self.instance is not None and self.series is None:
            raise ValueError("an instance is named within its series")

    def __str__(self) -> str:
        if self.instance is not None:
            return f"instance {self.instance} in series {self.series} of study {self.study}"
        if self.series is not None:
            return f"series {self.series} of study {self.study}"
        return f"study {self.study}"


@dataclass(frozen=True, slots=True)
class Retrieval:
    """What a request asks besides its resource (PS3.18 8.3, 8.7): read once per request."""

    site: str
    accept: str = ""
    range: str | None = None
    if_none_match: str | None = None
    parameters: tuple[tuple[str, str], ...] = ()
    root_url: str = ""
    no_cache: bool = False  # Cache-Control: no-cache (RFC 9111 5.2.1.4): make it anew


@dataclass(frozen=True, slots=True)
class Payload:
    """What a retrieval returns: status, media type, headers, a body in bytes or streamed.

    ``etag`` validates a representation (a 304 has no body); ``compressible`` bodies may be
    sent with a content coding the client accepts.
    """

    content_type: str
    body: bytes | AsyncIterator[bytes] = b""
    status: int = 200
    headers: Mapping[str, str] = field(default_factory=dict)
    etag: str | None = None
    compressible: bool = False
