"""Chaos trials (issue 23 item 2): ingest continuously with several STOW-RS clients while, at
random moments, one component is SIGKILLed and restarted; after each trial, prove that nothing
acknowledged was lost or duplicated and nothing refused was kept (``bench/chaos_verify.py``).

Components: ``broker`` (Tansu keeping its log in SeaweedFS), ``store`` (SeaweedFS S3),
``index`` (osmem, in memory: killed, it comes back empty and ``pacsflow reindex`` rebuilds it),
``worker`` (``pacsflow worker``, Faust), the ``stow``, ``qido`` and ``wado`` roles of the
pipeline deployment (``bench/chaos_deploy.py``), and ``serve`` (``pacsflow serve``, embedded,
restarted on the same data directory). A trial: ingest for 1-5 s, SIGKILL, down for 0.5-4 s,
restart, wait for recovery (the first STOW sent after the restart and answered 200, or for
``qido``/``index`` the first QIDO-RS, for ``wado`` the first WADO-RS, sent after it that
succeeds), ingest 1-3 s more,
stop the clients and verify. ``python -m bench.chaos --trials 20`` is the full run;
``tests/e2e/test_chaos.py`` runs a few trials in CI.
"""

from __future__ import annotations

import argparse
import asyncio
import random
import statistics
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Final, Protocol

from bench.chaos_deploy import EMBEDDED, PIPELINE, Embedded, Pipeline
from bench.chaos_load import Generator, Ledger, Load
from bench.chaos_reindex import preload as grow
from bench.chaos_verify import Verdict, staged_keys, verify
from pacsflow.config import Settings

__all__ = ["Row", "main", "run_trials", "table"]

COMPONENTS: Final = (*PIPELINE, *EMBEDDED)
RECOVERY_KIND: Final = {"qido": "qido", "index": "qido", "wado": "wado"}  # else "stow"
RECOVERY_SECONDS: Final = 300.0


class Deployment(Protocol):
    def url(self, role: str) -> str: ...
    def settings(self) -> Settings: ...
    def start(self) -> None: ...
    def kill(self, component: str) -> None: ...
    def restart(self, component: str) -> None: ...
    def exited(self) -> list[str]: ...
    def stop(self) -> None: ...


@dataclass
class Row:
    """The trials of one component, summed."""

    component: str
    trials: int = 0
    faults: int = 0  # SIGKILLs
    acknowledged: int = 0
    accepted: int = 0
    refused: int = 0
    unknown: int = 0
    unknown_stored: int = 0
    dead_lettered: int = 0
    lost: int = 0
    duplicated: int = 0
    phantom: int = 0
    corrupt: int = 0
    staging_left: int = 0
    recovery: list[float] = field(default_factory=list)
    not_recovered: int = 0
    spread: int = 0  # other processes that ended with the fault

    def add(self, verdict: Verdict, recovery: float | None, new_staging: int) -> None:
        self.trials += 1
        self.faults += 1
        self.acknowledged += verdict.acknowledged
        self.accepted += verdict.accepted
        self.refused += verdict.refused
        self.unknown += verdict.unknown
        self.unknown_stored += verdict.unknown_stored
        self.dead_lettered += verdict.dead_lettered
        self.lost += len(verdict.lost)
        self.duplicated += len(verdict.duplicated)
        self.phantom += len(verdict.phantom)
        self.corrupt += len(verdict.corrupt)
        self.staging_left += new_staging
        self.spread += len(verdict.spread)
        if recovery is None:
            self.not_recovered += 1
        else:
            self.recovery.append(recovery)

    @property
    def clean(self) -> bool:
        bad = (self.lost, self.duplicated, self.phantom, self.corrupt, self.staging_left)
        return not any(bad) and not self.not_recovered and not self.spread


def _recovery(ledger: Ledger, kind: str, restarted: float) -> float | None:
    """Seconds from ``restarted`` to the first success of ``kind`` (bounded wait)."""
    deadline = restarted + RECOVERY_SECONDS
    while time.monotonic() < deadline:
        first = ledger.first_success(kind, restarted)
        if first is not None:
            return first - restarted
        time.sleep(0.2)
    return None


def _trial(
    number: int,
    component: str,
    deployment: Deployment,
    load: Load,
    rng: random.Random,
    clients: int,
    log: Callable[[str], None],
) -> tuple[Verdict, float | None]:
    """One trial of ``component``: load, SIGKILL, restart, recovery, load, verify."""
    load.start(number, clients)
    try:
        time.sleep(rng.uniform(1.0, 5.0))
        deployment.kill(component)
        time.sleep(rng.uniform(0.5, 4.0))
        restarted = time.monotonic()
        deployment.restart(component)
        recovery = _recovery(load.ledger, RECOVERY_KIND.get(component, "stow"), restarted)
        time.sleep(rng.uniform(1.0, 3.0))
    finally:
        load.stop()
    spread = deployment.exited()
    for other in spread:  # a process that ended with another's fault: a finding, restarted
        log(f"trial {number} {component}: {other} exited too; restarted")
        deployment.restart(other)
    instances = load.ledger.of_trial(number)
    try:
        verdict = verify(instances, load.qido, load.wado, deployment.settings(), log)
    except Exception as exc:  # a check the archive could not answer: a finding, not a crash
        verdict = Verdict(lost=[f"the checks failed: {exc!r}"[:300]])
    verdict.spread = spread
    shown = f"{recovery:.1f} s" if recovery is not None else "NOT RECOVERED"
    reindexed = getattr(deployment, "reindexed", None) if component == "index" else None
    if reindexed is not None:
        count, seconds = reindexed
        shown += f" (reindex of {count} instances: {seconds:.1f} s, {count / seconds:.0f}/s)"
    log(
        f"trial {number} {component}: {verdict.acknowledged} acknowledged, {verdict.accepted}"
        f" accepted, {verdict.refused} refused, {verdict.unknown} unanswered; recovery {shown}"
        + ("" if verdict.clean else f"; {verdict.problems()}")
    )
    return verdict, recovery


