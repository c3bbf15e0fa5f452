"""Read-only S3 access for ``pacsflow import s3://bucket/prefix`` (``minio`` client).

Lists the objects under a prefix and reads them, whole or by range, on any S3-protocol server
(AWS, MinIO, SeaweedFS...). Client errors become ``OSError``, which the importer reports as
a file it could not read.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Final

from minio import Minio
from minio.error import MinioException
from urllib3.exceptions import HTTPError

__all__ = ["S3Source"]

_CHUNK: Final = 1024 * 1024


@contextmanager
def _translate(what: str) -> Iterator[None]:
    try:
        yield
    except (MinioException, HTTPError) as exc:
        raise OSError(f"S3 {what}: {exc}") from exc


class S3Source:
    """Objects of one S3-protocol endpoint, read with the given credentials."""

    def __init__(
        self,
        endpoint: str,
        *,
        secure: bool,
        access_key: str | None = None,
        secret_key: str | None = None,
        session_token: str | None = None,
        region: str | None = None,
    ) -> None:
        self._client = Minio(
            endpoint,
            access_key=access_key,
            secret_key=secret_key,
            session_token=session_token,
            secure=secure,
            region=region,
        )

    def list(self, bucket: str, prefix: str) -> Iterator[tuple[str, int]]:
        """(key, size) of every object under ``prefix``, in key order."""
        with _translate(f"listing s3://{bucket}/{prefix}"):
            for item in self._client.list_objects(bucket, prefix=prefix, recursive=True):
                if not item.is_dir and item.object_name is not None:
                    yield item.object_name, int(item.size or 0)

    def read(self, bucket: str, key: str, length: int) -> bytes:
        """Up to ``length`` first bytes of an object."""
        if length <= 0:
            return b""
        with _translate(f"reading s3://{bucket}/{key}"):
            response = self._client.get_object(bucket, key, offset=0, length=length)
            try:
                return response.read()
            finally:
                response.close()
                response.release_conn()

    def chunks(self, bucket: str, key: str) -> Iterator[bytes]:
        """Every byte of an object, streamed in chunks."""
        with _translate(f"reading s3://{bucket}/{key}"):
            response = self._client.get_object(bucket, key)
            try:
                yield from response.stream(_CHUNK)
            finally:
                response.close()
                response.release_conn()
