"""What only the filesystem object store promises: safe keys, invisible and crash-safe writes."""

from __future__ import annotations

import asyncio
import os
import signal
import sys
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path

import pytest

import pacsflow
from pacsflow.adapters.fs_store import FileSystemObjectStore
from pacsflow.errors import ObjectStoreUnavailable

KEY = "studies/1.2/series/3.4/instances/5.6"
PACKAGE_ROOT = Path(pacsflow.__file__).resolve().parents[1]


@pytest.fixture
async def store(tmp_path: Path) -> AsyncIterator[FileSystemObjectStore]:
    created = FileSystemObjectStore(tmp_path / "objects")
    await created.start()
    yield created
    await created.close()


def _temp_files(root: Path) -> list[Path]:
    """Files in the temporary area (one directory per process) under ``root``."""
    return sorted(path for path in (root / ".tmp").rglob("*") if path.is_file())


def _tree(root: Path) -> list[str]:
    """Every file and directory under ``root``, relative, sorted."""
    return sorted(path.relative_to(root).as_posix() for path in root.rglob("*"))


async def _keys(store: FileSystemObjectStore, prefix: str = "") -> list[str]:
    return [key async for key in store.list(prefix)]


async def _first(chunks: AsyncIterator[bytes]) -> None:
    async for _ in chunks:
        return


async def _open_writer(store: FileSystemObjectStore, key: str) -> None:
    async with store.writer(key) as writer:
        await writer.write(b"escaped")


async def _open_local_file(store: FileSystemObjectStore, key: str) -> None:
    async with store.local_file(key):
        pass


OPERATIONS: dict[str, Callable[[FileSystemObjectStore, str], Awaitable[object]]] = {
    "put": lambda store, key: store.put(key, b"escaped"),
    "writer": _open_writer,
    "get": lambda store, key: store.get(key),
    "read_range": lambda store, key: store.read_range(key, 0, 1),
    "stream": lambda store, key: _first(store.stream(key)),
    "stat": lambda store, key: store.stat(key),
    "delete": lambda store, key: store.delete(key),
    "copy-from": lambda store, key: store.copy(key, "inside"),
    "copy-to": lambda store, key: store.copy("inside", key),
    "local_file": _open_local_file,
}

BAD_KEYS = [
    "",
    "/etc/passwd",
    "../outside",
    "a/../../outside",
    "a/..",
    "..",
    "./a",
    "a/./b",
    "a//b",
    "a/",
    "a\\..\\..\\outside",
    "a\x00b",
    ".tmp/x",
    ".tmp",
]


@pytest.mark.parametrize("operation", OPERATIONS)
@pytest.mark.parametrize("key", BAD_KEYS)
async def test_unsafe_keys_are_rejected(
    store: FileSystemObjectStore, tmp_path: Path, operation: str, key: str
) -> None:
    await store.put("inside", b"inside")
    before = _tree(tmp_path)
    with pytest.raises(ValueError, match="invalid object key"):
        await OPERATIONS[operation](store, key)
    assert _tree(tmp_path) == before
    assert await store.get("inside") == b"inside"


@pytest.mark.parametrize("prefix", ["/etc", "../", "a/../", "a\\b", "a\x00", ".tmp/", "a//"])
async def test_unsafe_prefixes_are_rejected(store: FileSystemObjectStore, prefix: str) -> None:
    with pytest.raises(ValueError, match="invalid"):
        await _keys(store, prefix)


async def test_invalid_ranges_are_rejected(store: FileSystemObjectStore) -> None:
    await store.put(KEY, b"0123456789")
    with pytest.raises(ValueError, match="invalid range"):
        await store.read_range(KEY, -1, 2)
    with pytest.raises(ValueError, match="invalid range"):
        await store.read_range(KEY, 0, -2)
    with pytest.raises(ValueError, match="invalid range"):
        await _first(store.stream(KEY, chunk_size=0))
    with pytest.raises(ValueError, match="invalid range"):
        await _first(store.stream(KEY, start=-1))


async def test_nothing_is_visible_while_a_writer_is_open(store: FileSystemObjectStore) -> None:
    await store.put("studies/other", b"other")
    async with store.writer(KEY) as writer:
        await writer.write(b"x" * (3 << 20))  # more than the write buffer: bytes are on disk
        await writer.write(b"tail")
        assert writer.size == (3 << 20) + 4
        assert await store.stat(KEY) is None
        assert not store.root.joinpath(*KEY.split("/")).exists()
        assert await _keys(store) == ["studies/other"]
        (staged,) = _temp_files(store.root)
        assert staged.stat().st_size >= 3 << 20
    assert await store.stat(KEY) is not None
    assert await _keys(store) == [KEY, "studies/other"]
    assert _temp_files(store.root) == []


