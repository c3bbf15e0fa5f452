"""``s3://bucket/prefix`` locations: the endpoint, credentials and objects of a bucket.

The endpoint is ``--s3-endpoint`` (or ``AWS_ENDPOINT_URL``, else AWS itself); credentials
come from the variables every S3 tool reads: ``AWS_ACCESS_KEY_ID``, ``AWS_SECRET_ACCESS_KEY``,
``AWS_SESSION_TOKEN``, and ``AWS_REGION`` (or ``AWS_DEFAULT_REGION``); none means anonymous.
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

from pacsflow.importer.sources import Item

if TYPE_CHECKING:
    from pacsflow.adapters.s3_source import S3Source

__all__ = ["S3Options", "s3_items"]

AWS_ENDPOINT = "https://s3.amazonaws.com"


@dataclass(frozen=True, slots=True)
class S3Options:
    """Where the S3 server is and who reads from it."""

    endpoint: str = AWS_ENDPOINT
    access_key: str | None = None
    secret_key: str | None = None
    session_token: str | None = None
    region: str | None = None

    @classmethod
    def from_environment(
        cls, endpoint: str | None, environ: Mapping[str, str] = os.environ
    ) -> S3Options:
        """The options of ``--s3-endpoint`` and the AWS variables."""
        return cls(
            endpoint=endpoint or environ.get("AWS_ENDPOINT_URL") or AWS_ENDPOINT,
            access_key=environ.get("AWS_ACCESS_KEY_ID") or None,
            secret_key=environ.get("AWS_SECRET_ACCESS_KEY") or None,
            session_token=environ.get("AWS_SESSION_TOKEN") or None,
            region=environ.get("AWS_REGION") or environ.get("AWS_DEFAULT_REGION") or None,
        )

    def client(self) -> S3Source:
        """A client of the endpoint (``ValueError`` when it is not an http(s) URL)."""
        from pacsflow.adapters.s3_source import S3Source

        url = urlsplit(self.endpoint)
        if url.scheme not in ("http", "https") or not url.netloc:
            raise ValueError(f"the S3 endpoint {self.endpoint!r} is not an http(s) URL")
        return S3Source(
            url.netloc,
            secure=url.scheme == "https",
            access_key=self.access_key,
            secret_key=self.secret_key,
            session_token=self.session_token,
            region=self.region,
        )


@dataclass(frozen=True, slots=True)
class _S3Object:
    source: S3Source
    bucket: str
    key: str
    size: int

    def prefix(self, size: int) -> bytes:
        return self.source.read(self.bucket, self.key, min(size, self.size))

    def chunks(self) -> Iterator[bytes]:
        if self.size:
            yield from self.source.chunks(self.bucket, self.key)


def s3_items(location: str, options: S3Options) -> Iterator[Item]:
    """The objects under ``s3://bucket/prefix``, in key order."""
    bucket, _, prefix = location.removeprefix("s3://").partition("/")
    if not bucket:
        raise ValueError(f"{location!r} names no bucket (s3://bucket/prefix)")
    source = options.client()
    for key, size in source.list(bucket, prefix):
        yield Item(f"s3://{bucket}/{key}", size, _S3Object(source, bucket, key, size))
