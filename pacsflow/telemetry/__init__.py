"""Telemetry: Prometheus metrics, OpenTelemetry tracing, structured logs (docs/operations.md)."""
