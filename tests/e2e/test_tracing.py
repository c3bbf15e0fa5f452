"""Tracing across processes: ``pacsflow serve`` (an HTTP worker and an ingest worker, two
processes) exports with the OTLP/HTTP exporter to a collector endpoint the test serves, and a
STOW-RS request's spans from both processes form one trace, joined by the ``traceparent`` the
record carried on the bus."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import NamedTuple

import httpx
import pytest
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceRequest,
    ExportTraceServiceResponse,
)

from tests.support.corpus import CORPUS
from tests.support.dicomweb import multipart, stow_content_type
from tests.support.servers import start_deployment

TRACE_ID = "0af7651916cd43dd8448eb211c80319c"


class Exported(NamedTuple):
    service: str
    name: str
    trace_id: str
    span_id: str
    parent_id: str


class _Collector(BaseHTTPRequestHandler):
    received: list[Exported]

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers["Content-Length"]))
        request = ExportTraceServiceRequest.FromString(body)
        for resource in request.resource_spans:
            service = next(
                a.value.string_value
                for a in resource.resource.attributes
                if a.key == "service.name"
            )
            for scope in resource.scope_spans:
                for span in scope.spans:
                    ids = (span.trace_id.hex(), span.span_id.hex(), span.parent_span_id.hex())
                    self.received.append(Exported(service, span.name, *ids))
        answer = ExportTraceServiceResponse().SerializeToString()
        self.send_response(200)
        self.send_header("Content-Type", "application/x-protobuf")
        self.send_header("Content-Length", str(len(answer)))
        self.end_headers()
        self.wfile.write(answer)

    def log_message(self, format: str, *args: object) -> None:
        """Quiet."""


@pytest.fixture
def collector() -> Iterator[tuple[str, list[Exported]]]:
    """An OTLP/HTTP trace endpoint on 127.0.0.1 keeping what it receives; stopped after."""
    received: list[Exported] = []
    handler = type("Collector", (_Collector,), {"received": received})
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}", received
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


def test_one_trace_spans_the_http_and_the_ingest_processes(
    tmp_path: Path, collector: tuple[str, list[Exported]]
) -> None:
    endpoint, received = collector
    env = {"PACSFLOW_OTLP_ENDPOINT": endpoint, "OTEL_BSP_SCHEDULE_DELAY": "100"}
    server = start_deployment(tmp_path, "embedded", env=env)
    try:
        body, boundary = multipart([(CORPUS / "modality" / "CT_small.dcm").read_bytes()])
        headers = {
            "Content-Type": stow_content_type(boundary),
            "traceparent": f"00-{TRACE_ID}-b7ad6b7169203331-01",
        }
        stored = httpx.post(f"{server.url}/studies", content=body, headers=headers, timeout=120)
        assert stored.status_code == 200, stored.text
        wanted = {"POST stow", "publish ingest", "process", "store", "index", "event"}
        deadline = time.monotonic() + 60  # bounded wait for both processes' batches
        while time.monotonic() < deadline:
            if wanted <= {s.name for s in received if s.trace_id == TRACE_ID}:
                break
            time.sleep(0.1)
    finally:
        server.stop()
    spans = {s.name: s for s in received if s.trace_id == TRACE_ID}
    assert wanted <= set(spans), received
    assert spans["POST stow"].parent_id == "b7ad6b7169203331"
    assert spans["publish ingest"].parent_id == spans["POST stow"].span_id
    assert spans["process"].parent_id == spans["publish ingest"].span_id
    for step in ("store", "index", "event"):
        assert spans[step].parent_id == spans["process"].span_id
    assert spans["POST stow"].service == "pacsflow-serve"
    assert spans["process"].service == "pacsflow-worker"  # another process, the same trace