async def test_an_overwrite_is_invisible_until_the_writer_exits(
    store: FileSystemObjectStore,
) -> None:
    await store.put(KEY, b"old")
    async with store.writer(KEY) as writer:
        await writer.write(b"new" * (1 << 20))
        assert await store.get(KEY) == b"old"
    assert await store.get(KEY) == b"new" * (1 << 20)


async def test_failed_writer_removes_its_temporary_file(store: FileSystemObjectStore) -> None:
    with pytest.raises(KeyError):
        async with store.writer(KEY) as writer:
            await writer.write(b"x" * (2 << 20))
            raise KeyError("boom")
    assert _temp_files(store.root) == []
    assert [t for t in _tree(store.root) if not t.startswith(".tmp")] == []


async def test_a_cancelled_writer_leaves_nothing(store: FileSystemObjectStore) -> None:
    started, never = asyncio.Event(), asyncio.Event()

    async def upload() -> None:
        async with store.writer(KEY) as writer:
            await writer.write(b"x" * (2 << 20))
            started.set()
            await never.wait()

    task = asyncio.create_task(upload())
    await started.wait()
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert await store.stat(KEY) is None
    assert [t for t in _tree(store.root) if not t.startswith(".tmp")] == []


async def test_published_objects_are_read_only(store: FileSystemObjectStore) -> None:
    await store.put(KEY, b"bytes")
    async with store.local_file(KEY) as path:
        assert path == store.root.joinpath(*KEY.split("/"))
        assert path.stat().st_mode & 0o222 == 0


async def test_copy_is_a_hard_link(store: FileSystemObjectStore) -> None:
    await store.put(KEY, b"bytes")
    await store.copy(KEY, "copies/one")
    original = store.root.joinpath(*KEY.split("/")).stat()
    copied = (store.root / "copies" / "one").stat()
    assert (copied.st_dev, copied.st_ino) == (original.st_dev, original.st_ino)
    assert _temp_files(store.root) == []


async def test_a_key_below_an_object_is_refused(store: FileSystemObjectStore) -> None:
    await store.put("studies/1", b"object")
    with pytest.raises(ObjectStoreUnavailable):
        await store.put("studies/1/child", b"child")
    assert await store.get("studies/1") == b"object"
    assert _temp_files(store.root) == []


CHILD = """
import asyncio, sys
from pathlib import Path
from pacsflow.adapters.fs_store import FileSystemObjectStore

async def main() -> None:
    store = FileSystemObjectStore(Path(sys.argv[1]))
    await store.start()
    async with store.writer(sys.argv[2]) as writer:
        await writer.write(b"x" * (3 << 20))
        print("writing", flush=True)
        await asyncio.to_thread(sys.stdin.readline)
        await writer.write(b"never")

asyncio.run(main())
"""


async def test_a_killed_writer_leaves_no_object_and_start_cleans_up(tmp_path: Path) -> None:
    root = tmp_path / "objects"
    paths = [str(PACKAGE_ROOT), os.environ.get("PYTHONPATH", "")]
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(path for path in paths if path)}
    child = await asyncio.create_subprocess_exec(
        sys.executable,
        "-c",
        CHILD,
        str(root),
        KEY,
        stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        env=env,
    )
    assert child.stdout is not None
    try:
        line = await child.stdout.readline()
        if line != b"writing\n":
            _, stderr = await child.communicate()
            pytest.fail(f"writer process did not start: {stderr.decode()}")
        (staged,) = _temp_files(root)
        assert staged.stat().st_size >= 3 << 20
    finally:
        child.kill()
        await child.wait()
    assert child.returncode == -signal.SIGKILL

    observer = FileSystemObjectStore(root)  # not started: must not touch anything
    assert await observer.stat(KEY) is None
    assert await _keys(observer) == []
    assert not root.joinpath(*KEY.split("/")).exists()
    assert [path.name for path in _temp_files(root)] == [staged.name]

    restarted = FileSystemObjectStore(root)
    await restarted.start()
    assert _temp_files(root) == []
    assert await restarted.stat(KEY) is None
    assert await _keys(restarted) == []
    await restarted.put(KEY, b"after the crash")
    assert await restarted.get(KEY) == b"after the crash"
