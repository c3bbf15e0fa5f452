"""Streaming multipart/related parsing for STOW-RS bodies (``pacsflow.media.multipart_in``)."""

from __future__ import annotations

import hashlib
from collections.abc import AsyncIterator

import pytest

from pacsflow.errors import BadRequest, UnsupportedMediaType
from pacsflow.media.multipart_in import PartEvent, parse_parts, require_multipart_related

ACCEPTED = frozenset({"application/dicom"})
BOUNDARY = "pacsflow-Boundary_42"


def _payload(n: int, size: int) -> bytes:
    """Deterministic bytes that also hold CRLFs and near-boundaries, to trip a naive parser."""
    noise = b"".join(hashlib.sha256(f"{n}.{i}".encode()).digest() for i in range(size // 32 + 1))
    return (b"\r\n--" + BOUNDARY[:-1].encode() + b"\r\n--\r\n" + noise)[:size]


PARTS = [
    _payload(1, 100_000),
    b"",
    _payload(3, 1),
    _payload(4, 65_537),
    b"\r\n",
]


def body_of(parts: list[bytes], boundary: str = BOUNDARY) -> bytes:
    chunks = []
    for number, data in enumerate(parts):
        chunks.append(f"--{boundary}\r\nContent-Type: application/dicom\r\n".encode())
        chunks.append(f"Content-ID: <part-{number}>\r\n\r\n".encode())
        chunks += [data, b"\r\n"]
    chunks.append(f"--{boundary}--\r\n".encode())
    return b"".join(chunks)


async def chunked(data: bytes, size: int) -> AsyncIterator[bytes]:
    for start in range(0, len(data), size):
        yield data[start : start + size]


async def events(data: bytes, size: int, boundary: str = BOUNDARY) -> list[PartEvent]:
    return [event async for event in parse_parts(chunked(data, size), boundary)]


def assemble(stream: list[PartEvent]) -> list[tuple[str, dict[str, str], bytes]]:
    """Each part as (how it ended, headers, bytes)."""
    parts: list[tuple[str, dict[str, str], bytes]] = []
    headers: dict[str, str] | None = None
    data = bytearray()
    for event in stream:
        if event.kind == "begin":
            assert headers is None, "a part began inside another"
            headers, data = event.headers, bytearray()
        elif event.kind == "data":
            assert headers is not None, "data outside a part"
            data += event.data
        else:
            assert headers is not None, f"{event.kind} outside a part"
            parts.append((event.kind, headers, bytes(data)))
            headers = None
    assert headers is None, "a part never ended"
    return parts


@pytest.mark.parametrize(
    ("content_type", "boundary"),
    [
        ('multipart/related; type="application/dicom"; boundary="abc def"', "abc def"),
        ("multipart/related; type=application/dicom; boundary=abc", "abc"),
        ('multipart/related; boundary="a;b=c"; type="application/dicom"', "a;b=c"),
        ('Multipart/Related; TYPE="Application/DICOM"; Boundary=MiXeD', "MiXeD"),
        ("multipart/related; boundary=xyz", "xyz"),  # type defaults to application/dicom
    ],
    ids=["quoted", "unquoted", "quoted separators", "case", "no type"],
)
def test_require_multipart_related_returns_the_boundary(content_type: str, boundary: str) -> None:
    assert require_multipart_related(content_type, ACCEPTED) == boundary


@pytest.mark.parametrize(
    "content_type",
    [
        "application/dicom",
        "multipart/form-data; boundary=abc",
        "multipart/mixed; boundary=abc",
        'multipart/related; type="application/dicom+json"; boundary=abc',
        "multipart/related; type=application/octet-stream; boundary=abc",
        "text/plain",
        "",
    ],
)
def test_other_media_types_are_unsupported(content_type: str) -> None:
    with pytest.raises(UnsupportedMediaType):
        require_multipart_related(content_type, ACCEPTED)


def test_accepted_types_come_from_the_caller() -> None:
    content_type = 'multipart/related; type="application/dicom+json"; boundary=abc'

    assert require_multipart_related(content_type, ACCEPTED | {"application/dicom+json"}) == "abc"


@pytest.mark.parametrize(
    "content_type",
    [
        'multipart/related; type="application/dicom"',
        'multipart/related; type="application/dicom"; boundary=""',
        "multipart/related",
    ],
    ids=["absent", "empty", "no parameters"],
)
def test_missing_boundary_is_a_bad_request(content_type: str) -> None:
    with pytest.raises(BadRequest):
        require_multipart_related(content_type, ACCEPTED)


async def test_chunk_size_does_not_change_the_parts() -> None:
    body = body_of(PARTS)

    results = {size: assemble(await events(body, size)) for size in (1, 7, 65536)}

    for size, parts in results.items():
        assert [data for _, _, data in parts] == PARTS, f"chunks of {size} bytes"
        assert [kind for kind, _, _ in parts] == ["end"] * len(PARTS)
        assert [headers for _, headers, _ in parts] == [
            {"content-type": "application/dicom", "content-id": f"<part-{n}>"}
            for n in range(len(PARTS))
        ]


async def test_many_parts() -> None:
    parts = [_payload(n, n * 37 % 1500) for n in range(300)]

    for size in (7, 65536):
        assert [data for _, _, data in assemble(await events(body_of(parts), size))] == parts


async def test_body_cut_inside_a_part_ends_it_truncated() -> None:
    body = body_of(PARTS)
    cut = body.index(PARTS[3][:64]) + 1000  # 1000 bytes into the fourth part

    for size in (1, 7, 65536):
        parts = assemble(await events(body[:cut], size))

        assert [kind for kind, _, _ in parts] == ["end", "end", "end", "truncated"]
        assert [data for _, _, data in parts[:3]] == PARTS[:3]
        assert PARTS[3].startswith(parts[3][2])


async def test_body_without_the_boundary_is_a_bad_request() -> None:
    with pytest.raises(BadRequest):
        await events(b"this is not a multipart body", 7)
    with pytest.raises(BadRequest):
        await events(b"", 7)
    with pytest.raises(BadRequest):
        await events(body_of(PARTS, "another-boundary"), 65536)


async def test_body_cut_inside_part_headers_is_reported() -> None:
    body = body_of(PARTS[:2])
    cut = body.index(b"Content-ID: <part-1>") + 5

    try:
        stream = await events(body[:cut], 7)
    except BadRequest:
        return  # refusing the whole body reports it too
    assert [e.kind for e in stream if e.kind != "data"][-1] == "truncated"
