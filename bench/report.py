"""The Markdown report of a run: setup, loads and on-disk sizes, latency per query and server."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from bench.measure import Outcome
from bench.queries import Query

__all__ = ["LoadRow", "render"]


@dataclass(frozen=True, slots=True)
class LoadRow:
    """How a server got its data, and what its index takes on disk."""

    server: str
    method: str
    instances: int
    studies: int
    seconds: float
    index_bytes: int
    storage_bytes: int | None
    note: str = ""

    @property
    def rate(self) -> float:
        """Instances per second."""
        return self.instances / self.seconds if self.seconds else 0.0


def _mib(size: int | None) -> str:
    return "n/a" if size is None else f"{size / 1024**2:,.1f} MiB"


def _ms(value: float) -> str:
    return f"{value:.2f}" if value < 100 else f"{value:.0f}"


def _ratio(ours: Outcome | None, theirs: Outcome | None, p: int) -> str:
    if ours is None or theirs is None or not ours.ok or not theirs.ok:
        return ""
    return f"{ours.percentile(p) / theirs.percentile(p):.2f}"


def _load_table(loads: Sequence[LoadRow]) -> list[str]:
    lines = [
        "| server | load method | studies | instances | load time | instances/s "
        "| index on disk | objects on disk | note |",
        "|---|---|---:|---:|---:|---:|---:|---:|---|",
    ]
    for row in loads:
        lines.append(
            f"| {row.server} | {row.method} | {row.studies:,} | {row.instances:,} "
            f"| {row.seconds:,.1f} s | {row.rate:,.0f} | {_mib(row.index_bytes)} "
            f"| {_mib(row.storage_bytes)} | {row.note} |"
        )
    return lines


def _query_table(
    queries: Sequence[Query], servers: Sequence[str], outcomes: dict[tuple[str, str], Outcome]
) -> list[str]:
    both = {"pacsflow", "orthanc"} <= set(servers)
    lines = [
        "| query | example | server | results | n | p50 ms | p95 ms |"
        + (" pacsflow/orthanc p50 | p95 |" if both else ""),
        "|---|---|---|---:|---:|---:|---:|" + ("---:|---:|" if both else ""),
    ]
    for query in queries:
        ours = outcomes.get((query.name, "pacsflow"))
        theirs = outcomes.get((query.name, "orthanc"))
        for i, server in enumerate(servers):
            outcome = outcomes.get((query.name, server))
            name, example = (query.name, f"`{query.example}`") if i == 0 else ("", "")
            ratios = ("", "")
            if server == "pacsflow":
                ratios = (_ratio(ours, theirs, 50), _ratio(ours, theirs, 95))
            if outcome is None:
                cells = "| | | not run | |"
            elif not outcome.ok:
                cells = "| | | **failed** | |"
            else:
                cells = (
                    f"| {outcome.results:.1f} | {len(outcome.samples_ms)} "
                    f"| {_ms(outcome.percentile(50))} | {_ms(outcome.percentile(95))} |"
                )
            row = f"| {name} | {example} | {server} {cells}"
            lines.append(f"{row} {ratios[0]} | {ratios[1]} |" if both else row)
    return lines


def render(
    title: str,
    setup: Sequence[tuple[str, str]],
    loads: Sequence[LoadRow],
    queries: Sequence[Query],
    servers: Sequence[str],
    outcomes: dict[tuple[str, str], Outcome],
    notes: Sequence[str],
) -> str:
    """The whole report as Markdown."""
    lines = [f"# {title}", ""]
    lines += [f"- {key}: {value}" for key, value in setup]
    lines += ["", "## Data and index size", "", *_load_table(loads), ""]
    lines += ["## Latency (sequential requests, one keep-alive connection per server)", ""]
    lines += [*_query_table(queries, servers, outcomes), ""]
    failures = [o for o in outcomes.values() if not o.ok]
    if failures:
        lines += ["## Failures (not timed)", ""]
        lines += [f"- {o.server}, {o.query}: {o.error or 'no samples'}" for o in failures]
        lines.append("")
    if notes:
        lines += ["## Notes", "", *[f"- {note}" for note in notes], ""]
    return "\n".join(lines)
