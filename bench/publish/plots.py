"""The plots of the performance page: QIDO-RS latency against index size, STOW-RS throughput
against concurrency. PNGs of a fixed size (fixed inches at a fixed dpi), one colour per target."""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any, Final

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt
from matplotlib.axes import Axes
from matplotlib.figure import Figure
from matplotlib.ticker import FuncFormatter, LogFormatter, NullFormatter

from bench.publish.layout import PLOT_TITLES, measurement_name, targets_of
from bench.publish.text import params_text
from bench.results import Metric, Report, Stat

__all__ = [
    "DPI",
    "LATENCY_PNG",
    "THROUGHPUT_FIGSIZE",
    "THROUGHPUT_PNG",
    "latency_figsize",
    "plot_latency_vs_index_size",
    "plot_throughput_vs_concurrency",
]

LATENCY_PNG: Final = "latency-vs-index-size.png"
THROUGHPUT_PNG: Final = "throughput-vs-concurrency.png"

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


def _colours(report: Report) -> dict[str, str]:
    colours: dict[str, str] = {}
    spare = iter(FALLBACK_COLOURS * 4)
    for t in targets_of(report):
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
    parts = [] if m.scenario == "qido" else [measurement_name(m)]
    if m.scenario != "qido" and m.scale is not None:
        parts.append(f"scale {m.scale:,}")
    if params:
        parts.append(params_text(params))
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
    targets = targets_of(report)
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
    targets = targets_of(report)
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
