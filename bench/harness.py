"""What the benchmark commands share: progress lines, machine facts, the servers option."""

from __future__ import annotations

import argparse
import os
import platform
import subprocess
import sys
from collections.abc import Mapping, Sequence
from datetime import datetime
from pathlib import Path

__all__ = ["add_netns_option", "cpu_model", "load_average", "log", "output", "servers_from"]


def log(message: str) -> None:
    """A progress line on stderr, with the time."""
    print(f"[{datetime.now():%H:%M:%S}] {message}", file=sys.stderr, flush=True)


def load_average() -> str:
    """The 1/5/15-minute load average, as the reports show it."""
    return " / ".join(f"{v:.2f}" for v in os.getloadavg())


def cpu_model() -> str:
    """The CPU's model name."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def output(*command: str, cwd: Path | None = None, env: Mapping[str, str] | None = None) -> str:
    """What ``command`` prints ('' when it cannot run)."""
    try:
        done = subprocess.run(
            command, capture_output=True, text=True, check=False, cwd=cwd, env=env
        )
    except OSError:
        return ""
    return done.stdout.strip()


def servers_from(option: str, allowed: Sequence[str], name: str = "--servers") -> list[str]:
    """The comma-separated servers of an option, each one of ``allowed`` (else exit)."""
    servers = [s.strip() for s in option.split(",") if s.strip()]
    if not servers or set(servers) - set(allowed):
        raise SystemExit(f"{name} takes {','.join(allowed)}; got {option!r}")
    return servers


def add_netns_option(parser: argparse.ArgumentParser) -> None:
    """``--netns auto|always|never`` (bench/netns.py)."""
    parser.add_argument(
        "--netns",
        choices=("auto", "always", "never"),
        default="auto",
        help="private network namespace (loopback only) when Orthanc runs; needs root",
    )
