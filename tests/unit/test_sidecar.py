"""The sidecar object's framing (``pacsflow.pipeline.sidecar``): parts sliced out as written."""

from __future__ import annotations

from pathlib import Path

import pytest

from pacsflow.adapters.fs_store import FileSystemObjectStore
from pacsflow.pipeline.keys import instance_keys
from pacsflow.pipeline.sidecar import (
    MAGIC,
    encode_sidecar,
    read_metadata,
    read_part,
    read_parts,
    sidecar_part,
)


def test_each_part_is_sliced_out_as_written() -> None:
    data = encode_sidecar(b'{"00080018":{}}', b'{"frames":[]}', b'{"00281221":[1,2]}')
    assert data.startswith(MAGIC)
    assert sidecar_part(data, "metadata") == b'{"00080018":{}}'
    assert sidecar_part(data, "frames") == b'{"frames":[]}'
    assert sidecar_part(data, "bulk") == b'{"00281221":[1,2]}'


def test_absent_parts_read_as_none() -> None:
    data = encode_sidecar(b"{}", None, b"")
    assert sidecar_part(data, "metadata") == b"{}"
    assert sidecar_part(data, "frames") is None
    assert sidecar_part(data, "bulk") is None


@pytest.mark.parametrize(
    "data",
    [
        b"",
        b"PFS1",
        b'{"00080018":{}}',
        encode_sidecar(b"{}", b"[]", None)[:-1],
        b"XXXX" + bytes(24),
    ],
)
def test_what_is_not_a_whole_sidecar_is_refused(data: bytes) -> None:
    with pytest.raises(ValueError, match="sidecar"):
        sidecar_part(data, "metadata")


async def test_parts_are_read_from_the_sidecar_or_the_objects_of_old(tmp_path: Path) -> None:
    objects = FileSystemObjectStore(tmp_path)
    await objects.start()
    new, old = (instance_keys("default", "1.2", "1.3", sop) for sop in ("1.4", "1.5"))
    table = b"[" + b"1," * 60_000 + b"1]"  # beyond the first bytes read for a frame table
    await objects.put(new["sidecar"], encode_sidecar(b'{"new":1}', table, None))
    await objects.write_batch(puts=[(old["metadata"], b'{"old":1}'), (old["bulk"], b"{}")])
    assert await read_parts(objects, [new, old], "metadata") == [b'{"new":1}', b'{"old":1}']
    assert await read_part(objects, new, "frames") == table
    assert await read_part(objects, new, "bulk") is None
    assert await read_part(objects, old, "bulk") == b"{}"
    assert await read_part(objects, old, "frames") is None
    await objects.close()


async def test_metadata_is_read_with_its_bulk_data_uris_made_absolute(tmp_path: Path) -> None:
    objects = FileSystemObjectStore(tmp_path)
    await objects.start()
    new, old, gone = (instance_keys("default", "1.2", "1.3", sop) for sop in ("4", "5", "6"))
    document = b'{"7FE00010":{"vr":"OW","BulkDataURI":"studies/1.2/x"}}'
    await objects.put(new["sidecar"], encode_sidecar(document, b"[]", b'{"00281221":[1,2]}'))
    await objects.put(old["metadata"], document)
    found = await read_metadata(objects, [new, old, gone], "http://h/dicom-web")
    expected = b'{"7FE00010":{"vr":"OW","BulkDataURI":"http://h/dicom-web/studies/1.2/x"}}'
    assert [None if f is None else bytes(f) for f in found] == [expected, expected, None]
    await objects.close()
