"""The sidecar object's framing (``pacsflow.pipeline.sidecar``): parts sliced out as written."""

from __future__ import annotations

import pytest

from pacsflow.pipeline.sidecar import MAGIC, encode_sidecar, sidecar_part


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
