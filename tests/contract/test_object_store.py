"""The object store port's contract, run against every adapter (see ``pacsflow.ports.objects``)."""

from __future__ import annotations

import asyncio
import hashlib
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from pathlib import Path

import pytest

from pacsflow.adapters.fs_store import FileSystemObjectStore
from pacsflow.adapters.s3_store import S3ObjectStore
from pacsflow.errors import ObjectNotFound, ObjectStoreUnavailable
from pacsflow.ports.objects import ObjectInfo, ObjectStore
from tests.support.servers import free_port

DATA = bytes(range(256)) * 40  # 10 KiB with a different byte at every offset modulo 256


@asynccontextmanager
async def _filesystem(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[ObjectStore]:
    yield FileSystemObjectStore(tmp_path / "objects")


@asynccontextmanager
async def _s3(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[ObjectStore]:
    endpoint, bucket = request.getfixturevalue("s3_endpoint"), request.getfixturevalue("s3_bucket")
    yield S3ObjectStore(endpoint, bucket=bucket, access_key="test", secret_key="test")


@asynccontextmanager
async def _seaweedfs(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[ObjectStore]:
    endpoint = request.getfixturevalue("seaweedfs_endpoint")
    bucket = request.getfixturevalue("seaweedfs_bucket")
    yield S3ObjectStore(endpoint, bucket=bucket, access_key="test", secret_key="test")


# One factory per adapter: each yields a fresh, empty, not yet started store and cleans up after.
# A factory asks for the fixtures it needs (a server, a bucket) through ``request``, so running
# one adapter's tests starts nothing the others need.
FACTORIES: dict[
    str, Callable[[pytest.FixtureRequest, Path], AbstractAsyncContextManager[ObjectStore]]
] = {
    "filesystem": _filesystem,
    "s3": _s3,  # a bucket per test on the S3-protocol test server described in TEST-INFRA.md
    "seaweedfs": _seaweedfs,  # the S3 adapter on a durable, production S3 server (issue 23)
}


@pytest.fixture(params=list(FACTORIES))
async def store(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[ObjectStore]:
    async with FACTORIES[request.param](request, tmp_path) as created:
        await created.start()
        await created.start()  # start is idempotent
        try:
            yield created
        finally:
            await created.close()


async def _collect(chunks: AsyncIterator[bytes]) -> list[bytes]:
    return [chunk async for chunk in chunks]


async def _keys(store: ObjectStore, prefix: str) -> list[str]:
    return sorted([key async for key in store.list(prefix)])


async def test_put_get_round_trip(store: ObjectStore) -> None:
    await store.put("studies/1.2.3/instances/4.5.6", DATA)
    assert await store.get("studies/1.2.3/instances/4.5.6") == DATA
    assert await store.stat("studies/1.2.3/instances/4.5.6") == ObjectInfo(
        key="studies/1.2.3/instances/4.5.6", size=len(DATA)
    )


async def test_empty_object_round_trip(store: ObjectStore) -> None:
    await store.put("empty", b"")
    assert await store.get("empty") == b""
    assert await store.stat("empty") == ObjectInfo(key="empty", size=0)


async def test_overwrite_replaces(store: ObjectStore) -> None:
    await store.put("k", DATA)
    await store.put("k", b"short")
    assert await store.get("k") == b"short"
    assert await store.stat("k") == ObjectInfo(key="k", size=5)


async def test_writer_streams_many_chunks(store: ObjectStore) -> None:
    chunk_size, total = 64 * 1024, 20 * 1024 * 1024
    expected = hashlib.sha256()
    async with store.writer("big/object") as writer:
        for index in range(total // chunk_size):
            chunk = hashlib.sha256(index.to_bytes(4, "big")).digest() * (chunk_size // 32)
            expected.update(chunk)
            await writer.write(chunk)
        assert writer.size == total
    assert await store.stat("big/object") == ObjectInfo(key="big/object", size=total)
    received = hashlib.sha256()
    async for chunk in store.stream("big/object"):
        received.update(chunk)
    assert received.hexdigest() == expected.hexdigest()
    assert hashlib.sha256(await store.get("big/object")).hexdigest() == expected.hexdigest()


async def test_writer_that_raises_leaves_no_object(store: ObjectStore) -> None:
    with pytest.raises(RuntimeError, match="client went away"):
        async with store.writer("failed/object") as writer:
            await writer.write(DATA * 200)  # 2 MiB: more than any write buffer
            raise RuntimeError("client went away")
    assert await store.stat("failed/object") is None
    with pytest.raises(ObjectNotFound):
        await store.get("failed/object")
    assert await _keys(store, "") == []


async def test_writer_that_raises_keeps_the_previous_object(store: ObjectStore) -> None:
    await store.put("k", b"previous")
    with pytest.raises(RuntimeError):
        async with store.writer("k") as writer:
            await writer.write(DATA)
            raise RuntimeError("abort")
    assert await store.get("k") == b"previous"


async def test_writer_overwrites_on_clean_exit(store: ObjectStore) -> None:
    await store.put("k", b"previous")
    async with store.writer("k") as writer:
        await writer.write(b"new ")
        await writer.write(b"bytes")
    assert await store.get("k") == b"new bytes"


@pytest.mark.parametrize(
    ("start", "length", "expected"),
    [
        (0, 10, DATA[:10]),
        (5000, 100, DATA[5000:5100]),
        (len(DATA) - 10, 10, DATA[-10:]),
        (len(DATA) - 5, 100, DATA[-5:]),
        (len(DATA), 10, b""),
        (len(DATA) + 100, 10, b""),
        (123, 0, b""),
        (0, len(DATA), DATA),
    ],
    ids=["start", "middle", "end", "across-end", "at-end", "past-end", "empty", "whole"],
)
async def test_read_range(store: ObjectStore, start: int, length: int, expected: bytes) -> None:
    await store.put("ranged", DATA)
    assert await store.read_range("ranged", start, length) == expected


@pytest.mark.parametrize(
    ("start", "end"),
    [(0, None), (0, len(DATA)), (1000, 3500), (2500, None), (3000, len(DATA) + 100), (700, 700)],
)
async def test_stream_range(store: ObjectStore, start: int, end: int | None) -> None:
    await store.put("streamed", DATA)
    chunks = await _collect(store.stream("streamed", start, end, chunk_size=1000))
    assert b"".join(chunks) == DATA[start:end]
    assert all(0 < len(chunk) <= 1000 for chunk in chunks)


async def test_missing_key(store: ObjectStore) -> None:
    assert await store.stat("no/such/object") is None
    with pytest.raises(ObjectNotFound):
        await store.get("no/such/object")
    with pytest.raises(ObjectNotFound):
        await store.read_range("no/such/object", 0, 10)
    with pytest.raises(ObjectNotFound):
        await _collect(store.stream("no/such/object"))
    with pytest.raises(ObjectNotFound):
        await store.copy("no/such/object", "destination")
    assert await store.stat("destination") is None
    with pytest.raises(ObjectNotFound):
        async with store.local_file("no/such/object"):
            pass


async def test_a_prefix_of_keys_is_not_an_object(store: ObjectStore) -> None:
    await store.put("studies/1.2/instance", DATA)
    assert await store.stat("studies/1.2") is None
    with pytest.raises(ObjectNotFound):
        await store.get("studies/1.2")
    await store.delete("studies/1.2")
    assert await store.get("studies/1.2/instance") == DATA


async def test_delete_is_idempotent(store: ObjectStore) -> None:
    await store.put("k", DATA)
    await store.delete("k")
    assert await store.stat("k") is None
    await store.delete("k")
    await store.delete("never/written")
    assert await _keys(store, "") == []


async def test_copy_survives_deletion_and_overwrite_of_the_source(store: ObjectStore) -> None:
    await store.put("source", DATA)
    await store.put("copy-of-overwritten", b"old destination")
    await store.copy("source", "copy/deleted")
    await store.copy("source", "copy-of-overwritten")
    await store.delete("source")
    assert await store.get("copy/deleted") == DATA
    assert await store.get("copy-of-overwritten") == DATA
    await store.put("source", b"new source")
    await store.copy("source", "copy/of-new")
    await store.put("source", b"overwritten again")
    assert await store.get("copy/deleted") == DATA
    assert await store.get("copy/of-new") == b"new source"


async def test_list_by_prefix(store: ObjectStore) -> None:
    keys = [
        "studies/1.2/series/3/instances/a",
        "studies/1.2/series/3/instances/b",
        "studies/1.2/series/4/instances/c",
        "studies/1.23/series/5/instances/d",
        "studies/9/series/6/instances/e",
        "staging/f",
        "top",
    ]
    for key in keys:
        await store.put(key, key.encode())
    assert await _keys(store, "") == sorted(keys)
    assert await _keys(store, "studies/1.2/series/3/") == keys[:2]
    assert await _keys(store, "studies/1.2/") == keys[:3]
    assert await _keys(store, "studies/1.2") == keys[:4]
    assert await _keys(store, "st") == sorted(keys[:6])
    assert await _keys(store, "studies/1.2/series/3/instances/a") == keys[:1]
    assert await _keys(store, "nothing/") == []
    assert await _keys(store, "studies/7") == []


async def test_local_file_has_the_object_bytes(store: ObjectStore) -> None:
    await store.put("studies/1/instance", DATA)
    async with store.local_file("studies/1/instance") as path:
        assert await asyncio.to_thread(path.read_bytes) == DATA


async def test_get_many_reads_in_order_with_none_for_missing(store: ObjectStore) -> None:
    keys = [f"studies/1.2/series/3/instances/{i}.json" for i in range(40)]
    for i, key in enumerate(keys[:-1]):
        await store.put(key, f"object {i}".encode())
    found = await store.get_many([keys[5], keys[-1], keys[0], *keys[10:39]])
    assert found[0] == b"object 5" and found[1] is None and found[2] == b"object 0"
    assert found[3:] == [f"object {i}".encode() for i in range(10, 39)]
    assert await store.get_many([]) == []


# ---- check(): the readiness probe's question, answered quickly either way

CHECK_WAIT = 10.0  # upper bound of a check that fails; a healthy store answers long before


async def test_check_passes_on_a_live_store(store: ObjectStore) -> None:
    await asyncio.wait_for(store.check(), CHECK_WAIT)


async def test_filesystem_check_raises_once_the_root_is_gone(tmp_path: Path) -> None:
    created = FileSystemObjectStore(tmp_path / "objects")
    await created.start()
    await created.check()
    (tmp_path / "objects").rename(tmp_path / "moved")
    with pytest.raises(ObjectStoreUnavailable):
        await asyncio.wait_for(created.check(), CHECK_WAIT)


async def test_s3_check_raises_on_a_closed_port() -> None:
    created = S3ObjectStore(
        f"127.0.0.1:{free_port()}", bucket="pacsflow", access_key="test", secret_key="test"
    )
    loop = asyncio.get_running_loop()
    began = loop.time()
    with pytest.raises(ObjectStoreUnavailable):
        await asyncio.wait_for(created.check(), CHECK_WAIT)
    assert loop.time() - began < CHECK_WAIT
    await created.close()


async def test_s3_check_raises_when_the_bucket_is_missing(s3_endpoint: str, s3_bucket: str) -> None:
    created = S3ObjectStore(s3_endpoint, bucket=s3_bucket, access_key="test", secret_key="test")
    with pytest.raises(ObjectStoreUnavailable, match="does not exist"):
        await created.check()  # not started: the bucket was never created
    await created.start()
    await created.check()
    await created.close()


async def test_write_batch_puts_moves_and_deletes_together(store: ObjectStore) -> None:
    """One group commit: new objects, a rename (the source is gone) and removals."""
    await store.put("staging/part", DATA)
    await store.put("old/frames", b"stale")
    await store.write_batch(
        puts=[("final/a.json", b"{}"), ("final/a.frames", b"[]")],
        moves=[("staging/part", "final/a.dcm")],
        deletes=["old/frames", "never/written"],
    )
    assert await store.get("final/a.dcm") == DATA
    assert await store.get("final/a.json") == b"{}"
    assert await _keys(store, "") == ["final/a.dcm", "final/a.frames", "final/a.json"]
    await store.write_batch()  # nothing to do


async def test_write_batch_moves_over_an_existing_object(store: ObjectStore) -> None:
    await store.put("final/a.dcm", b"the object it replaces")
    await store.put("staging/part", DATA)
    await store.write_batch(moves=[("staging/part", "final/a.dcm")])
    assert await store.get("final/a.dcm") == DATA
    assert await store.stat("staging/part") is None


async def test_write_batch_of_a_missing_source_raises(store: ObjectStore) -> None:
    with pytest.raises(ObjectNotFound):
        await store.write_batch(moves=[("staging/gone", "final/a.dcm")])
    assert await store.stat("final/a.dcm") is None


async def test_objects_written_without_waiting_are_synced_together(store: ObjectStore) -> None:
    """``durable=False`` objects are visible at once; ``sync`` makes them durable."""
    async with store.writer("staging/1", durable=False) as writer:
        await writer.write(DATA)
    await store.put("staging/2", DATA[:100], durable=False)
    assert await store.get("staging/1") == DATA
    await store.sync(["staging/1", "staging/2"])
    await store.sync([])
    assert await store.get("staging/2") == DATA[:100]
