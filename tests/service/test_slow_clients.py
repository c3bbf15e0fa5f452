"""Slow, stalled and slowloris clients on a real socket (issue 23, items 7 and 9): each one is
answered 408 or cut off once its timeout passes, and the others are served meanwhile.

The timeouts are set to a fraction of a second so the tests stay fast; what is asserted is the
outcome (a 408, a connection cut short), never how long it took.
"""

from __future__ import annotations

import asyncio
import io
import socket
from collections.abc import AsyncIterator
from pathlib import Path

import numpy as np
import pydicom
import pytest
import pytest_asyncio

from pacsflow.config import Settings
from pacsflow.container import build_container
from streams.runner import run_ingest_processor
from tests.support.archive import ROLES
from tests.support.corpus import CORPUS
from tests.support.dicomweb import multipart, stow_content_type
from tests.support.serving import Running, serve

pytestmark = pytest.mark.asyncio(loop_scope="module")

TIMEOUT = 0.5  # seconds, every HTTP timeout of the server under test
SAFETY = 30.0  # seconds a test waits for an answer before it fails (not an assertion on time)
CT = CORPUS / "modality" / "CT_small.dcm"


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def server(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Running]:
    """An archive with its ingest processor, on a loopback socket, with short HTTP timeouts."""
    settings = Settings(
        data_dir=tmp_path_factory.mktemp("slow") / "data",
        http_header_timeout_seconds=TIMEOUT,
        http_body_timeout_seconds=TIMEOUT,
        http_body_min_bytes_per_second=1024,
        http_send_timeout_seconds=TIMEOUT,
    )
    container = build_container(settings)
    await container.start(listen_for_outcomes=True)
    stop = asyncio.Event()
    processor = asyncio.create_task(
        run_ingest_processor(container.bus, container.ingest_context, stop)
    )
    try:
        async for running in serve(container, ROLES):
            yield running
    finally:
        stop.set()
        await processor
        await container.close()


def _address(running: Running) -> tuple[str, int]:
    host_port = running.url.removeprefix("http://").split("/")[0]
    host, port = host_port.split(":")
    return host, int(port)


async def _read_all(reader: asyncio.StreamReader) -> bytes:
    """Everything the server sends until it closes the connection (or resets it)."""
    chunks = []
    try:
        while chunk := await asyncio.wait_for(reader.read(65536), SAFETY):
            chunks.append(chunk)
    except ConnectionResetError:
        pass
    return b"".join(chunks)


async def _others_are_served(running: Running) -> None:
    response = await running.client.get(f"{running.url}/studies")
    assert response.status_code in (200, 204)


async def test_a_request_head_sent_a_byte_at_a_time_is_408(server: Running) -> None:
    reader, writer = await asyncio.open_connection(*_address(server))
    head = b"GET /dicom-web/studies HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: "

    async def slowloris() -> None:
        writer.write(head)
        for byte in b"abcdefghijklmnopqrstuvwxyz" * 10:  # never the blank line
            writer.write(bytes([byte]))
            await writer.drain()
            await asyncio.sleep(TIMEOUT / 10)

    trickle = asyncio.create_task(slowloris())
    await _others_are_served(server)  # while the slowloris holds its connection
    answer = await _read_all(reader)
    trickle.cancel()
    writer.close()
    assert answer.startswith(b"HTTP/1.1 408 "), answer[:200]
    assert b"connection: close" in answer.lower()


async def test_a_connection_that_sends_nothing_is_408(server: Running) -> None:
    reader, writer = await asyncio.open_connection(*_address(server))
    answer = await _read_all(reader)
    writer.close()
    assert answer.startswith(b"HTTP/1.1 408 "), answer[:200]


async def test_a_body_that_stalls_is_408_and_nothing_is_stored(server: Running) -> None:
    body, boundary = multipart([CT.read_bytes()])
    reader, writer = await asyncio.open_connection(*_address(server))
    writer.write(
        b"POST /dicom-web/studies HTTP/1.1\r\nHost: 127.0.0.1\r\n"
        + f"Content-Type: {stow_content_type(boundary)}\r\n".encode()
        + f"Content-Length: {len(body)}\r\n\r\n".encode()
        + body[:100]  # then nothing: allowed TIMEOUT + 100 / 1024 seconds
    )
    await writer.drain()
    await _others_are_served(server)
    answer = await _read_all(reader)
    writer.close()
    assert answer.startswith(b"HTTP/1.1 408 "), answer[:200]
    sop = pydicom.dcmread(CT, stop_before_pixels=True).SOPInstanceUID
    found = await server.client.get(f"{server.url}/instances", params={"SOPInstanceUID": sop})
    assert found.status_code == 200 and found.json() == []


def _large_instance() -> bytes:
    """CT_small with 2048x2048 16-bit pixels (8 MiB): more than the socket buffers hold."""
    ds = pydicom.dcmread(CT)
    ds.SOPInstanceUID = ds.file_meta.MediaStorageSOPInstanceUID = pydicom.uid.generate_uid()
    ds.Rows = ds.Columns = 2048
    ds.PixelData = np.arange(2048 * 2048, dtype="<u2").tobytes()
    out = io.BytesIO()
    ds.save_as(out, enforce_file_format=True)
    return out.getvalue()


async def test_a_response_the_client_stops_reading_is_cut_off(
    server: Running, tmp_path: Path
) -> None:
    large = _large_instance()
    body, boundary = multipart([large])
    stored = await server.client.post(
        f"{server.url}/studies",
        content=body,
        headers={"Content-Type": stow_content_type(boundary)},
    )
    assert stored.status_code == 200, stored.text
    ds = pydicom.dcmread(io.BytesIO(large), stop_before_pixels=True)
    path = (
        f"/dicom-web/studies/{ds.StudyInstanceUID}/series/{ds.SeriesInstanceUID}"
        f"/instances/{ds.SOPInstanceUID}"
    )
    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)  # fills at once
    sock.connect(_address(server))
    sock.setblocking(False)
    reader, writer = await asyncio.open_connection(sock=sock)
    writer.write(
        f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\n"
        'Accept: multipart/related; type="application/dicom"; transfer-syntax=*\r\n\r\n'.encode()
    )
    await writer.drain()
    await _others_are_served(server)  # the stalled reader holds no one up
    await asyncio.sleep(TIMEOUT * 6)  # not reading: the server gives up on this client
    received = await _read_all(reader)
    writer.close()
    assert received.startswith(b"HTTP/1.1 200 ")
    assert len(received) < len(large)  # cut off: the rest was never sent
