"""OpenTelemetry tracing of an instance's way through the archive (docs/operations.md).

Off unless ``PACSFLOW_OTLP_ENDPOINT`` names an OTLP/HTTP collector (``configure``); then
each process exports its spans there as ``pacsflow-{role}``. The spans of one STOW-RS part:

    {method} stow (server)  ─ publish (producer) ─┐  the W3C ``traceparent`` in the record's
                                                  │  Kafka headers (or the journal's)
    process (consumer, in the worker) ◀───────────┘  ─ store ─ index ─ event

``store`` and ``index`` are one write for a whole batch (group commit): each record's trace
gets a span of that write. No span carries a patient's name or ID: UIDs and outcomes only.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from typing import Final

from opentelemetry import propagate, trace
from opentelemetry.context import Context
from opentelemetry.trace import Span, SpanKind, Status, StatusCode

from pacsflow.ports.bus import Headers

__all__ = [
    "Context",
    "configure",
    "consumed",
    "contexts_of",
    "each",
    "failed",
    "headers_of",
    "publishing",
    "served",
    "serving",
    "tracer",
]

_NAME: Final = "pacsflow"
_PATH: Final = "/v1/traces"


def configure(endpoint: str, role: str) -> None:
    """Export this process's spans to the OTLP/HTTP collector at ``endpoint`` (no-op if "")."""
    if not endpoint:
        return
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
    from opentelemetry.sdk.resources import Resource
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import BatchSpanProcessor

    url = endpoint if endpoint.rstrip("/").endswith(_PATH) else endpoint.rstrip("/") + _PATH
    provider = TracerProvider(resource=Resource.create({"service.name": f"pacsflow-{role}"}))
    provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter(endpoint=url)))
    trace.set_tracer_provider(provider)


def tracer() -> trace.Tracer:
    """pacsflow's tracer (a no-op one while tracing is off)."""
    return trace.get_tracer(_NAME)


def headers_of(parent: Context | None = None) -> Headers:
    """The W3C trace context of ``parent`` (else the current one) as record headers."""
    carrier: dict[str, str] = {}
    propagate.inject(carrier, context=parent)
    return tuple((name, value.encode()) for name, value in carrier.items())


def _context_of(headers: Headers) -> Context:
    carrier = {name: value.decode("latin-1") for name, value in headers}
    return propagate.extract(carrier)


@contextmanager
def serving(headers: Mapping[str, str]) -> Iterator[Span]:
    """A server span for an HTTP request, child of the ``traceparent`` it carries if any
    (named and given its route and status by the caller when the request is done)."""
    parent = propagate.extract(headers)
    with tracer().start_as_current_span("HTTP", context=parent, kind=SpanKind.SERVER) as span:
        yield span


def served(span: Span, method: str, transaction: str, route: str, status: int) -> None:
    """Name a server span ``{method} {transaction}`` and give it the route and status."""
    span.update_name(f"{method} {transaction}")
    span.set_attribute("http.request.method", method)
    span.set_attribute("http.response.status_code", status)
    if route:
        span.set_attribute("http.route", route)
    if status >= 500:
        span.set_status(Status(StatusCode.ERROR))


@contextmanager
def publishing(topic: str, count: int) -> Iterator[Headers]:
    """A producer span around a publish; the headers that carry it to the consumers."""
    with tracer().start_as_current_span(f"publish {topic}", kind=SpanKind.PRODUCER) as span:
        span.set_attribute("messaging.destination.name", topic)
        span.set_attribute("messaging.batch.message_count", count)
        yield headers_of()


@contextmanager
def consumed(
    headers: Sequence[Headers], attributes: Sequence[dict[str, str]]
) -> Iterator[list[Span]]:
    """A ``process`` span per record, child of the trace its headers carry (ended on exit)."""
    spans = [
        tracer().start_span(
            "process", context=_context_of(carried), kind=SpanKind.CONSUMER, attributes=named
        )
        for carried, named in zip(headers, attributes, strict=True)
    ]
    try:
        yield spans
    finally:
        for span in spans:
            span.end()


def failed(span: Span, reason: str) -> None:
    """Mark a span failed (the record was refused or could not be processed)."""
    span.set_status(Status(StatusCode.ERROR, reason))


def contexts_of(spans: Sequence[Span]) -> list[Context]:
    """The contexts with each span current (parents for the spans of the steps)."""
    return [trace.set_span_in_context(span) for span in spans]


@contextmanager
def each(parents: Sequence[Context] | None, name: str) -> Iterator[list[Span]]:
    """A span ``name`` under each of ``parents`` for the time of one batch-wide step."""
    if not parents:
        yield []
        return
    spans = [tracer().start_span(name, context=parent) for parent in parents]
    try:
        yield spans
    except BaseException as exc:
        for span in spans:
            span.record_exception(exc)
            span.set_status(Status(StatusCode.ERROR, type(exc).__name__))
        raise
    finally:
        for span in spans:
            span.end()
