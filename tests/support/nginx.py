"""nginx in front of stub services, for the tests of the gateway's routing (deploy/nginx.conf
and the Helm chart's gateway): which service each DICOMweb request reaches, what it receives."""

from __future__ import annotations

import base64
import contextlib
import hashlib
import http.server
import json
import subprocess
import threading
import time
from collections import defaultdict
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

__all__ = ["NGINX", "ROUTES", "Stub", "nginx_serving"]

NGINX = Path("/usr/sbin/nginx")
MiB = 1024 * 1024

# (method, path and query, the service expected to answer; None: the gateway refuses it)
ROUTES = [
    ("POST", "/dicom-web/studies", "stow"),
    ("POST", "/dicom-web/studies/1.2.3", "stow"),
    ("GET", "/dicom-web/studies", "qido"),
    ("GET", "/dicom-web/studies?PatientID=X1&limit=10&includefield=00081030", "qido"),
    ("GET", "/dicom-web/studies?PatientName=DOE%5EJ*&fuzzymatching=false", "qido"),
    ("GET", "/dicom-web/studies/", "qido"),
    ("HEAD", "/dicom-web/studies", "qido"),
    ("GET", "/dicom-web/series?Modality=CT", "qido"),
    ("GET", "/dicom-web/instances", "qido"),
    ("GET", "/dicom-web/studies/1.2.3/series", "qido"),
    ("GET", "/dicom-web/studies/1.2.3/instances?SOPClassUID=1.2.840.10008.5.1.4.1.1.2", "qido"),
    ("GET", "/dicom-web/studies/1.2.3/series/4.5.6/instances", "qido"),
    ("GET", "/dicom-web/changefeed?startSequence=1&limit=100", "qido"),  # docs/operations.md
    ("HEAD", "/dicom-web/changefeed", "qido"),
    ("GET", "/dicom-web/changefeed/latest?includemetadata=false", "qido"),
    ("GET", "/dicom-web/changefeed/other", "wado"),  # not a route: the default's 404
    ("GET", "/dicom-web/studies/1.2.3", "wado"),
    ("HEAD", "/dicom-web/studies/1.2.3", "wado"),
    ("GET", "/dicom-web/studies/1.2.3/metadata", "wado"),
    ("GET", "/dicom-web/studies/1.2.3/series/4.5.6", "wado"),
    ("GET", "/dicom-web/studies/1.2.3/series/4.5.6/metadata", "wado"),
    ("GET", "/dicom-web/studies/1.2.3/series/4.5.6/instances/7.8.9", "wado"),
    ("GET", "/dicom-web/studies/1.2.3/series/4.5.6/instances/7.8.9/frames/1,2", "wado"),
    ("GET", "/dicom-web/studies/1.2.3/series/4.5.6/instances/7.8.9/rendered?quality=90", "wado"),
    ("GET", "/dicom-web/studies/1.2.3/series/4.5.6/instances/7.8.9/bulkdata/7FE00010", "wado"),
    ("GET", "/dicom-web/studies/1.2.3/thumbnail?viewport=64,64", "wado"),
    ("POST", "/dicom-web/wado-ws", "wado"),  # WADO-WS (SOAP, IHE RAD-69)
    ("GET", "/dicom-web/wado-ws?wsdl", "wado"),
    ("GET", "/dicom-web/wado-ws?xsd=rs.xsd", "wado"),
    ("POST", "/dicom-web/wado-ws/extra", "stow"),
    ("POST", "/dicom-web/workitems", "ups"),
    ("POST", "/dicom-web/workitems?workitem=1.2.3", "ups"),
    ("GET", "/dicom-web/workitems?ProcedureStepState=SCHEDULED&limit=5", "ups"),
    ("GET", "/dicom-web/workitems/1.2.3", "ups"),
    ("POST", "/dicom-web/workitems/1.2.3?transaction=1.2.9", "ups"),
    ("PUT", "/dicom-web/workitems/1.2.3/state", "ups"),
    ("POST", "/dicom-web/workitems/1.2.3/cancelrequest", "ups"),
    (
        "POST",
        "/dicom-web/workitems/1.2.840.10008.5.1.4.34.5/subscribers/AE1?deletionlock=true",
        "ups",
    ),
    ("DELETE", "/dicom-web/workitems/1.2.3/subscribers/AE1", "ups"),
    ("POST", "/dicom-web/workitems/1.2.840.10008.5.1.4.34.5/subscribers/AE1/suspend", "ups"),
    ("GET", "/dicom-web/subscribers/AE1", "ups"),
    ("GET", "/dicom-web/studies/1.2.3/workitems", "wado"),
    ("POST", "/dicom-web/color-palettes", "stow"),  # Non-Patient Instances (PS3.18 12)
    ("POST", "/dicom-web/hanging-protocols/1.2.3", "stow"),
    ("GET", "/dicom-web/hanging-protocols?HangingProtocolName=CT*", "qido"),
    ("GET", "/sites/b/dicom-web/inventories", "qido"),
    ("HEAD", "/dicom-web/implant-templates/", "qido"),
    ("GET", "/dicom-web/defined-procedure-protocols/1.2.3", "wado"),
    ("GET", "/dicom-web/color-palettes/1.2.3", "wado"),
    ("POST", "/dicom-web/commitment-requests/1.2.3", "commitment"),
    ("GET", "/dicom-web/commitment-requests/1.2.3", "commitment"),
    ("HEAD", "/dicom-web/commitment-requests/1.2.3", "commitment"),
    ("OPTIONS", "/dicom-web", "wado"),  # Retrieve Capabilities (PS3.18 8.9)
    ("OPTIONS", "/dicom-web/", "wado"),
    ("OPTIONS", "/dicom-web/studies", "wado"),
    ("OPTIONS", "/dicom-web/workitems", "wado"),
    ("OPTIONS", "/dicom-web/commitment-requests/1.2.3", "wado"),
    ("GET", "/dicom-web/openapi.json", "wado"),
    ("PUT", "/dicom-web/studies/1.2.3", None),
    ("DELETE", "/dicom-web/studies/1.2.3", "stow"),  # deletion (docs/conformance.md)
    ("DELETE", "/dicom-web/studies/1.2.3/series/4.5.6", "stow"),
    ("DELETE", "/dicom-web/studies/1.2.3/series/4.5.6/instances/7.8.9", "stow"),
    ("DELETE", "/dicom-web/studies/1.2.3/metadata", None),
    ("DELETE", "/dicom-web/studies", None),
    ("PATCH", "/dicom-web/studies", None),
    # each site's root routes as the default site's (docs/security.md)
    ("POST", "/sites/north/dicom-web/studies", "stow"),
    ("DELETE", "/sites/north/dicom-web/studies/1.2.3/series/4.5.6", "stow"),
    ("GET", "/sites/north/dicom-web/studies?PatientID=X1", "qido"),
    ("GET", "/sites/north/dicom-web/studies/1.2.3/series/4.5.6/instances", "qido"),
    ("GET", "/sites/north/dicom-web/studies/1.2.3/metadata", "wado"),
    ("GET", "/sites/north/dicom-web/changefeed?offset=10", "qido"),
    ("GET", "/sites/north/dicom-web/wado?requestType=WADO", "wado"),
    ("POST", "/sites/north/dicom-web/wado-ws", "wado"),
    ("PUT", "/sites/north/dicom-web/workitems/1.2.3/state", "ups"),
    ("GET", "/sites/north/dicom-web/subscribers/AE1", "ups"),
    ("POST", "/sites/north/dicom-web/commitment-requests/1.2.3", "commitment"),
    ("OPTIONS", "/sites/north/dicom-web", "wado"),
    ("OPTIONS", "/sites/north/dicom-web/studies", "wado"),
    ("DELETE", "/sites/north/dicom-web/studies/1.2.3", "stow"),
    ("DELETE", "/sites/north/dicom-web/studies/1.2.3/rendered", None),
]


