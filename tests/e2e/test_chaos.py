"""Chaos trials in CI (issue 23 item 2, short): a few SIGKILLs of pipeline components and of
``pacsflow serve`` while STOW-RS clients ingest; nothing acknowledged is lost or duplicated,
nothing refused is kept, no staged object is left (``bench/chaos.py``, whose full run is
``python -m bench.chaos``)."""

from __future__ import annotations

from pathlib import Path

from bench.chaos import run_trials, table


def test_sigkill_of_components_mid_ingest_loses_nothing(tmp_path: Path) -> None:
    lines: list[str] = []
    components = ("broker", "worker", "stow", "index", "serve")  # worker: a 10 s session
    rows = run_trials(tmp_path, components, 1, 2, 7, lines.append)
    report = table(rows) + "\n" + "\n".join(lines)
    assert all(r.trials == 1 for r in rows), report
    assert sum(r.acknowledged for r in rows) > 0, report
    assert all(r.clean for r in rows), report