def run_trials(
    work: Path,
    components: Sequence[str],
    trials: int,
    clients: int = 3,
    seed: int = 23,
    log: Callable[[str], None] = print,
    preload: int = 0,
) -> list[Row]:
    """``trials`` trials of each of ``components`` (in random order within each deployment);
    ``preload`` instances are stored in the pipeline deployment before its first trial (an
    archive grown for the ``index`` trials' rebuilds, ``bench/chaos_reindex.py``)."""
    rng = random.Random(seed)
    generator = Generator(seed)
    rows = {c: Row(c) for c in components}
    number = 0
    for kind, names in ((Pipeline, PIPELINE), (Embedded, EMBEDDED)):
        chosen = [c for c in components if c in names] * trials
        if not chosen:
            continue
        rng.shuffle(chosen)
        deployment: Deployment = kind(work / kind.__name__.lower())
        started = time.monotonic()
        try:
            deployment.start()
            log(f"{kind.__name__.lower()} deployment started in {time.monotonic() - started:.0f} s")
            if preload and kind is Pipeline:
                started = time.monotonic()
                stored = asyncio.run(grow(deployment.settings(), preload, seed))
                log(f"pre-loaded {stored} instances in {time.monotonic() - started:.0f} s")
            load = Load(
                deployment.url("stow"),
                deployment.url("qido"),
                deployment.url("wado"),
                Ledger(),
                generator,
            )
            seen = set(asyncio.run(staged_keys(deployment.settings())))
            for component in chosen:
                number += 1
                verdict, recovery = _trial(number, component, deployment, load, rng, clients, log)
                new = set(verdict.staging_left) - seen
                seen |= new
                rows[component].add(verdict, recovery, len(new))
        finally:
            deployment.stop()
    return [rows[c] for c in components]


HEADER: Final = (
    "component",
    "trials",
    "faults",
    "acknowledged (200)",
    "accepted (202)",
    "refused",
    "unanswered (stored)",
    "dead-lettered",
    "lost",
    "duplicated",
    "refused yet stored",
    "staging left",
    "other exits",
    "recovery p50 / max (s)",
)


def table(rows: Sequence[Row]) -> str:
    """The rows as a Markdown table."""
    lines = ["| " + " | ".join(HEADER) + " |", "|" + "---|" * len(HEADER)]
    for r in rows:
        recovery = (
            f"{statistics.median(r.recovery):.1f} / {max(r.recovery):.1f}" if r.recovery else "-"
        )
        if r.not_recovered:
            recovery += f" ({r.not_recovered} not recovered)"
        cells = [r.component, r.trials, r.faults, r.acknowledged, r.accepted, r.refused]
        cells += [f"{r.unknown} ({r.unknown_stored})", r.dead_lettered, r.lost, r.duplicated]
        cells += [r.phantom, r.staging_left, r.spread, recovery]
        lines.append("| " + " | ".join(str(c) for c in cells) + " |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    """``python -m bench.chaos [--trials 20] [--components broker,store,...] [--clients 3]``;
    exit status 1 when a trial found something lost, duplicated or left behind."""
    parser = argparse.ArgumentParser(prog="python -m bench.chaos", description=__doc__)
    parser.add_argument("--trials", type=int, default=20, help="trials per component")
    parser.add_argument("--components", default=",".join(COMPONENTS))
    parser.add_argument("--clients", type=int, default=3, help="STOW-RS client threads")
    parser.add_argument("--seed", type=int, default=23)
    parser.add_argument("--work", type=Path, help="keep the data and logs here")
    parser.add_argument(
        "--preload",
        type=int,
        default=0,
        metavar="N",
        help="store N instances in the pipeline deployment before its first trial",
    )
    args = parser.parse_args(argv)
    components = [c for c in args.components.split(",") if c]
    unknown = set(components) - set(COMPONENTS)
    if unknown:
        parser.error(f"unknown components {sorted(unknown)}; choose from {COMPONENTS}")
    work = args.work or Path(tempfile.mkdtemp(prefix="pacsflow-chaos-"))
    started = time.monotonic()

    def log(line: str) -> None:
        print(f"[{time.monotonic() - started:7.1f}] {line}", file=sys.stderr, flush=True)

    rows = run_trials(work, components, args.trials, args.clients, args.seed, log, args.preload)
    print(table(rows))
    print(f"\n{sum(r.trials for r in rows)} trials in {time.monotonic() - started:.0f} s; {work}")
    return 0 if all(r.clean for r in rows) else 1


if __name__ == "__main__":
    raise SystemExit(main())