class Stub(http.server.ThreadingHTTPServer):
    """A service stand-in that names itself and reports what it received."""

    daemon_threads = True

    def __init__(self, name: str) -> None:
        super().__init__(("127.0.0.1", 0), StubHandler)
        self.name = name
        self.body_started: defaultdict[str, threading.Event] = defaultdict(threading.Event)
        self.release: defaultdict[str, threading.Event] = defaultdict(threading.Event)


class StubHandler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: Stub

    def _chunks(self) -> Iterator[bytes]:
        if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
            while size := int(self.rfile.readline().split(b";")[0], 16):
                while size:
                    data = self.rfile.read1(size)
                    size -= len(data)
                    yield data
                self.rfile.readline()
            self.rfile.readline()
            return
        remaining = int(self.headers.get("Content-Length") or 0)
        while remaining:
            data = self.rfile.read1(min(remaining, MiB))
            remaining -= len(data)
            yield data

    def _answer(self) -> None:
        digest, size = hashlib.sha256(), 0
        for data in self._chunks():
            self.server.body_started[self.path].set()
            digest.update(data)
            size += len(data)
        token = self.path.partition("stream=")[2]
        if token:  # a retrieval that sends 1 KiB, then the rest once the test has seen it
            self.send_response(200)
            self.send_header("Content-Length", str(2048))
            self.end_headers()
            self.wfile.write(b"a" * 1024)
            self.wfile.flush()
            self.server.release[token].wait(60)
            self.wfile.write(b"b" * 1024)
            return
        body = json.dumps(
            {
                "path": self.path,
                "headers": {key.lower(): value for key, value in self.headers.items()},
                "size": size,
                "sha256": digest.hexdigest(),
            }
        ).encode()
        self.send_response(200)
        self.send_header("X-Stub-Service", self.server.name)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def _upgrade(self) -> None:
        """A WebSocket handshake (RFC 6455 4.2.2), one text frame with the stub's name, close."""
        key = self.headers["Sec-WebSocket-Key"] + "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"
        accept = base64.b64encode(hashlib.sha1(key.encode()).digest()).decode()
        self.send_response(101)
        self.send_header("Upgrade", "websocket")
        self.send_header("Connection", "Upgrade")
        self.send_header("Sec-WebSocket-Accept", accept)
        self.end_headers()
        name = self.server.name.encode()
        self.wfile.write(bytes([0x81, len(name)]) + name + bytes([0x88, 2, 0x03, 0xE8]))
        self.wfile.flush()
        self.close_connection = True

    def do_GET(self) -> None:
        if self.headers.get("Upgrade", "").lower() == "websocket":
            self._upgrade()
        else:
            self._answer()

    do_HEAD = do_POST = do_PUT = do_DELETE = do_OPTIONS = do_PATCH = _answer

    def log_message(self, format: str, *args: Any) -> None:
        """Quiet."""


