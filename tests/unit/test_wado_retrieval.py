"""The types of a retrieval (``pacsflow.wado.retrieval``) and how a payload goes out."""

from __future__ import annotations

import gzip
from collections.abc import AsyncIterator

import pytest
from fastapi.responses import StreamingResponse
from starlette.requests import Request

from pacsflow.wado.retrieval import Payload, ResourceKey
from services.retrieval import respond


def _request(accept_encoding: str = "") -> Request:
    headers = [(b"accept-encoding", accept_encoding.encode())] if accept_encoding else []
    return Request({"type": "http", "method": "GET", "path": "/", "headers": headers})


def test_a_key_names_a_study_series_or_instance() -> None:
    assert str(ResourceKey("1.2")) == "study 1.2"
    assert str(ResourceKey("1.2", "1.2.3")) == "series 1.2.3 of study 1.2"
    assert str(ResourceKey("1.2", "1.2.3", "1.2.3.4")) == (
        "instance 1.2.3.4 in series 1.2.3 of study 1.2"
    )
    with pytest.raises(ValueError, match="within its series"):
        ResourceKey("1.2", None, "1.2.3.4")
    assert ResourceKey("1.2", "1.2.3") == ResourceKey("1.2", "1.2.3")  # a value: hashable too
    assert len({ResourceKey("1.2"), ResourceKey("1.2")}) == 1


def test_a_current_copy_is_304_with_its_etag_and_no_body() -> None:
    payload = Payload("application/dicom+json", status=304, headers={"Vary": "Accept"}, etag='"x"')
    response = respond(payload, _request())
    assert response.status_code == 304
    assert response.body == b""
    assert (response.headers["etag"], response.headers["vary"]) == ('"x"', "Accept")


@pytest.mark.parametrize(
    ("compressible", "size", "encoding", "zipped"),
    [
        (True, 4096, "gzip, br", True),
        (True, 4096, "", False),
        (True, 100, "gzip", False),
        (False, 4096, "gzip", False),
    ],
)
def test_only_compressible_bodies_are_gzipped_when_asked(
    compressible: bool, size: int, encoding: str, zipped: bool
) -> None:
    body = b"[" + b"0," * (size // 2) + b"0]"
    payload = Payload("application/dicom+json", body, compressible=compressible)
    response = respond(payload, _request(encoding))
    assert ("content-encoding" in response.headers) is zipped
    assert (gzip.decompress(response.body) if zipped else response.body) == body


async def test_a_streamed_body_keeps_its_status_and_headers() -> None:
    async def chunks() -> AsyncIterator[bytes]:
        yield b"ab"

    payload = Payload("application/octet-stream", chunks(), 206, {"Content-Range": "bytes 0-1/9"})
    response = respond(payload, _request("gzip"))
    assert isinstance(response, StreamingResponse)
    assert (response.status_code, response.headers["content-range"]) == (206, "bytes 0-1/9")
    assert [chunk async for chunk in response.body_iterator] == [b"ab"]
