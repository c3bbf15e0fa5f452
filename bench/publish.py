"""Benchmark results JSON -> ``docs/performance.md`` and its plots.

Run from the repository root: ``python -m bench.publish bench/results/bench-<date>.json``
(or ``python bench/publish.py ...``). The JSON is what ``python -m bench`` writes (see
bench/results.py); this module only reads it, so a published page can be rebuilt from the
JSON alone. The same report gives the same markdown text; the plots are PNGs of a fixed size.

Written: ``<docs-dir>/performance.md`` and ``<docs-dir>/performance/*.png`` (a plot with
nothing to show is not drawn, and a stale file of that name is removed).
"""

from __future__ import annotations

import sys
from pathlib import Path

if not __package__:  # run as a script: make ``bench`` importable
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import argparse
import math
import re
import statistics
from collections.abc import Callable, Iterable, Mapping, Sequence
from datetime import datetime
from typing import Any, Final

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt
from matplotlib.axes import Axes
from matplotlib.figure import Figure
from matplotlib.ticker import FuncFormatter, LogFormatter, NullFormatter

from bench.results import Metric, Report, Stat, load

__all__ = [
    "DPI",
    "LATENCY_PNG",
    "SCENARIOS",
    "THROUGHPUT_PNG",
    "latency_figsize",
    "main",
    "plot_latency_vs_index_size",
    "plot_throughput_vs_concurrency",
    "publish",
    "render_markdown",
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
LATENCY_PNG: Final = "latency-vs-index-size.png"
THROUGHPUT_PNG: Final = "throughput-vs-concurrency.png"
PLOT_DIR: Final = "performance"  # beside performance.md in the docs directory
PLOT_TITLES: Final = {
    "qido": "QIDO-RS p50 latency against index size",
    "stow": "STOW-RS throughput against concurrency",
}

# Figures: fixed sizes in inches at a fixed dpi, so every PNG has a known pixel size.
DPI: Final = 100
GRID_COLUMNS: Final = 3
PANEL_WIDTH: Final = 4.2  # inches per latency subplot column
PANEL_HEIGHT: Final = 3.0  # inches per latency subplot row
HEADER_HEIGHT: Final = 1.0  # inches above the latency grid: title and legend
THROUGHPUT_FIGSIZE: Final = (12.0, 5.0)

# One colour per target in every plot; other targets take the fallback colours in order.
TARGET_COLOURS: Final = {
    "pacsflow": "#1f77b4",
    "pacsflow-pipeline": "#2ca02c",
    "orthanc": "#d62728",
}
FALLBACK_COLOURS: Final = ("#9467bd", "#ff7f0e", "#8c564b", "#e377c2", "#7f7f7f", "#bcbd22")
LINESTYLES: Final = ("-", "--", ":", "-.")
MARKERS: Final = ("o", "s", "^", "D", "v", "P")

# Stats whose name already says the unit (the metric's unit is not appended).
STAT_LABELS: Final = {
    "instances_per_s": "instances/s",
    "mb_per_s": "MB/s",
    "requests_per_s": "requests/s",
    "peak_mib": "peak MiB",
    "peak_rss_mib": "peak RSS MiB",
}
# Stat name endings that say the unit: ``before_mib`` -> ``before MiB``.
UNIT_SUFFIXES: Final = (
    ("_per_s", "/s"),
    ("_mib", " MiB"),
    ("_mb", " MB"),
    ("_bytes", " bytes"),
    ("_ms", " ms"),
    ("_s", " s"),
)
# Stats in the metric's unit besides its primary one (and percentiles: p50, p99.9).
SAME_UNIT: Final = frozenset({"min", "max", "mean", "median"})
MACHINE_ROWS: Final = (
    ("cpus", "CPUs"),
    ("cpu_model", "CPU model"),
    ("memory_gib", "Memory (GiB)"),
    ("os", "OS"),
    ("kernel", "Kernel"),
    ("python", "Python"),
    ("load_before", "Load average before (1/5/15 min)"),
    ("load_after", "Load average after (1/5/15 min)"),
)
DASH: Final = "\u2014"  # em dash: no value
EN_DASH: Final = "\u2013"  # ranges: 11.9-13.0
MINUS: Final = "\u2212"

Key = tuple[str, str, str, int | None, str]


# --------------------------------------------------------------------------- formatting


def _decimals(value: float) -> int:
    """Decimals that show ``value`` with 3 significant digits (none from 100 up)."""
    if value == 0 or not math.isfinite(value):
        return 0
    return max(0, 2 - math.floor(math.log10(abs(value))))


def _number(value: float, decimals: int | None = None) -> str:
    """A number with 3 significant digits, thousands separators from 1,000 up."""
    if not math.isfinite(value):
        return str(value)
    places = _decimals(value) if decimals is None else decimals
    return f"{value:,.{places}f}"


def _ratio(value: float | None) -> str:
    """A ratio with 2 decimals, 3 significant digits below 0.1 (trailing zeros dropped)."""
    if value is None:
        return DASH
    if value >= 100:
        return f"{value:,.0f}"
    if value >= 0.1:
        return f"{value:.2f}"
    if value <= 0:
        return f"{value:.2f}"
    text = f"{value:.{_decimals(value)}f}"
    return text.rstrip("0").rstrip(".") if "." in text else text


def _percent(value: float) -> str:
    return f"{value * 100:.1f} %"


def _with_range(found: Stat) -> str:
    """``median (min-max)`` (an en dash) at the median's precision; one run: the median."""
    places = _decimals(found.median)
    text = _number(found.median, places)
    if len(found.runs) > 1:
        text += f" ({_number(found.min, places)}{EN_DASH}{_number(found.max, places)})"
    return text


def _cell(text: Any) -> str:
    """Text safe in a GitHub table cell: no line breaks, ``|`` escaped."""
    return " ".join(str(text).split()).replace("|", "\\|")


def _code(text: str) -> str:
    """An inline code span for ``text`` (longer fence when it holds backticks)."""
    fence = "``" if "`" in text else "`"
    pad = " " if "`" in text else ""
    return f"{fence}{pad}{text}{pad}{fence}"


def _table(header: Sequence[str], rows: Iterable[Sequence[str]], right: Sequence[bool]) -> str:
    """A GitHub-flavoured table; ``right`` marks right-aligned (numeric) columns."""
    lines = [
        "| " + " | ".join(_cell(h) for h in header) + " |",
        "|" + "|".join("---:" if r else "---" for r in right) + "|",
    ]
    lines += ["| " + " | ".join(_cell(c) for c in row) + " |" for row in rows]
    return "\n".join(lines)


def _stat_label(name: str, unit: str, primary: str = "") -> str:
    """A column header for a stat: ``p50 ms``, ``instances/s``, ``before MiB``, ``seconds``.

    The metric's unit is the unit of its primary stat and of percentiles and extremes
    (``p95``, ``max``); a stat whose name says its unit keeps that; any other stat
    (``seconds``) is shown by name.
    """
    if name in STAT_LABELS:
        return STAT_LABELS[name]
    for suffix, shown in UNIT_SUFFIXES:
        if name.endswith(suffix) and len(name) > len(suffix):
            return name[: -len(suffix)].replace("_", " ") + shown
    label = name.replace("_", " ")
    in_unit = name == primary or name in SAME_UNIT or re.fullmatch(r"p\d+(\.\d+)?", name)
    return f"{label} {unit}" if in_unit and unit and unit not in label else label


def _scale(scale: int | None) -> str:
    return DASH if scale is None else f"{scale:,}"


def _params(params: Mapping[str, Any]) -> str:
    return ", ".join(f"{k}={v}" for k, v in sorted(params.items())) or DASH


def _duration(seconds: float) -> str:
    total = round(seconds)
    hours, rest = divmod(total, 3600)
    minutes, secs = divmod(rest, 60)
    if hours:
        return f"{hours} h {minutes} min"
    if minutes:
        return f"{minutes} min {secs} s"
    return f"{secs} s"


def _date(iso: str) -> str:
    try:
        return datetime.fromisoformat(iso).strftime("%Y-%m-%d %H:%M")
    except ValueError:
        return iso


# --------------------------------------------------------------------------- ordering


def _param_order(params: Mapping[str, Any]) -> tuple[tuple[str, int, float, str], ...]:
    """Sort key of params: numbers by value (2 before 10), anything else as text."""
    return tuple(
        (k, 0, float(v), "")
        if isinstance(v, int | float) and not isinstance(v, bool)
        else (k, 1, 0.0, str(v))
        for k, v in sorted(params.items())
    )


def _ordered_keys(report: Report, metrics: Iterable[Metric]) -> list[Key]:
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


def _by_key(report: Report) -> dict[Key, dict[str, Metric]]:
    """Metrics by key, then by target."""
    found: dict[Key, dict[str, Metric]] = {}
    for m in report.metrics:
        found.setdefault(m.key, {}).setdefault(m.target, m)
    return found


def _targets(report: Report) -> list[str]:
    """Targets in report order, then any target only the metrics name."""
    names = list(report.targets)
    names += sorted({m.target for m in report.metrics} - set(names))
    return names


def _others(report: Report) -> list[str]:
    return [t for t in _targets(report) if t != report.reference]


def _title(scenario: str) -> str:
    return SCENARIOS.get(scenario, scenario)


def _sections(report: Report) -> list[str]:
    """Scenarios measured: the known ones in document order, then any other by name."""
    present = {m.scenario for m in report.metrics}
    return [s for s in SCENARIOS if s in present] + sorted(present - set(SCENARIOS))


def _text(text: str) -> str:
    """Free text on one line (a bullet item)."""
    return " ".join(text.split())


def _measurement(m: Metric) -> str:
    return f"{m.group}: {m.name}" if m.group and m.group != m.name else m.name


# --------------------------------------------------------------------------- markdown


def _intro(report: Report, source: str | None) -> list[str]:
    reference = report.targets.get(report.reference, {}).get("label", report.reference)
    others = ", ".join(_others(report)) or "pacsflow"
    runs = report.runs
    repeated = f"{runs} repeated runs" if runs != 1 else "a single run"
    median = (
        f"Every figure is the median of the {runs} runs, with the range over the runs in "
        "parentheses where it is shown"
        if runs > 1
        else "Every figure comes from that single run (no median or range over runs)"
    )
    text = (
        f"Measured on {_date(report.started)} (profile `{report.profile}`, {repeated}, "
        f"{_duration(report.seconds)} in total): {others} beside the reference, {reference}, "
        f"on the same machine and the same data. {median}. Every response was verified "
        "before it was timed: a wrong answer is listed under [Failures](#failures), "
        "not timed."
    )
    if source:
        text += f" The numbers come from {_code(source)}."
    return [text]


def _machine(report: Report) -> list[str]:
    machine = report.machine
    rows = [[label, str(machine.get(key, "unknown"))] for key, label in MACHINE_ROWS]
    known = {key for key, _ in MACHINE_ROWS}
    rows += [[key, str(machine[key])] for key in sorted(machine) if key not in known]
    targets = []
    for name in _targets(report):
        info = report.targets.get(name, {})
        shown = f"{name} (reference)" if name == report.reference else name
        targets.append([shown, info.get("label", ""), info.get("version", "") or "unknown"])
    return [
        _table(["", "value"], rows, [False, False]),
        "",
        _table(["target", "what", "version"], targets, [False, False, False]),
    ]


def _reproduce(report: Report, source: str | None) -> list[str]:
    json_path = source or "bench/results/<results>.json"
    return [
        "From the repository root, with the dev venv: run the benchmark (it writes the JSON "
        "results), then publish this page and its plots from them:",
        "",
        "```sh",
        report.command,
        f"python -m bench.publish {json_path}",
        "```",
    ]


def _summary(report: Report) -> list[str]:
    by_key = _by_key(report)
    keys = [k for k in _ordered_keys(report, report.metrics) if report.reference in by_key[k]]
    if not keys:
        return [f"No measurement was made on the reference target ({report.reference})."]
    targets = _targets(report)
    others = _others(report)
    show_scale = any(k[3] is not None for k in keys)
    show_params = any(k[4] != "{}" for k in keys)
    header = ["scenario", "measurement"]
    header += ["scale"] if show_scale else []
    header += ["parameters"] if show_params else []
    header += ["stat", "better", *targets, *(f"{t} / {report.reference}" for t in others)]
    right = [False, False, *([True] if show_scale else []), *([False] if show_params else [])]
    right += [False, False, *(True for _ in targets), *(True for _ in others)]
    rows = []
    for key in keys:
        found = by_key[key]
        ref = found[report.reference]
        row = [_title(key[0]), _measurement(ref)]
        row += [_scale(key[3])] if show_scale else []
        row += [_params(ref.params)] if show_params else []
        row += [_stat_label(ref.primary, ref.unit, ref.primary), ref.better]
        for t in targets:
            m = found.get(t)
            value = m.value() if m else None
            row.append(DASH if m is None else "failed" if value is None else _number(value))
        row += [_ratio(report.ratio(found[t])) if t in found else DASH for t in others]
        rows.append(row)
    return [
        "One row per measurement made on the reference target too: the median of its "
        "headline stat on every target, and each target's median divided by the reference's "
        f"({report.reference}). Read the ratio with the `better` column: for latency "
        "(lower is better) a ratio below 1 means that target, e.g. pacsflow, is faster; for "
        "throughput (higher is better) a ratio above 1 means it is faster. Measurements made "
        "on other targets only are in the sections below.",
        "",
        _table(header, rows, right),
    ]


def _shape(m: Metric) -> tuple[str, str, tuple[str, ...]]:
    return (m.unit, m.primary, tuple(m.stats))


def _group_tables(report: Report, metrics: list[Metric]) -> list[str]:
    """Tables of one group: a row per (measurement, target), a column per stat."""
    by_key = _by_key(report)
    keys = _ordered_keys(report, metrics)
    targets = _targets(report)
    # Split by (unit, primary, stats) so every column means one thing.
    shapes: dict[tuple[str, str, tuple[str, ...]], list[Key]] = {}
    for key in keys:
        ok = [m for m in by_key[key].values() if m.ok]
        anyone = ok[0] if ok else next(iter(by_key[key].values()))
        shapes.setdefault(_shape(anyone), []).append(key)
    out: list[str] = []
    for (unit, primary, stat_names), shape_keys in shapes.items():
        if not stat_names:  # every metric failed: one column, the primary stat
            stat_names = (primary,)
        show_scale = any(k[3] is not None for k in shape_keys)
        show_params = len({k[4] for k in shape_keys}) > 1 or any(k[4] != "{}" for k in shape_keys)
        header = ["measurement"]
        header += ["scale"] if show_scale else []
        header += ["parameters"] if show_params else []
        header += ["target", *(_stat_label(s, unit, primary) for s in stat_names), "samples"]
        header.append(f"{_stat_label(primary, unit, primary)} ratio to {report.reference}")
        right = [False, *([True] if show_scale else []), *([False] if show_params else [])]
        right += [False, *(True for _ in stat_names), True, True]
        rows = []
        for key in shape_keys:
            first = True
            for t in targets:
                m = by_key[key].get(t)
                if m is None:
                    continue
                row = [m.name if first else ""]
                row += [_scale(m.scale) if first else ""] if show_scale else []
                row += [_params(m.params) if first else ""] if show_params else []
                row.append(t)
                if m.error is not None:
                    row += ["failed" for _ in stat_names] + [DASH, DASH]
                else:
                    row += [_with_range(m.stats[s]) if s in m.stats else DASH for s in stat_names]
                    row.append(f"{m.samples:,}" if m.samples else DASH)
                    row.append(_ratio(report.ratio(m)) if t != report.reference else "reference")
                rows.append(row)
                first = False
        if out:
            out.append("")
        out.append(_table(header, rows, right))
    # One example request per measurement name; per target where the targets differ.
    examples: dict[str, dict[str, list[str]]] = {}
    for key in keys:
        for t in targets:
            m = by_key[key].get(t)
            if m is not None and m.example:
                examples.setdefault(m.name, {}).setdefault(_text(m.example), []).append(t)
    if examples:
        out += ["", "Requests (one example each):", ""]
        for name, found in examples.items():
            for example, users in found.items():
                who = f" ({', '.join(dict.fromkeys(users))})" if len(found) > 1 else ""
                out.append(f"- {_text(name)}{who}: {_code(example)}")
    return out


def _scenario_section(
    report: Report, scenario: str, plots: Mapping[str, str], runs: int
) -> list[str]:
    metrics = [m for m in report.metrics if m.scenario == scenario]
    out = [f"## {_title(scenario)}", ""]
    if runs > 1:
        out += [
            f"Each cell: median over the runs (lowest{EN_DASH}highest run). Samples: the requests "
            "or items timed per run. The last column: the headline stat's median divided "
            f"by {report.reference}'s.",
            "",
        ]
    else:
        out += [
            "Each cell: the value of the single run. Samples: the requests or items timed. "
            f"The last column: the headline stat divided by {report.reference}'s.",
            "",
        ]
    if scenario in plots:
        out += [f"![{PLOT_TITLES.get(scenario, _title(scenario))}]({plots[scenario]})", ""]
    groups: list[str] = []
    for m in metrics:
        if m.group not in groups:
            groups.append(m.group)
    for group in groups:
        if len(groups) > 1 or group:
            out += [f"### {group or 'other'}", ""]
        out += _group_tables(report, [m for m in metrics if m.group == group])
        out.append("")
    notes = report.notes.get(scenario, [])
    if notes:
        out += ["Notes:", ""]
        out += [f"- {_text(note)}" for note in notes]
        out.append("")
    return out[:-1] if out[-1] == "" else out


def _noise(report: Report, scenarios: Sequence[str]) -> list[str]:
    explain = (
        f"Spread is (max {MINUS} min) / median of a metric's headline stat over the repeated runs: "
        "how far apart the runs were. A large spread means the machine was busy or the "
        "measurement is noisy; compare ratios only where the spread is well below the "
        "difference they show."
    )
    if report.runs <= 1:
        return [
            explain,
            "",
            "This report has a single run, so the spread cannot be estimated from it; run "
            "the benchmark with more runs to see how repeatable the figures are.",
        ]
    rows = []
    for scenario in scenarios:
        for t in _targets(report):
            found = [
                (m.stats[m.primary].spread, m)
                for m in report.metrics
                if m.scenario == scenario and m.target == t and m.ok
            ]
            if not found:
                continue
            worst = max(found, key=lambda pair: pair[0])
            label = _measurement(worst[1])
            if worst[1].scale is not None:
                label += f", scale {worst[1].scale:,}"
            if worst[1].params:
                label += f", {_params(worst[1].params)}"
            rows.append(
                [
                    _title(scenario),
                    t,
                    str(len(found)),
                    _percent(statistics.median(s for s, _ in found)),
                    _percent(worst[0]),
                    label,
                ]
            )
    if not rows:
        return [explain, "", "No metric was measured, so there is no spread to show."]
    header = ["scenario", "target", "metrics", "median spread", "max spread", "largest in"]
    return [
        explain,
        "",
        _table(header, rows, [False, False, True, True, True, False]),
    ]


def _failures(report: Report) -> list[str]:
    if not report.failures:
        return ["None: every response was verified and correct."]
    return [f"- {_text(f)}" for f in report.failures]


def _other_notes(report: Report, sections: Sequence[str]) -> list[str]:
    keys = [k for k in report.notes if k not in sections and report.notes[k]]
    keys.sort(key=lambda k: (k != "general", k))
    out: list[str] = []
    for key in keys:
        if len(keys) > 1 or key != "general":
            out += [f"### {_title(key)}", ""]
        out += [f"- {_text(note)}" for note in report.notes[key]]
        out.append("")
    return out[:-1]


def render_markdown(
    report: Report,
    plots: Mapping[str, str],
    *,
    source: str | None = None,
    findings: str | None = None,
) -> str:
    """The whole of docs/performance.md for ``report``.

    ``plots`` maps a scenario (``"qido"``, ``"stow"``) to the path of its plot relative to
    the document; a scenario without one gets no image. ``source`` names the JSON file the
    numbers come from; ``findings`` is a hand-written reading of those numbers (markdown,
    kept next to the JSON as ``<name>.findings.md``), shown first. Deterministic: the same
    arguments give the same text.
    """
    sections = _sections(report)
    out = ["# Performance: pacsflow beside Orthanc", ""]
    out += [*_intro(report, source), ""]
    if findings and findings.strip():
        out += ["## Findings", "", findings.strip(), ""]
    out += ["## Machine", "", *_machine(report), ""]
    out += ["## How to reproduce", "", *_reproduce(report, source), ""]
    out += ["## Summary", "", *_summary(report), ""]
    for scenario in sections:
        out += [*_scenario_section(report, scenario, plots, report.runs), ""]
    out += ["## Noise", "", *_noise(report, sections), ""]
    out += ["## Failures", "", *_failures(report), ""]
    other = _other_notes(report, sections)
    if other:
        out += ["## Notes", "", *other, ""]
    return "\n".join(out).rstrip("\n") + "\n"


# --------------------------------------------------------------------------- plots


def _colours(report: Report) -> dict[str, str]:
    colours: dict[str, str] = {}
    spare = iter(FALLBACK_COLOURS * 4)
    for t in _targets(report):
        colours[t] = TARGET_COLOURS.get(t) or next(spare, "#000000")
    return colours


def latency_figsize(panels: int) -> tuple[float, float]:
    """The latency plot's size in inches for ``panels`` subplots (3 a row)."""
    rows = max(1, math.ceil(panels / GRID_COLUMNS))
    return (GRID_COLUMNS * PANEL_WIDTH, rows * PANEL_HEIGHT + HEADER_HEIGHT)


def _save(fig: Figure, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        fig.savefig(path, dpi=DPI, format="png", metadata={"Software": None})
    finally:
        plt.close(fig)


def _errorbar(ax: Axes, points: list[tuple[float, Stat]], **style: Any) -> None:
    points.sort(key=lambda p: p[0])
    xs = [x for x, _ in points]
    ys = [s.median for _, s in points]
    low = [s.median - s.min for _, s in points]
    high = [s.max - s.median for _, s in points]
    ax.errorbar(xs, ys, yerr=[low, high], capsize=3, linewidth=1.5, markersize=5, **style)


def _series(
    metrics: Iterable[Metric], x_of: Callable[[Metric], float | None]
) -> dict[tuple[str, str], list[tuple[float, Metric]]]:
    """Points by (target, what the line is: the key without its x)."""
    lines: dict[tuple[str, str], list[tuple[float, Metric]]] = {}
    for m in metrics:
        x = x_of(m)
        if x is None:
            continue
        lines.setdefault((m.target, _line_name(m)), []).append((x, m))
    return lines


def _line_name(m: Metric) -> str:
    params = {k: v for k, v in m.params.items() if k != "concurrency"}
    parts = [] if m.scenario == "qido" else [_measurement(m)]
    if m.scenario != "qido" and m.scale is not None:
        parts.append(f"scale {m.scale:,}")
    if params:
        parts.append(_params(params))
    return ", ".join(parts)


def _count(value: float, _pos: object = None) -> str:
    """Tick label of an instance count: 1k, 10k, 1M."""
    for factor, suffix in ((1e9, "G"), (1e6, "M"), (1e3, "k")):
        if value >= factor:
            return f"{value / factor:g}{suffix}"
    return f"{value:g}"


def plot_latency_vs_index_size(report: Report, path: Path) -> bool:
    """QIDO-RS p50 latency against the number of indexed instances, one panel per query.

    Log-log; one line per target in its colour; error bars span the lowest to the highest
    run. Failed metrics are left out. False, and nothing written, when fewer than two
    scales were measured.
    """
    metrics = [
        m
        for m in report.metrics
        if m.scenario == "qido" and m.scale is not None and m.ok and "p50" in m.stats
    ]
    if len({m.scale for m in metrics}) < 2:
        return False
    panels: list[tuple[str, str]] = []
    for m in metrics:
        if (m.group, m.name) not in panels:
            panels.append((m.group, m.name))
    names = [n for _, n in panels]
    colours = _colours(report)
    targets = _targets(report)
    unit = metrics[0].unit or "ms"
    rows = math.ceil(len(panels) / GRID_COLUMNS)
    fig = plt.figure(figsize=latency_figsize(len(panels)), dpi=DPI, layout="constrained")
    axes = fig.subplots(rows, GRID_COLUMNS, squeeze=False)
    scales = sorted({float(m.scale) for m in metrics if m.scale is not None})
    extra = sorted({_line_name(m) for m in metrics})  # lines other than the target's own
    for i, (group, name) in enumerate(panels):
        ax: Axes = axes[i // GRID_COLUMNS][i % GRID_COLUMNS]
        inside = [m for m in metrics if (m.group, m.name) == (group, name)]
        lines = _series(inside, lambda m: float(m.scale) if m.scale is not None else None)
        for (target, line), points in sorted(
            lines.items(), key=lambda item: (targets.index(item[0][0]), item[0][1])
        ):
            style = extra.index(line)
            _errorbar(
                ax,
                [(x, m.stats["p50"]) for x, m in points],
                color=colours[target],
                label=target if len(extra) == 1 else f"{target}, {line}",
                marker=MARKERS[style % len(MARKERS)],
                linestyle=LINESTYLES[style % len(LINESTYLES)],
            )
        title = name if names.count(name) == 1 or not group else f"{group}: {name}"
        ax.set_title(title, fontsize=10)
        ax.set_xscale("log")
        ax.set_yscale("log")
        ax.set_xticks(scales)
        ax.xaxis.set_major_formatter(FuncFormatter(_count))
        ax.xaxis.set_minor_formatter(NullFormatter())
        ax.set_xlim(scales[0] / 2, scales[-1] * 2)
        ax.yaxis.set_major_formatter(LogFormatter(labelOnlyBase=False))
        ax.yaxis.set_minor_formatter(LogFormatter(labelOnlyBase=False, minor_thresholds=(2, 1)))
        ax.grid(True, which="major", alpha=0.3)
        ax.tick_params(labelsize=8)
        if i + GRID_COLUMNS >= len(panels):  # nothing below: label the x axis here
            ax.set_xlabel("indexed instances (log scale)", fontsize=9)
    for j in range(len(panels), rows * GRID_COLUMNS):
        axes[j // GRID_COLUMNS][j % GRID_COLUMNS].set_axis_off()
    runs = (
        f"median of {report.runs} runs, bars: lowest to highest run"
        if report.runs > 1
        else ("one run")
    )
    fig.suptitle(f"{PLOT_TITLES['qido']} ({runs})", fontsize=12)
    fig.supylabel(f"p50 latency, {unit} (log scale)", fontsize=10)
    handles, labels = _legend_entries(fig)
    fig.legend(handles, labels, loc="outside lower center", ncols=min(len(labels), 4), fontsize=9)
    _save(fig, path)
    return True


def _legend_entries(fig: Figure) -> tuple[list[Any], list[str]]:
    """Each label once, over all the figure's axes, in drawing order."""
    handles: list[Any] = []
    labels: list[str] = []
    for ax in fig.axes:
        for handle, label in zip(*ax.get_legend_handles_labels(), strict=True):
            if label not in labels:
                handles.append(handle)
                labels.append(label)
    return handles, labels


def _concurrency(m: Metric) -> float | None:
    value = m.params.get("concurrency")
    if isinstance(value, int | float) and not isinstance(value, bool) and value > 0:
        return float(value)
    return None


def plot_throughput_vs_concurrency(report: Report, path: Path) -> bool:
    """STOW-RS instances/s and MB/s against client concurrency, one line per target.

    Error bars span the lowest to the highest run; failed metrics are left out. False, and
    nothing written, when fewer than two concurrency levels were measured.
    """
    panels = (("instances_per_s", "instances/s"), ("mb_per_s", "MB/s"))
    metrics = [
        m
        for m in report.metrics
        if m.scenario == "stow"
        and m.error is None
        and _concurrency(m) is not None
        and any(s in m.stats for s, _ in panels)
    ]
    levels = sorted({x for m in metrics if (x := _concurrency(m)) is not None})
    if len(levels) < 2:
        return False
    colours = _colours(report)
    targets = _targets(report)
    lines = _series(metrics, _concurrency)
    extra = sorted({line for _, line in lines})
    fig = plt.figure(figsize=THROUGHPUT_FIGSIZE, dpi=DPI, layout="constrained")
    axes = fig.subplots(1, len(panels), squeeze=False)[0]
    for ax, (stat_name, label) in zip(axes, panels, strict=True):
        for (target, line), points in sorted(
            lines.items(), key=lambda item: (targets.index(item[0][0]), item[0][1])
        ):
            shown = [(x, m.stats[stat_name]) for x, m in points if stat_name in m.stats]
            if not shown:
                continue
            style = extra.index(line)
            _errorbar(
                ax,
                shown,
                color=colours[target],
                label=target if len(extra) == 1 else f"{target}, {line}",
                marker=MARKERS[style % len(MARKERS)],
                linestyle=LINESTYLES[style % len(LINESTYLES)],
            )
        ax.set_title(f"STOW-RS {label}", fontsize=11)
        ax.set_xscale("log", base=2)
        ax.set_xticks(levels)
        ax.xaxis.set_major_formatter(FuncFormatter(lambda v, _pos: f"{v:g}"))
        ax.xaxis.set_minor_formatter(NullFormatter())
        ax.set_xlim(levels[0] / 1.3, levels[-1] * 1.3)
        ax.set_ylim(bottom=0)
        ax.set_xlabel("concurrent STOW-RS requests")
        ax.set_ylabel(f"{label} (higher is better)")
        ax.yaxis.set_major_formatter(FuncFormatter(lambda v, _pos: f"{v:,.0f}"))
        ax.grid(True, which="major", alpha=0.3)
    runs = (
        f"median of {report.runs} runs, bars: lowest to highest run"
        if report.runs > 1
        else ("one run")
    )
    fig.suptitle(f"{PLOT_TITLES['stow']} ({runs})", fontsize=12)
    handles, labels = _legend_entries(fig)
    fig.legend(handles, labels, loc="outside lower center", ncols=min(len(labels), 4), fontsize=9)
    _save(fig, path)
    return True


# --------------------------------------------------------------------------- publishing


def findings_of(results: Path) -> str | None:
    """The hand-written findings kept next to a results file (``<name>.findings.md``)."""
    path = results.with_suffix(".findings.md")
    return path.read_text() if path.is_file() else None


def publish(report: Report, docs_dir: Path, json_name: str, findings: str | None = None) -> Path:
    """Write ``docs_dir/performance.md`` and its plots under ``docs_dir/performance/``.

    ``json_name`` is the results file as the document should name it (e.g.
    ``bench/results/bench-20261125-120000.json``). Returns the markdown's path.
    """
    plot_dir = docs_dir / PLOT_DIR
    plots: dict[str, str] = {}
    drawers = (
        ("qido", LATENCY_PNG, plot_latency_vs_index_size),
        ("stow", THROUGHPUT_PNG, plot_throughput_vs_concurrency),
    )
    for scenario, name, draw in drawers:
        target = plot_dir / name
        if draw(report, target):
            plots[scenario] = f"{PLOT_DIR}/{name}"
        else:
            target.unlink(missing_ok=True)  # a stale plot of an earlier report
    docs_dir.mkdir(parents=True, exist_ok=True)
    out = docs_dir / "performance.md"
    out.write_text(render_markdown(report, plots, source=json_name, findings=findings))
    return out


def _display(path: Path) -> str:
    """``path`` relative to the working directory when inside it, else as given."""
    try:
        return path.resolve().relative_to(Path.cwd().resolve()).as_posix()
    except ValueError:
        return str(path)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m bench.publish",
        description="Turn a benchmark results JSON into docs/performance.md and its plots.",
    )
    parser.add_argument("results", type=Path, help="results JSON written by python -m bench")
    parser.add_argument(
        "--docs-dir", type=Path, default=Path("docs"), help="where performance.md goes (docs)"
    )
    args = parser.parse_args(argv)
    try:
        report = load(args.results)
    except (OSError, ValueError, TypeError, KeyError) as exc:
        print(f"bench.publish: cannot read {args.results}: {exc}", file=sys.stderr)
        return 2
    out = publish(report, args.docs_dir, _display(args.results), findings_of(args.results))
    print(out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
