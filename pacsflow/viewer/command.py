"""``pacsflow viewer install``: fetch, verify and install the pinned OHIF Viewer (console.md)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from pacsflow.config import Settings
from pacsflow.viewer.package import PIN, REGISTRY, InstallError, install

__all__ = ["add_viewer_parser", "run_viewer"]


def add_viewer_parser(commands: Any) -> None:
    """Add ``viewer`` (``viewer install``) to the subcommands of ``pacsflow``."""
    viewer: argparse.ArgumentParser = commands.add_parser(
        "viewer", help="the OHIF Viewer served at /viewer (install it once)"
    )
    actions = viewer.add_subparsers(dest="action", required=True)
    command = actions.add_parser(
        "install",
        help=f"fetch {PIN.package}@{PIN.version} from the npm registry, verify and install it",
        description=(
            f"Fetch the prebuilt {PIN.package}@{PIN.version} from the npm registry, check it"
            f" against the pinned integrity ({PIN.integrity[:19]}...) and install it where"
            " the server looks for it (PACSFLOW_VIEWER_DIR, default DATA_DIR/viewer)."
        ),
    )
    command.add_argument(
        "--dir", type=Path, help="install here (PACSFLOW_VIEWER_DIR, default DATA_DIR/viewer)"
    )
    command.add_argument(
        "--data-dir",
        type=Path,
        help="data directory of the archive (PACSFLOW_DATA_DIR, default ./pacsflow-data)",
    )
    command.add_argument(
        "--registry", default=REGISTRY, help=f"npm registry to fetch from (default {REGISTRY})"
    )
    command.add_argument(
        "--tarball",
        type=Path,
        help=f"install from this file (npm pack {PIN.package}@{PIN.version}) instead of"
        " fetching it; it is checked against the same integrity",
    )


def run_viewer(settings: Settings, args: argparse.Namespace) -> int:
    """Install the viewer; the exit status (1 with one line on stderr when it cannot)."""
    root = args.dir or settings.resolved_viewer_dir()
    try:
        viewer = install(
            root.resolve(),
            registry=args.registry,
            tarball=args.tarball,
            say=lambda line: print(f"pacsflow viewer install: {line}", flush=True),
        )
    except (InstallError, ValueError, OSError) as exc:
        print(f"pacsflow viewer install: {exc}", file=sys.stderr)
        return 1
    if args.dir is not None:
        print(f"pacsflow viewer install: serve it with PACSFLOW_VIEWER_DIR={viewer.root}")
    return 0
