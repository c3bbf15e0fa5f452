"""Gathering measurements over repeated runs into ``bench.results`` metrics.

A scenario records, run after run, the outcome of each (measurement, target): latency samples
(``Outcome``), a rate, or a failure. ``Collector.metrics()`` turns one value per run into each
stat's median and range; a measurement that failed in any run is a failed metric (with the
first reason), never a figure. ``PeakMemory`` samples the resident memory of each target's
server processes while a scenario runs.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from bench.measure import Outcome
from bench.results import Better, Metric, stat
from bench.wado_measure import rss_tree

__all__ = ["Collector", "PeakMemory"]

PERCENTILES = (50, 95, 99)


@dataclass
class _Entry:
    metric: Metric
    runs: list[dict[str, float]] = field(default_factory=list)


class Collector:
    """Per-run values of every measurement of a scenario, then metrics."""

    def __init__(self, scenario: str) -> None:
        self.scenario = scenario
        self._entries: dict[tuple[Any, ...], _Entry] = {}

    def _entry(
        self,
        target: str,
        group: str,
        name: str,
        *,
        unit: str,
        better: Better,
        primary: str,
        example: str = "",
        scale: int | None = None,
        params: Mapping[str, Any] | None = None,
    ) -> _Entry:
        key = (target, group, name, scale, tuple(sorted((params or {}).items())))
        if key not in self._entries:
            metric = Metric(
                self.scenario,
                group,
                name,
                target,
                unit,
                better,
                primary,
                example=example,
                scale=scale,
                params=dict(params or {}),
            )
            self._entries[key] = _Entry(metric)
        return self._entries[key]

    def latency(
        self,
        target: str,
        group: str,
        outcome: Outcome,
        *,
        name: str | None = None,
        example: str = "",
        scale: int | None = None,
        params: Mapping[str, Any] | None = None,
    ) -> None:
        """One run's latency samples (ms): p50, p95 and p99 of the run."""
        entry = self._entry(
            target,
            group,
            name or outcome.query,
            unit="ms",
            better="lower",
            primary="p50",
            example=example,
            scale=scale,
            params=params,
        )
        if not outcome.ok:
            self.fail(entry, outcome.error or "no samples")
            return
        entry.metric.samples += len(outcome.samples_ms)
        entry.runs.append({f"p{p}": outcome.percentile(p) for p in PERCENTILES})

    def values(
        self,
        target: str,
        group: str,
        name: str,
        values: Mapping[str, float] | None,
        *,
        unit: str,
        better: Better,
        primary: str,
        error: str | None = None,
        samples: int = 1,
        example: str = "",
        scale: int | None = None,
        params: Mapping[str, Any] | None = None,
    ) -> None:
        """One run's values of named stats (a rate, a peak...), or why there are none."""
        entry = self._entry(
            target,
            group,
            name,
            unit=unit,
            better=better,
            primary=primary,
            example=example,
            scale=scale,
            params=params,
        )
        if error or values is None:
            self.fail(entry, error or "not measured")
            return
        entry.metric.samples += samples
        entry.runs.append(dict(values))

    @staticmethod
    def fail(entry: _Entry, reason: str) -> None:
        """Mark a measurement failed (the first reason is kept)."""
        if entry.metric.error is None:
            entry.metric.error = reason

    def metrics(self) -> list[Metric]:
        """Every measurement, with each stat over the runs it was measured in."""
        out = []
        for entry in self._entries.values():
            metric = entry.metric
            if metric.error is None and entry.runs:
                names = entry.runs[0].keys()
                metric.stats = {n: stat(run[n] for run in entry.runs) for n in names}
            out.append(metric)
        return out

    def failures(self) -> list[str]:
        """One line per failed measurement."""
        return [
            f"{m.target}, {m.scenario}: {m.group}: {m.name}"
            + (f" at {m.scale:,} instances" if m.scale else "")
            + (f" {m.params}" if m.params else "")
            + f": {m.error}"
            for m in (e.metric for e in self._entries.values())
            if m.error
        ]


class PeakMemory:
    """Highest resident memory (MiB) of each target's processes (with children) while
    sampling; one peak per ``window``."""

    def __init__(self, pids: Mapping[str, list[int]], interval: float = 0.1) -> None:
        self.pids = dict(pids)
        self.interval = interval

    @contextmanager
    def window(self) -> Iterator[dict[str, float]]:
        """Sample during the ``with`` block; the dict yielded holds the peaks (MiB) after it."""
        peaks: dict[str, float] = dict.fromkeys(self.pids, 0.0)
        stop = threading.Event()

        def sample() -> None:
            while True:
                for name, pids in self.pids.items():
                    now = sum(rss_tree(pid) for pid in pids) / 1024**2
                    peaks[name] = max(peaks[name], now)
                if stop.wait(self.interval):
                    return

        sampler = threading.Thread(target=sample, daemon=True)
        sampler.start()
        try:
            yield peaks
        finally:
            stop.set()
            sampler.join()
