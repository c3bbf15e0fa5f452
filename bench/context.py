"""What every scenario of ``python -m bench`` gets: the profile, the targets, where to work,
and where its results go."""

from __future__ import annotations

import shutil
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from bench.collect import Collector, PeakMemory
from bench.targets import Target, start_target
from bench.wado_data import Scale

__all__ = ["Context", "Profile", "record_peaks"]

Log = Callable[[str], None]


@dataclass(frozen=True)
class Profile:
    """How much of everything a run does."""

    name: str
    runs: int
    warmup: int
    repetitions: int
    budget: float  # seconds of timed requests per measurement, at most
    stow_studies: int  # studies STOWed per (run, concurrency, target)
    concurrency: tuple[int, ...]
    searchable: int  # single-instance STOWs timed to searchable, per run
    qido_scales: tuple[int, ...]  # instances in the index
    qido_variants: int
    wado_scale: Scale
    frame_variants: int
    series_warmup: int
    series_repetitions: int
    rendered_variants: int
    max_scale: Mapping[str, int]  # the largest QIDO scale each target is loaded at


@dataclass
class Context:
    """A run's settings and shared state."""

    profile: Profile
    kinds: Sequence[str]
    work: Path
    qido_work: Path
    source: Path
    version: str
    seed: int
    reuse: bool
    log: Log
    memory: Collector = field(default_factory=lambda: Collector("memory"))

    def fresh(self, kind: str, scenario: str) -> Target:
        """A target started on an empty data directory of its own."""
        work = self.work / scenario / kind
        shutil.rmtree(work, ignore_errors=True)
        self.log(f"{kind}: starting for {scenario}")
        return start_target(kind, work, self.source)


def record_peaks(ctx: Context, scenario: str, peaks: Mapping[str, float]) -> None:
    """One run's peak memory of each target during ``scenario``."""
    for kind, peak in peaks.items():
        ctx.memory.values(
            kind,
            "peak RSS of the server processes",
            f"during {scenario}",
            {"peak_mib": peak},
            unit="MiB",
            better="lower",
            primary="peak_mib",
        )


def sampler(targets: Mapping[str, Target]) -> PeakMemory:
    """A memory sampler over the targets' server processes."""
    return PeakMemory({kind: target.pids for kind, target in targets.items()})
