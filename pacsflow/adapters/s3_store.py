"""The pipeline-mode object store: one bucket on S3, MinIO or any S3-protocol server (``s3://…``).

Built on the ``minio`` client; its blocking calls run in threads. A ``writer`` spools to an
anonymous temporary file and uploads on clean exit (multipart above ``part_size``), so an
object appears whole or not at all, as S3 itself guarantees for single requests.
"""

from __future__ import annotations

import asyncio
import io
import shutil
import tempfile
import threading
from collections.abc import AsyncIterator, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import asynccontextmanager, contextmanager
from itertools import islice
from pathlib import Path
from typing import Any, BinaryIO

from minio import Minio
from minio.commonconfig import ComposeSource, CopySource
from minio.datatypes import Object
from minio.error import MinioException, S3Error
from urllib3 import BaseHTTPResponse, PoolManager
from urllib3.exceptions import HTTPError
from urllib3.util import Retry, Timeout

from pacsflow.adapters.spooling import BufferedWriter, check_key, shielded
from pacsflow.errors import ObjectNotFound, ObjectStoreUnavailable
from pacsflow.ports.objects import ObjectInfo, ObjectWriter

__all__ = ["S3ObjectStore"]

_MIN_PART = 5 * 1024 * 1024
_MAX_SINGLE_COPY = 5 * 1024 * 1024 * 1024  # CopyObject's limit; larger sources need UploadPartCopy
_LIST_BATCH = 1000
_CONCURRENT = 32  # requests in flight for the batch calls (the connection pool's size)
_READ_ONLY = 0o444
_MISSING = frozenset({"NoSuchKey"})
_UNSATISFIABLE = "InvalidRange"  # a range that starts at or past the end of the object
# Upper bound of each request of ``check`` (connect, then read), which is never retried.
CHECK_TIMEOUT = 2.0


@contextmanager
def _translate(key: str, *, reading: bool) -> Iterator[None]:
    """Turn client errors into the port's; a missing object is ObjectNotFound only on reads."""
    try:
        yield
    except S3Error as exc:
        if reading and exc.code in _MISSING:
            raise ObjectNotFound(key) from exc
        raise ObjectStoreUnavailable(f"object store failed on {key!r}: {exc.code}") from exc
    except (MinioException, HTTPError, OSError) as exc:
        raise ObjectStoreUnavailable(f"object store failed on {key!r}: {exc}") from exc


def _release(response: BaseHTTPResponse) -> None:
    """Close a streamed response and return its connection to the pool."""
    response.close()
    response.release_conn()


