"""Tracing in process with the OpenTelemetry SDK's in-memory exporter: a STOW-RS request that
carries a W3C ``traceparent`` gives one trace from the server span through publish, the
processor's ``process``, ``store``, ``index`` and ``event`` spans, the context crossing the bus
in the record's headers."""

from __future__ import annotations

import io
from collections.abc import AsyncIterator, Iterator

import pydicom
import pytest
import pytest_asyncio
from opentelemetry import trace
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind, StatusCode

from tests.support.archive import Archive, running_archive
from tests.support.corpus import CORPUS, uids_of

pytestmark = pytest.mark.asyncio(loop_scope="module")

CT = CORPUS / "modality" / "CT_small.dcm"
TRUNCATED = CORPUS / "malformed" / "truncated_pixel_data_MR.dcm"
TRACE_ID, PARENT_ID = "4bf92f3577b34da6a3ce929d0e0e4736", "00f067aa0ba902b7"
NAME = "Tracewell^Hidden"

_EXPORTER = InMemorySpanExporter()


@pytest.fixture(scope="module")
def spans() -> Iterator[InMemorySpanExporter]:
    """The process's tracer provider (set once) exporting to memory."""
    if not isinstance(trace.get_tracer_provider(), TracerProvider):
        provider = TracerProvider()
        provider.add_span_processor(SimpleSpanProcessor(_EXPORTER))
        trace.set_tracer_provider(provider)
    _EXPORTER.clear()
    yield _EXPORTER


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def archive(
    tmp_path_factory: pytest.TempPathFactory, spans: InMemorySpanExporter
) -> AsyncIterator[Archive]:
    """An archive of its own."""
    async with running_archive(tmp_path_factory.mktemp("tracing") / "data") as running:
        yield running


def _named(path: object) -> bytes:
    ds = pydicom.dcmread(path)  # type: ignore[call-overload]
    ds.PatientName = NAME
    out = io.BytesIO()
    ds.save_as(out, enforce_file_format=True)
    return out.getvalue()


def _one(found: list[ReadableSpan], name: str) -> ReadableSpan:
    [span] = [s for s in found if s.name == name]
    return span


async def test_one_trace_from_stow_through_the_processor(
    archive: Archive, spans: InMemorySpanExporter
) -> None:
    spans.clear()
    traceparent = f"00-{TRACE_ID}-{PARENT_ID}-01"
    response = await archive.stow([_named(CT), _named(TRUNCATED)], traceparent=traceparent)
    assert response.status_code == 202, response.text
    found = [s for s in spans.get_finished_spans() if f"{s.context.trace_id:032x}" == TRACE_ID]
    server = _one(found, "POST stow")
    assert server.kind is SpanKind.SERVER and f"{server.parent.span_id:016x}" == PARENT_ID
    assert server.attributes["http.response.status_code"] == 202
    assert server.attributes["http.route"] == "/studies"
    publish = _one(found, "publish ingest")
    assert publish.kind is SpanKind.PRODUCER and publish.parent.span_id == server.context.span_id
    processed = [s for s in found if s.name == "process"]
    assert len(processed) == 2
    assert all(s.parent.span_id == publish.context.span_id for s in processed)
    assert all(s.kind is SpanKind.CONSUMER for s in processed)
    by_sop = {s.attributes["dicom.sop_instance_uid"]: s for s in processed}
    good, bad = by_sop[uids_of(CT)[2]], by_sop[uids_of(TRUNCATED)[2]]
    assert good.status.status_code is StatusCode.UNSET
    assert bad.status.status_code is StatusCode.ERROR
    assert str(bad.status.description).startswith("Failure Reason ")
    for step in ("store", "index", "event"):
        children = [s.parent.span_id for s in found if s.name == step]
        expected = [good.context.span_id] if step != "event" else []
        assert set(expected) <= set(children), step
    events = [s.parent.span_id for s in found if s.name == "event"]
    assert sorted(events) == sorted([good.context.span_id, bad.context.span_id])
    assert all(NAME not in str(dict(s.attributes or {})) for s in found)


async def test_a_request_without_traceparent_starts_its_own_trace(
    archive: Archive, spans: InMemorySpanExporter
) -> None:
    spans.clear()
    response = await archive.client.get("/studies")
    assert response.status_code == 200
    [server] = [s for s in spans.get_finished_spans() if s.name == "GET qido"]
    assert server.parent is None and server.attributes["http.route"] == "/studies"


async def test_a_delete_is_one_trace_to_the_processor(
    archive: Archive, spans: InMemorySpanExporter
) -> None:
    """DELETE publishes its record with the trace in its headers, as STOW-RS does."""
    study, series, sop = uids_of(CT)
    assert (await archive.stow([CT.read_bytes()])).status_code in (200, 202)
    spans.clear()
    trace_id = "0af7651916cd43dd8448eb211c80319c"
    gone = await archive.client.delete(
        f"/studies/{study}/series/{series}/instances/{sop}",
        headers={"traceparent": f"00-{trace_id}-{PARENT_ID}-01"},
    )
    assert gone.status_code == 204, gone.text  # applied before the answer
    found = [s for s in spans.get_finished_spans() if f"{s.context.trace_id:032x}" == trace_id]
    server = _one(found, "DELETE delete")
    publish = _one(found, "publish ingest")
    assert publish.parent.span_id == server.context.span_id
    processed = _one(found, "process")
    assert processed.parent.span_id == publish.context.span_id
