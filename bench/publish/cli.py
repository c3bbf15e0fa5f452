"""``python -m bench.publish RESULTS.json [--docs-dir DIR]``: publish a results file."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

from bench.publish.document import publish
from bench.publish.findings import findings_of
from bench.results import load

__all__ = ["main"]


def _display(path: Path) -> str:
    """``path`` relative to the working directory when inside it, else as given."""
    try:
        return path.resolve().relative_to(Path.cwd().resolve()).as_posix()
    except ValueError:
        return str(path)


def main(argv: Sequence[str] | None = None) -> int:
    """Publish the results file named on the command line; the exit status."""
    parser = argparse.ArgumentParser(
        prog="python -m bench.publish",
        description="Turn a benchmark results JSON into docs/performance.md and its plots.",
    )
    parser.add_argument("results", type=Path, help="results JSON written by python -m bench")
    parser.add_argument(
        "--docs-dir", type=Path, default=Path("docs"), help="where performance.md goes (docs)"
    )
    args = parser.parse_args(argv)
    try:
        report = load(args.results)
    except (OSError, ValueError, TypeError, KeyError) as exc:
        print(f"bench.publish: cannot read {args.results}: {exc}", file=sys.stderr)
        return 2
    out = publish(report, args.docs_dir, _display(args.results), findings_of(args.results))
    print(out)
    return 0
