"""The Markdown report of a WADO-RS run: data and loads, latency, throughput, memory."""

from __future__ import annotations

import statistics
from collections.abc import Sequence
from dataclasses import dataclass

from bench.measure import Outcome
from bench.wado_measure import MemoryPeak, Throughput

__all__ = ["LatencyRow", "LoadRow", "render"]


@dataclass(frozen=True, slots=True)
class LoadRow:
    """One data set stored into one server: how long it took, or why it failed."""

    role: str
    description: str
    files: int
    size: int
    transfer_syntax: str
    seconds: dict[str, float | None]  # per server; None: not stored
    notes: dict[str, str]


@dataclass(frozen=True, slots=True)
class LatencyRow:
    """A latency measurement: its name, what each server was asked, its outcomes, a target."""

    name: str
    accept: dict[str, str]
    outcomes: dict[str, Outcome]
    target_ms: float | None = None


def _mb(size: int) -> str:
    return f"{size / 1e6:,.1f} MB"


def _mib(size: int) -> str:
    return f"{size / 1024**2:,.0f} MiB"


def _ms(value: float) -> str:
    return f"{value:.2f}" if value < 100 else f"{value:,.0f}"


def _data_table(loads: Sequence[LoadRow], servers: Sequence[str]) -> list[str]:
    head = "| data | what | files | size | transfer syntax |"
    head += "".join(f" {s} store s |" for s in servers)
    lines = [head, "|---|---|---:|---:|---|" + "---:|" * len(servers)]
    for row in loads:
        cells = ""
        for server in servers:
            seconds = row.seconds.get(server)
            note = row.notes.get(server, "")
            cells += (
                f" {'' if seconds is None else f'{seconds:,.1f}'}{' ' + note if note else ''} |"
            )
        lines.append(
            f"| {row.role} | {row.description} | {row.files:,} | {_mb(row.size)} "
            f"| {row.transfer_syntax} |{cells}"
        )
    return lines


def _ratio(ours: float, theirs: float) -> str:
    if not theirs:
        return ""
    ratio = ours / theirs
    return f"{ratio:.2f}" if ratio >= 0.1 else f"{ratio:.2g}"


def _latency_table(rows: Sequence[LatencyRow], servers: Sequence[str]) -> list[str]:
    both = {"pacsflow", "orthanc"} <= set(servers)
    lines = [
        "| measurement | server | Accept sent | body bytes | n | p50 ms | p95 ms "
        "| pacsflow/orthanc p50 | p95 | target |",
        "|---|---|---|---:|---:|---:|---:|---:|---:|---|",
    ]
    for row in rows:
        for i, server in enumerate(servers):
            outcome = row.outcomes.get(server)
            name = row.name if i == 0 else ""
            accept = f"`{row.accept.get(server, '')}`"
            if outcome is None:
                cells = "| | not run | | "
            elif not outcome.ok:
                cells = "| | **failed** | | "
            else:
                p50, p95 = outcome.percentile(50), outcome.percentile(95)
                n = len(outcome.samples_ms)
                cells = f"| {outcome.results:,.0f} | {n} | {_ms(p50)} | {_ms(p95)} "
            ratios, target = "| |", ""
            theirs = row.outcomes.get("orthanc")
            if server == "pacsflow" and both and outcome and outcome.ok and theirs and theirs.ok:
                ratios = (
                    f"| {_ratio(outcome.percentile(50), theirs.percentile(50))} "
                    f"| {_ratio(outcome.percentile(95), theirs.percentile(95))} |"
                )
            if server == "pacsflow" and row.target_ms is not None:
                met = outcome is not None and outcome.ok and outcome.percentile(50) < row.target_ms
                target = f"p50 < {row.target_ms:g} ms: {'met' if met else '**not met**'}"
            lines.append(f"| {name} | {server} | {accept} {cells}{ratios} {target} |")
    return lines


def _throughput_table(results: Sequence[Throughput]) -> list[str]:
    lines = [
        "| retrieval | server | parts | bytes read | repetitions | median s | MB/s (median) "
        "| MB/s best | MB/s worst | server CPU s (median) | pacsflow/orthanc MB/s |",
        "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    rates = {r.server: r.rate(r.median) for r in results if r.ok}
    for r in results:
        if not r.ok:
            lines.append(f"| {r.name} | {r.server} | | | | **failed** | | | | | |")
            continue
        ratio = ""
        if r.server == "pacsflow" and "orthanc" in rates:
            met = rates["pacsflow"] >= rates["orthanc"]
            ratio = f"{_ratio(rates['pacsflow'], rates['orthanc'])} (goal >= 1: "
            ratio += "met)" if met else "**not met**)"
        lines.append(
            f"| {r.name} | {r.server} | {r.parts:,} | {_mb(r.size)} | {len(r.seconds)} "
            f"| {r.median:.2f} | {r.rate(r.median):,.0f} | {r.rate(min(r.seconds)):,.0f} "
            f"| {r.rate(max(r.seconds)):,.0f} | {statistics.median(r.cpu):.2f} | {ratio} |"
        )
    return lines


def _memory_table(results: Sequence[MemoryPeak]) -> list[str]:
    lines = [
        "| server | parts | bytes read | seconds | MB/s | RSS before | peak RSS | peak - before "
        "| samples |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for m in results:
        c = m.counted
        if m.error or c is None or c.status != 200:
            reason = m.error or (f"HTTP {c.status}" if c else "not run")
            lines.append(f"| {m.server} | | | | | {_mib(m.before)} | **failed**: {reason} | | |")
            continue
        lines.append(
            f"| {m.server} | {c.parts} | {_mb(c.size)} | {c.seconds:.1f} "
            f"| {c.size / c.seconds / 1e6:,.0f} | {_mib(m.before)} | {_mib(m.peak)} "
            f"| {_mib(m.peak - m.before)} | {m.samples} |"
        )
    return lines


def render(
    title: str,
    setup: Sequence[tuple[str, str]],
    servers: Sequence[str],
    loads: Sequence[LoadRow],
    latencies: Sequence[LatencyRow],
    series: Sequence[Throughput],
    memory: Sequence[MemoryPeak],
    failures: Sequence[str],
    notes: Sequence[str],
) -> str:
    """The whole report as Markdown."""
    lines = [f"# {title}", "", *[f"- {key}: {value}" for key, value in setup], ""]
    lines += ["## Data", "", *_data_table(loads, servers), ""]
    lines += ["## Latency (sequential requests, one keep-alive connection per server)", ""]
    lines += [*_latency_table(latencies, servers), ""]
    lines += ["## Whole-series retrieval (read fully by the client)", ""]
    lines += [*_throughput_table(series), ""]
    lines += ["## Server memory while retrieving the large study", ""]
    lines += [*_memory_table(memory), ""]
    if failures:
        lines += ["## Failures", "", *[f"- {f}" for f in failures], ""]
    if notes:
        lines += ["## Notes", "", *[f"- {n}" for n in notes], ""]
    return "\n".join(lines)
