"""The benchmark's results as data: what ``python -m bench`` writes as JSON and what
``bench/publish/`` turns into ``docs/performance.md`` and its plots.

A run measures *metrics*: one (scenario, name, scale, params) on one target, with one or more
*stats* (p50, p95, instances/s...). Each stat holds one value per repeated run; the report
gives the median and the spread (min, max) of those values, never a single run's.

JSON layout (``schema`` 1)::

    {"schema": 1, "started": iso, "finished": iso, "seconds": float,
     "profile": "smoke|standard|full", "runs": int, "command": "python -m bench ...",
     "machine": {"cpus": int, "cpu_model": str, "memory_gib": float, "os": str,
                 "kernel": str, "python": str, "load_before": str, "load_after": str},
     "targets": {"pacsflow": {"label": str, "version": str}, ...},
     "reference": "orthanc",
     "metrics": [{"scenario": "stow|qido|wado|rendered|memory", "group": str, "name": str,
                  "example": str, "scale": int|null, "params": {str: scalar},
                  "target": str, "unit": str, "better": "lower|higher", "primary": str,
                  "stats": {"p50": {"runs": [float], "median": f, "min": f, "max": f}, ...},
                  "samples": int, "error": str|null}],
     "failures": [str], "notes": {"<scenario>": [str]}}
"""

from __future__ import annotations

import json
import statistics
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Final, Literal

__all__ = ["SCHEMA", "Metric", "Report", "Stat", "load", "stat"]

SCHEMA: Final = 1
Better = Literal["lower", "higher"]


@dataclass
class Stat:
    """One statistic over repeated runs: every run's value, their median and range."""

    runs: list[float]
    median: float
    min: float
    max: float

    @property
    def spread(self) -> float:
        """(max - min) / median: how far apart the runs were (0 for one run)."""
        return (self.max - self.min) / self.median if self.median else 0.0


def stat(values: Iterable[float]) -> Stat:
    """The Stat of one value per run (at least one)."""
    runs = [float(v) for v in values]
    if not runs:
        raise ValueError("a stat needs at least one run")
    return Stat(runs, statistics.median(runs), min(runs), max(runs))


@dataclass
class Metric:
    """One measurement on one target, over repeated runs (or why it failed)."""

    scenario: str
    group: str
    name: str
    target: str
    unit: str
    better: Better
    primary: str
    stats: dict[str, Stat] = field(default_factory=dict)
    example: str = ""
    scale: int | None = None
    params: dict[str, Any] = field(default_factory=dict)
    samples: int = 0
    error: str | None = None

    @property
    def ok(self) -> bool:
        """Measured and verified in every run."""
        return self.error is None and self.primary in self.stats

    @property
    def key(self) -> tuple[str, str, str, int | None, str]:
        """What identifies the measurement across targets."""
        return (
            self.scenario,
            self.group,
            self.name,
            self.scale,
            json.dumps(self.params, sort_keys=True),
        )

    def value(self, name: str | None = None) -> float | None:
        """The median of a stat (the primary one by default), None when not measured."""
        found = self.stats.get(name or self.primary)
        return found.median if found and self.error is None else None


@dataclass
class Report:
    """A whole run: setup, metrics, failures, notes."""

    started: str
    finished: str
    seconds: float
    profile: str
    runs: int
    command: str
    machine: dict[str, Any]
    targets: dict[str, dict[str, str]]
    reference: str
    metrics: list[Metric]
    failures: list[str]
    notes: dict[str, list[str]]
    schema: int = SCHEMA

    def to_json(self) -> str:
        """The JSON text of this report."""
        return json.dumps(asdict(self), indent=1, ensure_ascii=False)

    def save(self, path: Path) -> None:
        """Write the JSON to ``path``."""
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(self.to_json() + "\n")

    def ratio(self, metric: Metric, stat_name: str | None = None) -> float | None:
        """metric's median over the reference target's for the same measurement."""
        if metric.target == self.reference:
            return None
        theirs = self.find(metric.key, self.reference)
        ours = metric.value(stat_name)
        other = theirs.value(stat_name) if theirs else None
        return ours / other if ours is not None and other else None

    def find(self, key: Sequence[Any], target: str) -> Metric | None:
        """The metric with ``key`` on ``target``."""
        for metric in self.metrics:
            if metric.key == tuple(key) and metric.target == target:
                return metric
        return None


def _metric(raw: Mapping[str, Any]) -> Metric:
    stats = {k: Stat(**v) for k, v in raw.get("stats", {}).items()}
    return Metric(**{**raw, "stats": stats})


def load(path: Path) -> Report:
    """A report read back from its JSON file."""
    raw = json.loads(path.read_text())
    if raw.get("schema") != SCHEMA:
        raise ValueError(f"{path}: schema {raw.get('schema')!r}, expected {SCHEMA}")
    metrics = [_metric(m) for m in raw.pop("metrics")]
    return Report(**{**raw, "metrics": metrics})
