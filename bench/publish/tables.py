"""The tables of the performance page: the summary, one section per scenario, the noise.

Each cell is the median over the repeated runs with the range in parentheses; each target's
headline stat is divided by the reference target's (Orthanc) to give its ratio.
"""

from __future__ import annotations

import statistics
from collections.abc import Mapping, Sequence

from bench.publish.layout import (
    PLOT_TITLES,
    Key,
    measurement_name,
    metrics_by_key,
    ordered_keys,
    others_of,
    targets_of,
    title_of,
)
from bench.publish.text import (
    DASH,
    EN_DASH,
    MINUS,
    code_span,
    number,
    one_line,
    params_text,
    percent,
    ratio_text,
    scale_text,
    stat_label,
    table,
    with_range,
)
from bench.results import Metric, Report

__all__ = ["noise", "scenario_section", "summary"]


def summary(report: Report) -> list[str]:
    """The summary table: each measurement made on the reference, every target's median."""
    by_key = metrics_by_key(report)
    keys = [k for k in ordered_keys(report, report.metrics) if report.reference in by_key[k]]
    if not keys:
        return [f"No measurement was made on the reference target ({report.reference})."]
    targets = targets_of(report)
    others = others_of(report)
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
        row = [title_of(key[0]), measurement_name(ref)]
        row += [scale_text(key[3])] if show_scale else []
        row += [params_text(ref.params)] if show_params else []
        row += [stat_label(ref.primary, ref.unit, ref.primary), ref.better]
        for t in targets:
            m = found.get(t)
            value = m.value() if m else None
            row.append(DASH if m is None else "failed" if value is None else number(value))
        row += [ratio_text(report.ratio(found[t])) if t in found else DASH for t in others]
        rows.append(row)
    return [
        "One row per measurement made on the reference target too: the median of its "
        "headline stat on every target, and each target's median divided by the reference's "
        f"({report.reference}). Read the ratio with the `better` column: for latency "
        "(lower is better) a ratio below 1 means that target, e.g. pacsflow, is faster; for "
        "throughput (higher is better) a ratio above 1 means it is faster. Measurements made "
        "on other targets only are in the sections below.",
        "",
        table(header, rows, right),
    ]


def _shape(m: Metric) -> tuple[str, str, tuple[str, ...]]:
    return (m.unit, m.primary, tuple(m.stats))


def _group_tables(report: Report, metrics: list[Metric]) -> list[str]:
    """Tables of one group: a row per (measurement, target), a column per stat."""
    by_key = metrics_by_key(report)
    keys = ordered_keys(report, metrics)
    targets = targets_of(report)
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
        header += ["target", *(stat_label(s, unit, primary) for s in stat_names), "samples"]
        header.append(f"{stat_label(primary, unit, primary)} ratio to {report.reference}")
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
                row += [scale_text(m.scale) if first else ""] if show_scale else []
                row += [params_text(m.params) if first else ""] if show_params else []
                row.append(t)
                if m.error is not None:
                    row += ["failed" for _ in stat_names] + [DASH, DASH]
                else:
                    row += [with_range(m.stats[s]) if s in m.stats else DASH for s in stat_names]
                    row.append(f"{m.samples:,}" if m.samples else DASH)
                    row.append(
                        ratio_text(report.ratio(m)) if t != report.reference else "reference"
                    )
                rows.append(row)
                first = False
        if out:
            out.append("")
        out.append(table(header, rows, right))
    # One example request per measurement name; per target where the targets differ.
    examples: dict[str, dict[str, list[str]]] = {}
    for key in keys:
        for t in targets:
            m = by_key[key].get(t)
            if m is not None and m.example:
                examples.setdefault(m.name, {}).setdefault(one_line(m.example), []).append(t)
    if examples:
        out += ["", "Requests (one example each):", ""]
        for name, found in examples.items():
            for example, users in found.items():
                who = f" ({', '.join(dict.fromkeys(users))})" if len(found) > 1 else ""
                out.append(f"- {one_line(name)}{who}: {code_span(example)}")
    return out


def scenario_section(
    report: Report, scenario: str, plots: Mapping[str, str], runs: int
) -> list[str]:
    """A scenario's section: its plot, a table per group and shape, its notes."""
    metrics = [m for m in report.metrics if m.scenario == scenario]
    out = [f"## {title_of(scenario)}", ""]
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
        out += [f"![{PLOT_TITLES.get(scenario, title_of(scenario))}]({plots[scenario]})", ""]
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
        out += [f"- {one_line(note)}" for note in notes]
        out.append("")
    return out[:-1] if out[-1] == "" else out


def noise(report: Report, scenarios: Sequence[str]) -> list[str]:
    """How far apart the repeated runs were, per scenario and target."""
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
        for t in targets_of(report):
            found = [
                (m.stats[m.primary].spread, m)
                for m in report.metrics
                if m.scenario == scenario and m.target == t and m.ok
            ]
            if not found:
                continue
            worst = max(found, key=lambda pair: pair[0])
            label = measurement_name(worst[1])
            if worst[1].scale is not None:
                label += f", scale {worst[1].scale:,}"
            if worst[1].params:
                label += f", {params_text(worst[1].params)}"
            rows.append(
                [
                    title_of(scenario),
                    t,
                    str(len(found)),
                    percent(statistics.median(s for s, _ in found)),
                    percent(worst[0]),
                    label,
                ]
            )
    if not rows:
        return [explain, "", "No metric was measured, so there is no spread to show."]
    header = ["scenario", "target", "metrics", "median spread", "max spread", "largest in"]
    return [
        explain,
        "",
        table(header, rows, [False, False, True, True, True, False]),
    ]