@contextlib.contextmanager
def nginx_serving(
    command: list[str],
    stubs: dict[str, Stub],
    ready: Callable[[], object],
    error_log: Path | None = None,
) -> Iterator[None]:
    """nginx run by ``command`` (its configuration checked with ``-t`` first) in front of the
    stub services, once ``ready()`` stops raising OSError (bounded); then both stopped.
    ``error_log`` is where ``command`` has nginx write errors, quoted if it does not start."""
    for stub in stubs.values():
        threading.Thread(target=stub.serve_forever, daemon=True).start()
    try:
        checked = subprocess.run([*command, "-t"], capture_output=True, text=True, check=False)
        assert checked.returncode == 0, checked.stderr
        process = subprocess.Popen(command, stderr=subprocess.DEVNULL)
        try:
            deadline = time.monotonic() + 15
            while True:
                try:
                    ready()
                    break
                except OSError:
                    if process.poll() is not None or time.monotonic() > deadline:
                        logged = error_log.read_text() if error_log and error_log.is_file() else ""
                        raise RuntimeError(f"nginx did not start: {logged}") from None
                    time.sleep(0.05)
            yield
        finally:
            process.terminate()
            process.wait(timeout=15)
    finally:
        for stub in stubs.values():
            stub.shutdown()
            stub.server_close()
