"""A private network namespace for benchmark runs that include Orthanc.

Orthanc 1.10 cannot listen on loopback only (it binds every interface and refuses remote
clients); a run that starts it re-executes itself under ``unshare --net`` when it can (root,
``unshare`` and ``ip``), so the servers and the client see nothing but a private loopback.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Final

__all__ = ["MARK", "inside", "rerun_inside", "wanted"]

MARK: Final = "PACSFLOW_BENCH_NETNS"
REPO: Final = Path(__file__).resolve().parent.parent


def inside() -> bool:
    """Whether this process already runs in the benchmark's private namespace."""
    return bool(os.environ.get(MARK))


def wanted(mode: str, with_orthanc: bool) -> bool:
    """Whether to re-execute in a namespace: ``mode`` is auto, always or never."""
    if inside() or mode == "never":
        return False
    possible = os.geteuid() == 0 and bool(shutil.which("unshare")) and bool(shutil.which("ip"))
    if mode == "always" and not possible:
        raise SystemExit("--netns always needs root, unshare and ip")
    return possible and (mode == "always" or with_orthanc)


def rerun_inside(module: str, argv: Sequence[str]) -> int:
    """``python -m module argv`` in a new network namespace with loopback up; its status."""
    command = ["unshare", "--net", "--", "sh", "-c", 'ip link set lo up && exec "$@"', "sh"]
    command += [sys.executable, "-m", module, *argv]
    return subprocess.call(command, env={**os.environ, MARK: "1"}, cwd=REPO)
