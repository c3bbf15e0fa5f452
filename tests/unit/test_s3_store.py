"""What only the S3 object store promises: multipart uploads, server copies, bounded failures."""

from __future__ import annotations

import asyncio
import hashlib
import time
from collections.abc import AsyncIterator

import pytest
from minio import Minio

from pacsflow.adapters.s3_store import S3ObjectStore
from pacsflow.errors import ObjectStoreUnavailable
from pacsflow.ports.objects import ObjectInfo
from tests.support.servers import free_port

MiB = 1024 * 1024


def _raw(endpoint: str) -> Minio:
    return Minio(endpoint, access_key="test", secret_key="test", secure=False)


@pytest.fixture
async def store(s3_endpoint: str, s3_bucket: str) -> AsyncIterator[S3ObjectStore]:
    created = S3ObjectStore(s3_endpoint, s3_bucket, access_key="test", secret_key="test")
    await created.start()
    yield created
    await created.close()


async def test_writer_uploads_a_large_object_in_parts(
    store: S3ObjectStore, s3_endpoint: str, s3_bucket: str
) -> None:
    expected = hashlib.sha256()
    async with store.writer("studies/1/instances/large") as writer:
        for index in range(40):
            chunk = hashlib.sha256(index.to_bytes(4, "big")).digest() * (MiB // 32)
            expected.update(chunk)
            await writer.write(chunk)
    assert await store.stat("studies/1/instances/large") == ObjectInfo(
        key="studies/1/instances/large", size=40 * MiB
    )
    received = hashlib.sha256()
    async for chunk in store.stream("studies/1/instances/large"):
        received.update(chunk)
    assert received.hexdigest() == expected.hexdigest()
    info = await asyncio.to_thread(
        _raw(s3_endpoint).stat_object, s3_bucket, "studies/1/instances/large"
    )
    assert str(info.etag).endswith("-3")  # a multipart upload of three 16 MiB parts at most


async def test_copy_keeps_the_bytes(store: S3ObjectStore) -> None:
    data = hashlib.sha256(b"seed").digest() * (3 * MiB // 32)
    await store.put("staging/upload", data)
    await store.copy("staging/upload", "studies/1/instances/2")
    await store.delete("staging/upload")
    assert await store.get("studies/1/instances/2") == data
    assert await store.stat("studies/1/instances/2") == ObjectInfo(
        "studies/1/instances/2", len(data)
    )


async def test_prefix_is_hidden_from_keys(
    s3_endpoint: str, s3_bucket: str, store: S3ObjectStore
) -> None:
    prefixed = S3ObjectStore(
        s3_endpoint, s3_bucket, access_key="test", secret_key="test", prefix="archive/"
    )
    await prefixed.start()
    await prefixed.put("studies/1/instance", b"bytes")
    assert [key async for key in prefixed.list("")] == ["studies/1/instance"]
    assert [key async for key in store.list("")] == ["archive/studies/1/instance"]
    assert await store.get("archive/studies/1/instance") == b"bytes"
    await prefixed.close()


@pytest.mark.parametrize("key", ["", "/abs", "a//b", "a/../b", "./a", "a\\b", "a\x00b", "dir/"])
async def test_invalid_keys_are_rejected(store: S3ObjectStore, key: str) -> None:
    with pytest.raises(ValueError, match="invalid object key"):
        await store.put(key, b"x")


async def test_unreachable_server_fails_fast() -> None:
    unreachable = S3ObjectStore(
        f"127.0.0.1:{free_port()}", "bucket", access_key="test", secret_key="test"
    )
    began = time.monotonic()
    with pytest.raises(ObjectStoreUnavailable):
        await asyncio.wait_for(unreachable.start(), timeout=30)
    assert time.monotonic() - began < 15
    await unreachable.close()
