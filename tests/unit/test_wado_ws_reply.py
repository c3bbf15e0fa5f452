"""The WADO-WS reply packaging (pacsflow/ws/reply.py): documents that arrive in chunks of any
size come out whole, as MTOM parts (XOP 1.0 4.1) or as base64 text in the envelope."""

from __future__ import annotations

import base64
import os
from collections.abc import AsyncIterator, Callable

import pytest
from lxml import etree

from pacsflow.ws.envelope import SoapRequest
from pacsflow.ws.names import IHE, RETRIEVE
from pacsflow.ws.reply import Attachment, Reply, Spool, wants_inline
from tests.support.wado_ws import NS

DOCUMENTS = [os.urandom(n) for n in (0, 1, 2, 3, 1000, 65_537)] + [b"\r\n--x\r\n\r\n"]


def _chunked(data: bytes, size: int) -> Callable[[], AsyncIterator[bytes]]:
    async def chunks() -> AsyncIterator[bytes]:
        for at in range(0, len(data), size):
            yield data[at : at + size]

    return chunks


async def _body(inline: bool, size: int) -> tuple[str, bytes]:
    payload = etree.Element(RETRIEVE.request)
    reply = Reply(SoapRequest(RETRIEVE, payload, addressed=False))
    for data in DOCUMENTS:
        entry = etree.SubElement(reply.element, f"{{{IHE}}}DocumentResponse")
        reply.attach(
            entry, f"{{{IHE}}}Document", Attachment("application/dicom", _chunked(data, size))
        )
    reply.finish([])
    closed: list[bool] = []
    answer = reply.payload(inline, lambda: closed.append(True))
    assert not isinstance(answer.body, bytes)
    body = b"".join([chunk async for chunk in answer.body])
    assert closed == [True]
    return answer.content_type, body


@pytest.mark.parametrize("size", [1, 2, 3, 4, 7, 4096])
async def test_inline_documents_are_their_base64(size: int) -> None:
    content_type, body = await _body(inline=True, size=size)
    assert content_type.startswith("application/soap+xml")
    texts = [e.text or "" for e in etree.fromstring(body).iterfind(".//ihe:Document", NS)]
    assert [base64.b64decode(text) for text in texts] == DOCUMENTS


@pytest.mark.parametrize("size", [1, 5, 4096])
async def test_mtom_parts_are_the_documents_byte_for_byte(size: int) -> None:
    content_type, body = await _body(inline=False, size=size)
    boundary = content_type.split("boundary=")[1].split(";")[0]
    delimiter = f"\r\n--{boundary}".encode()
    assert body.endswith(delimiter + b"--\r\n")
    parts = body[: -len(delimiter + b"--\r\n")].split(delimiter)
    root = parts[0].split(b"\r\n\r\n", 1)[1]
    includes = etree.fromstring(root).iterfind(".//ihe:Document/xop:Include", NS)
    cids = [include.get("href", "").removeprefix("cid:") for include in includes]
    for cid, part, data in zip(cids, parts[1:], DOCUMENTS, strict=True):
        head, content = part.split(b"\r\n\r\n", 1)
        assert f"Content-ID: <{cid}>".encode() in head
        assert content == data


async def test_the_spool_gives_back_what_it_kept() -> None:
    spool = Spool()
    try:
        streams = [await spool.add(data) for data in DOCUMENTS]
        for chunks, data in zip(streams, DOCUMENTS, strict=True):
            assert b"".join([c async for c in chunks()]) == data
    finally:
        spool.close()


@pytest.mark.parametrize(
    ("accept", "inline"),
    [
        ("", False),
        ("*/*", False),
        ("application/soap+xml", True),
        ("application/soap+xml, multipart/related", False),
        ("multipart/related;q=0, application/soap+xml", True),
        ("text/html", False),
    ],
)
def test_inline_only_when_the_client_takes_plain_soap_alone(accept: str, inline: bool) -> None:
    assert wants_inline(accept) is inline
