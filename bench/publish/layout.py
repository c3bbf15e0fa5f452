"""What the performance page shows in which order: scenarios, measurements, targets.

Metrics are grouped by key (scenario, group, name, scale, params) and ordered by scenario in
document order, then as the run first reported them, then by scale and parameters.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any, Final

from bench.results import Metric, Report

__all__ = [
    "PLOT_TITLES",
    "SCENARIOS",
    "Key",
    "measurement_name",
    "metrics_by_key",
    "ordered_keys",
    "others_of",
    "sections_of",
    "targets_of",
    "title_of",
]

# Scenario key -> section title, in document order.
SCENARIOS: Final = {
    "stow": "STOW-RS ingest",
    "qido": "QIDO-RS search",
    "wado": "WADO-RS retrieval",
    "rendered": "Rendered and thumbnails",
    "ups": "UPS-RS worklist",
    "capture": "STOW-RS captures (IHE WIC)",
    "memory": "Peak memory",
}
PLOT_TITLES: Final = {
    "qido": "QIDO-RS p50 latency against index size",
    "stow": "STOW-RS throughput against concurrency",
}

Key = tuple[str, str, str, int | None, str]


def _param_order(params: Mapping[str, Any]) -> tuple[tuple[str, int, float, str], ...]:
    """Sort key of params: numbers by value (2 before 10), anything else as text."""
    return tuple(
        (k, 0, float(v), "")
        if isinstance(v, int | float) and not isinstance(v, bool)
        else (k, 1, 0.0, str(v))
        for k, v in sorted(params.items())
    )


def ordered_keys(report: Report, metrics: Iterable[Metric]) -> list[Key]:
    """Distinct metric keys: by scenario, group and name as first reported, scale, params."""
    first_group: dict[tuple[str, str], int] = {}
    first_name: dict[tuple[str, str, str], int] = {}
    for i, m in enumerate(report.metrics):
        first_group.setdefault((m.scenario, m.group), i)
        first_name.setdefault((m.scenario, m.group, m.name), i)
    chosen: dict[Key, Metric] = {}
    for m in metrics:
        chosen.setdefault(m.key, m)
    scenario_order = list(SCENARIOS)

    def order(m: Metric) -> tuple[Any, ...]:
        scenario = scenario_order.index(m.scenario) if m.scenario in SCENARIOS else len(SCENARIOS)
        return (
            scenario,
            m.scenario,
            first_group.get((m.scenario, m.group), 0),
            first_name.get((m.scenario, m.group, m.name), 0),
            -1 if m.scale is None else m.scale,
            _param_order(m.params),
        )

    return [m.key for m in sorted(chosen.values(), key=order)]


def metrics_by_key(report: Report) -> dict[Key, dict[str, Metric]]:
    """Metrics by key, then by target."""
    found: dict[Key, dict[str, Metric]] = {}
    for m in report.metrics:
        found.setdefault(m.key, {}).setdefault(m.target, m)
    return found


def targets_of(report: Report) -> list[str]:
    """Targets in report order, then any target only the metrics name."""
    names = list(report.targets)
    names += sorted({m.target for m in report.metrics} - set(names))
    return names


def others_of(report: Report) -> list[str]:
    """The targets other than the reference, in report order."""
    return [t for t in targets_of(report) if t != report.reference]


def title_of(scenario: str) -> str:
    """The section title of a scenario (its key when unknown)."""
    return SCENARIOS.get(scenario, scenario)


def sections_of(report: Report) -> list[str]:
    """Scenarios measured: the known ones in document order, then any other by name."""
    present = {m.scenario for m in report.metrics}
    return [s for s in SCENARIOS if s in present] + sorted(present - set(SCENARIOS))


def measurement_name(m: Metric) -> str:
    """``group: name`` of a metric (its name alone when they are the same)."""
    return f"{m.group}: {m.name}" if m.group and m.group != m.name else m.name
