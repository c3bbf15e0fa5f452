"""docs/performance.md as a whole: introduction, findings, machine, how to reproduce, the
tables of every scenario, failures and notes (deterministic: the same report, the same text);
and ``publish``, which writes it with its plots."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Final

from bench.publish.findings import findings_section
from bench.publish.layout import others_of, sections_of, targets_of, title_of
from bench.publish.plots import (
    LATENCY_PNG,
    THROUGHPUT_PNG,
    plot_latency_vs_index_size,
    plot_throughput_vs_concurrency,
)
from bench.publish.tables import noise, scenario_section, summary
from bench.publish.text import code_span, date_text, duration, one_line, table
from bench.results import Report

__all__ = ["PLOT_DIR", "publish", "render_markdown"]

PLOT_DIR: Final = "performance"  # beside performance.md in the docs directory
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


def _intro(report: Report, source: str | None) -> list[str]:
    reference = report.targets.get(report.reference, {}).get("label", report.reference)
    others = ", ".join(others_of(report)) or "pacsflow"
    runs = report.runs
    repeated = f"{runs} repeated runs" if runs != 1 else "a single run"
    median = (
        f"Every figure is the median of the {runs} runs, with the range over the runs in "
        "parentheses where it is shown"
        if runs > 1
        else "Every figure comes from that single run (no median or range over runs)"
    )
    text = (
        f"Measured on {date_text(report.started)} (profile `{report.profile}`, {repeated}, "
        f"{duration(report.seconds)} in total): {others} beside the reference, {reference}, "
        f"on the same machine and the same data. {median}. Every response was verified "
        "before it was timed: a wrong answer is listed under [Failures](#failures), "
        "not timed."
    )
    if source:
        text += f" The numbers come from {code_span(source)}."
    return [text]


def _machine(report: Report) -> list[str]:
    machine = report.machine
    rows = [[label, str(machine.get(key, "unknown"))] for key, label in MACHINE_ROWS]
    known = {key for key, _ in MACHINE_ROWS}
    rows += [[key, str(machine[key])] for key in sorted(machine) if key not in known]
    targets = []
    for name in targets_of(report):
        info = report.targets.get(name, {})
        shown = f"{name} (reference)" if name == report.reference else name
        targets.append([shown, info.get("label", ""), info.get("version", "") or "unknown"])
    return [
        table(["", "value"], rows, [False, False]),
        "",
        table(["target", "what", "version"], targets, [False, False, False]),
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


def _failures(report: Report) -> list[str]:
    if not report.failures:
        return ["None: every response was verified and correct."]
    return [f"- {one_line(f)}" for f in report.failures]


def _other_notes(report: Report, sections: Sequence[str]) -> list[str]:
    keys = [k for k in report.notes if k not in sections and report.notes[k]]
    keys.sort(key=lambda k: (k != "general", k))
    out: list[str] = []
    for key in keys:
        if len(keys) > 1 or key != "general":
            out += [f"### {title_of(key)}", ""]
        out += [f"- {one_line(note)}" for note in report.notes[key]]
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
    sections = sections_of(report)
    out = ["# Performance: pacsflow beside Orthanc", ""]
    out += [*_intro(report, source), ""]
    out += findings_section(findings)
    out += ["## Machine", "", *_machine(report), ""]
    out += ["## How to reproduce", "", *_reproduce(report, source), ""]
    out += ["## Summary", "", *summary(report), ""]
    for scenario in sections:
        out += [*scenario_section(report, scenario, plots, report.runs), ""]
    out += ["## Noise", "", *noise(report, sections), ""]
    out += ["## Failures", "", *_failures(report), ""]
    other = _other_notes(report, sections)
    if other:
        out += ["## Notes", "", *other, ""]
    return "\n".join(out).rstrip("\n") + "\n"


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
