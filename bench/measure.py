"""Latency of one query on one server: sequential requests over one persistent connection.

Every variant is first checked against the ground truth; a query that errors or answers
wrongly is reported as failed with the reason, not timed. Then ``warmup`` untimed and
``repetitions`` timed requests cycle through the variants; a request's time runs from sending
it to having read the whole body. A query whose timed requests exceed ``budget`` seconds
(or whose warm-up exceeds a quarter of it) stops early with the samples it has; the report
gives their count.
"""

from __future__ import annotations

import statistics
import time
from dataclasses import dataclass, field

import httpx

from bench.queries import Query, Variant

__all__ = ["Outcome", "client_for", "measure"]

HEADERS = {"Accept": "application/dicom+json", "Accept-Encoding": "identity"}


@dataclass
class Outcome:
    """Timings (ms) of a query on a server, or why it could not be timed."""

    query: str
    server: str
    samples_ms: list[float] = field(default_factory=list)
    results: float = 0.0
    error: str | None = None

    @property
    def ok(self) -> bool:
        """Whether the query answered right and was timed."""
        return self.error is None and bool(self.samples_ms)

    def percentile(self, p: int) -> float:
        """The p-th percentile (1-99) of the samples, interpolated (inclusive method)."""
        if len(self.samples_ms) == 1:
            return self.samples_ms[0]
        return statistics.quantiles(self.samples_ms, n=100, method="inclusive")[p - 1]


def client_for(dicomweb_root: str, timeout: float = 120.0) -> httpx.Client:
    """One keep-alive HTTP/1.1 connection's client for a server's DICOMweb root."""
    limits = httpx.Limits(max_connections=1, max_keepalive_connections=1)
    return httpx.Client(base_url=dicomweb_root, headers=HEADERS, timeout=timeout, limits=limits)


def _get(client: httpx.Client, variant: Variant) -> httpx.Response:
    return client.get(variant.target)


def _problem(response: httpx.Response, variant: Variant) -> str | None:
    if response.status_code == 204:  # "no content" is how some servers say "no match"
        return variant.check([])
    if response.status_code != 200:
        return f"{variant.label}: HTTP {response.status_code} {response.text[:200]!r}"
    try:
        payload = response.json()
    except ValueError:
        return f"{variant.label}: the body is not JSON"
    return variant.check(payload)


def measure(
    client: httpx.Client,
    server: str,
    query: Query,
    warmup: int,
    repetitions: int,
    budget: float = 120.0,
) -> Outcome:
    """Check, warm up and time ``query``; never raises for a server's failure."""
    outcome = Outcome(query.name, server)
    variants = query.variants
    try:
        counts = []
        for variant in variants:
            response = _get(client, variant)
            outcome.error = _problem(response, variant)
            if outcome.error:
                return outcome
            counts.append(len(response.json()) if response.status_code == 200 else 0)
        outcome.results = sum(counts) / len(counts)
        warm_until = time.perf_counter() + budget / 4
        for i in range(warmup):
            if time.perf_counter() > warm_until:
                break
            _get(client, variants[i % len(variants)])
        deadline = time.perf_counter() + budget
        for i in range(repetitions):
            if time.perf_counter() > deadline:
                break
            variant = variants[i % len(variants)]
            started = time.perf_counter()
            response = _get(client, variant)
            elapsed = time.perf_counter() - started
            if response.status_code not in (200, 204):
                outcome.error = f"{variant.label}: HTTP {response.status_code} at repetition {i}"
                return outcome
            outcome.samples_ms.append(elapsed * 1000)
    except httpx.HTTPError as exc:
        outcome.error = f"{type(exc).__name__}: {exc}"
    return outcome
