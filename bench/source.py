"""The pacsflow source a benchmark run serves: a snapshot of a commit, and how to name it.

By default ``python -m bench`` serves ``git archive HEAD`` of the repository, unpacked once per
commit under the work directory, so edits to the work tree during a run change nothing
(uncommitted changes are not measured: commit them, or pass ``--source DIR``).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Final

from bench.harness import output

__all__ = ["describe_source", "snapshot"]

COMMIT_FILE: Final = "SNAPSHOT_COMMIT"


def snapshot(repo: Path, work: Path, log: Callable[[str], None]) -> Path:
    """``git archive HEAD`` of ``repo`` in ``work/src-<commit>`` (made once per commit)."""
    commit = output("git", "-C", str(repo), "rev-parse", "HEAD")
    if not commit:
        raise SystemExit(f"{repo} is not a git checkout: pass --source")
    target = work / f"src-{commit[:7]}"
    if not (target / COMMIT_FILE).is_file():
        shutil.rmtree(target, ignore_errors=True)
        target.mkdir(parents=True)
        archive = subprocess.Popen(
            ["git", "-C", str(repo), "archive", "HEAD"], stdout=subprocess.PIPE
        )
        subprocess.run(["tar", "-x", "-C", str(target)], stdin=archive.stdout, check=True)
        if archive.wait() != 0:
            raise SystemExit("git archive failed")
        (target / COMMIT_FILE).write_text(commit + "\n")
        log(f"source: snapshot of {commit[:10]} in {target}")
    return target


def describe_source(source: Path) -> str:
    """Where the served pacsflow comes from, and what the server process imports."""
    marker = source / COMMIT_FILE
    commit = (
        marker.read_text().strip()[:10]
        if marker.is_file()
        else output("git", "-C", str(source), "rev-parse", "--short", "HEAD") or "unknown"
    )
    imported = output(
        sys.executable,
        "-c",
        "import pacsflow; print(pacsflow.__version__, pacsflow.__file__)",
        cwd=source,
        env={**os.environ, "PYTHONPATH": str(source)},
    )
    return f"{source} (commit {commit}); the server imports pacsflow {imported}"