class S3ObjectStore:
    """Objects in ``bucket`` under ``prefix``; keys are '/'-separated relative paths."""

    def __init__(
        self,
        endpoint: str,
        bucket: str,
        *,
        access_key: str,
        secret_key: str,
        secure: bool = False,
        region: str | None = None,
        prefix: str = "",
        part_size: int = 16 * 1024 * 1024,
        ca_certs: str | None = None,
    ) -> None:
        if not _MIN_PART <= part_size <= _MAX_SINGLE_COPY:
            raise ValueError(f"part_size must be between 5 MiB and 5 GiB, not {part_size}")
        prefix = prefix.strip("/")
        self._prefix = f"{check_key(prefix)}/" if prefix else ""
        self._bucket = bucket
        self._region = region
        self._part_size = part_size
        # TLS (s3+https): the system's CA store, or the bundle ``ca_certs`` (a private CA).
        tls: dict[str, Any] = {"ca_certs": ca_certs} if ca_certs else {}
        self._http = PoolManager(
            maxsize=_CONCURRENT,
            timeout=Timeout(connect=5, read=60),
            retries=Retry(total=3, backoff_factor=0.2, status_forcelist=(500, 502, 503, 504)),
            **tls,
        )
        # Readiness checks get their own client: short timeouts, no retries.
        self._probe_http = PoolManager(
            maxsize=1,
            timeout=Timeout(connect=CHECK_TIMEOUT, read=CHECK_TIMEOUT),
            retries=Retry(total=0),
            **tls,
        )
        self._pool: ThreadPoolExecutor | None = None
        self._pool_lock = threading.Lock()
        self._client, self._probe = (
            Minio(
                endpoint,
                access_key=access_key,
                secret_key=secret_key,
                secure=secure,
                region=region,
                http_client=http,
            )
            for http in (self._http, self._probe_http)
        )

    async def start(self) -> None:
        """Create the bucket if it is missing (idempotent)."""
        with _translate(self._bucket, reading=False):
            await asyncio.to_thread(self._start)

    async def close(self) -> None:
        """Close the pooled connections and the batch threads."""
        with self._pool_lock:
            pool, self._pool = self._pool, None
        if pool is not None:
            pool.shutdown(wait=False)
        self._http.clear()
        self._probe_http.clear()

    async def check(self) -> None:
        """Ask whether the bucket exists (HEAD, bounded, not retried)."""
        try:
            exists = await asyncio.wait_for(asyncio.to_thread(self._exists), 3 * CHECK_TIMEOUT)
        except TimeoutError as exc:
            raise ObjectStoreUnavailable(
                f"the object store did not answer within {3 * CHECK_TIMEOUT} s"
            ) from exc
        if not exists:
            raise ObjectStoreUnavailable(f"the bucket {self._bucket!r} does not exist")

    async def put(self, key: str, data: bytes | bytearray, *, durable: bool = True) -> None:
        """Store ``data`` under ``key`` atomically (one PUT, or a multipart upload); durable
        once answered, whatever ``durable`` says."""
        name = self._name(key)
        with _translate(key, reading=False):
            await shielded(lambda: self._upload(name, io.BytesIO(data), len(data)))

    @asynccontextmanager
    async def writer(self, key: str, *, durable: bool = True) -> AsyncIterator[ObjectWriter]:
        """Spool an object locally; upload it on clean exit and discard it on error.

        An S3 PUT is durable once answered, so ``durable`` changes nothing.
        """
        name = self._name(key)
        with _translate(key, reading=False):
            spool = await asyncio.to_thread(tempfile.TemporaryFile)

        async def sink(data: bytes | bytearray) -> None:
            with _translate(key, reading=False):
                await asyncio.to_thread(spool.write, data)

        writer = BufferedWriter(sink)
        try:
            yield writer
            await writer.flush()
        except BaseException:
            spool.close()  # an anonymous file: closing it removes it
            raise
        with _translate(key, reading=False):
            await shielded(lambda: self._upload(name, spool, writer.size))

    async def sync(self, keys: Sequence[str]) -> None:
        """Nothing to do: every object is durable once its PUT was answered."""

    async def write_batch(
        self,
        puts: Sequence[tuple[str, bytes]] = (),
        moves: Sequence[tuple[str, str]] = (),
        deletes: Sequence[str] = (),
    ) -> None:
        """PUTs, server-side copies and DELETEs, ``_CONCURRENT`` at a time from a pool of
        threads of its own; a move deletes its source once every copy is done (S3 has no
        rename)."""

        def upload(item: tuple[str, bytes]) -> None:
            key, data = item
            with _translate(key, reading=False):
                self._upload(self._name(key), io.BytesIO(data), len(data))

        def copy(item: tuple[str, str]) -> None:
            source, target = item
            with _translate(source, reading=True):
                self._copy(self._name(source), self._name(target))

        def remove(key: str) -> None:
            with _translate(key, reading=False):
                self._client.remove_object(self._bucket, self._name(key))

        def run() -> None:
            pool = self._batch_pool()
            list(pool.map(upload, puts))
            list(pool.map(copy, moves))
            list(pool.map(remove, [*deletes, *(source for source, _ in moves)]))

        await shielded(run)

    def _batch_pool(self) -> ThreadPoolExecutor:
        with self._pool_lock:
            if self._pool is None:
                self._pool = ThreadPoolExecutor(_CONCURRENT, thread_name_prefix="s3-batch")
            return self._pool

    async def get(self, key: str) -> bytes:
        """Read a whole (small) object."""
        name = self._name(key)
        with _translate(key, reading=True):
            return await asyncio.to_thread(self._read, name, 0, -1)

    async def get_many(self, keys: Sequence[str]) -> list[bytes | None]:
        """Read several whole objects, up to 16 requests at a time; ``None`` for a missing one."""
        limit = asyncio.Semaphore(_CONCURRENT)

        async def one(key: str) -> bytes | None:
            async with limit:
                try:
                    return await self.get(key)
                except ObjectNotFound:
                    return None

        return list(await asyncio.gather(*(one(key) for key in keys)))

    async def read_range(self, key: str, start: int, length: int) -> bytes:
        """Read ``length`` bytes from ``start``; fewer only where the object ends."""
        if start < 0 or length < 0:
            raise ValueError(f"invalid range: start={start} length={length}")
        name = self._name(key)
        with _translate(key, reading=True):
            return await asyncio.to_thread(self._read, name, start, length)

    async def stream(
        self, key: str, start: int = 0, end: int | None = None, chunk_size: int = 1 << 20
    ) -> AsyncIterator[bytes]:
        """Yield the bytes ``[start, end)`` of an object in chunks of at most ``chunk_size``."""
        if start < 0 or (end is not None and end < 0) or chunk_size <= 0:
            raise ValueError(f"invalid range: start={start} end={end} chunk_size={chunk_size}")
        name = self._name(key)
        length = -1 if end is None else max(end - start, 0)
        with _translate(key, reading=True):
            response, chunk = await asyncio.to_thread(
                self._open_first, name, start, length, chunk_size
            )
        if response is None:
            return
        try:
            while chunk:
                yield chunk
                with _translate(key, reading=True):
                    chunk = await asyncio.to_thread(response.read, chunk_size)
        finally:
            _release(response)

    async def stat(self, key: str) -> ObjectInfo | None:
        """Size of an object, or ``None`` when it does not exist."""
        name = self._name(key)
        try:
            with _translate(key, reading=True):
                result = await asyncio.to_thread(self._client.stat_object, self._bucket, name)
        except ObjectNotFound:
            return None
        return ObjectInfo(key=key, size=result.size or 0)

    async def delete(self, key: str) -> None:
        """Remove an object; removing a missing object is not an error (S3 semantics)."""
        name = self._name(key)
        with _translate(key, reading=False):
            await asyncio.to_thread(self._client.remove_object, self._bucket, name)

    async def copy(self, source: str, destination: str) -> None:
        """Copy an object on the server, atomically at the destination."""
        source_name, destination_name = self._name(source), self._name(destination)
        with _translate(source, reading=True):
            await shielded(lambda: self._copy(source_name, destination_name))

    async def list(self, prefix: str) -> AsyncIterator[str]:
        """Yield, in lexicographic order, the keys that start with ``prefix``."""
        if prefix.startswith("/") or "\\" in prefix or "\x00" in prefix:
            raise ValueError(f"invalid key prefix: {prefix!r}")
        listing = self._client.list_objects(
            self._bucket, prefix=self._prefix + prefix, recursive=True
        )
        while True:
            with _translate(prefix, reading=False):
                batch = await asyncio.to_thread(_next_batch, listing)
            if not batch:
                return
            for item in batch:
                if item.object_name and not item.is_dir:
                    yield item.object_name[len(self._prefix) :]

    @asynccontextmanager
    async def local_file(self, key: str) -> AsyncIterator[Path]:
        """A private, read-only download of the object, removed when the context ends."""
        name = self._name(key)
        with _translate(key, reading=False):
            directory = Path(await asyncio.to_thread(tempfile.mkdtemp, prefix="pacsflow-s3-"))
        try:
            path = directory / "object"
            with _translate(key, reading=True):
                await asyncio.to_thread(self._download, name, path)
            yield path
        finally:
            await asyncio.to_thread(shutil.rmtree, directory, ignore_errors=True)

    # Blocking helpers, run in threads.

    def _name(self, key: str) -> str:
        return self._prefix + check_key(key)

    def _start(self) -> None:
        if self._client.bucket_exists(self._bucket):
            return
        try:
            self._client.make_bucket(self._bucket, location=self._region)
        except S3Error as exc:
            if exc.code != "BucketAlreadyOwnedByYou":  # another process created it meanwhile
                raise

    def _exists(self) -> bool:
        with _translate(self._bucket, reading=False):
            return self._probe.bucket_exists(self._bucket)

    def _upload(self, name: str, data: BinaryIO, size: int) -> None:
        try:
            data.seek(0)
            self._client.put_object(self._bucket, name, data, size, part_size=self._part_size)
        finally:
            data.close()

    def _open(self, name: str, start: int, length: int) -> BaseHTTPResponse | None:
        """A ranged GET (``length`` -1: to the end), or None when the range holds no bytes."""
        if length == 0:
            self._client.stat_object(self._bucket, name)  # raises NoSuchKey for a missing object
            return None
        try:
            return self._client.get_object(self._bucket, name, offset=start, length=max(length, 0))
        except S3Error as exc:
            if exc.code == _UNSATISFIABLE:
                return None
            raise

    def _open_first(
        self, name: str, start: int, length: int, chunk_size: int
    ) -> tuple[BaseHTTPResponse | None, bytes]:
        """``_open`` and the first chunk in one worker-thread hop (a small object: all of it)."""
        response = self._open(name, start, length)
        if response is None:
            return None, b""
        try:
            return response, response.read(chunk_size)
        except BaseException:
            _release(response)
            raise

    def _read(self, name: str, start: int, length: int) -> bytes:
        """The bytes of a ranged GET (``length`` -1: to the end)."""
        response = self._open(name, start, length)
        if response is None:
            return b""
        try:
            return response.read()
        finally:
            _release(response)

    def _copy(self, source: str, destination: str) -> None:
        info = self._client.stat_object(self._bucket, source)
        # Pin the version that was sized, so a concurrent overwrite fails rather than mixes.
        if (info.size or 0) > _MAX_SINGLE_COPY:
            parts = [ComposeSource(self._bucket, source, match_etag=info.etag)]
            self._client.compose_object(self._bucket, destination, parts)
        else:
            origin = CopySource(self._bucket, source, match_etag=info.etag)
            self._client.copy_object(self._bucket, destination, origin)

    def _download(self, name: str, path: Path) -> None:
        self._client.fget_object(self._bucket, name, str(path))
        path.chmod(_READ_ONLY)


def _next_batch(objects: Iterator[Object]) -> tuple[Object, ...]:
    """The next page of a listing; empty when it is exhausted."""
    return tuple(islice(objects, _LIST_BATCH))
