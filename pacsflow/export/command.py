"""``pacsflow export OUT``: the command line of the metadata export (docs/operations.md).

pyarrow loads only when the command runs, not with every ``pacsflow`` command.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pacsflow.config import Settings
from pacsflow.container import build_container
from pacsflow.query.attributes import resolve
from pacsflow.query.model import Level

if TYPE_CHECKING:
    from pacsflow.export.metadata import ExportOptions

__all__ = ["add_export_parser", "run_export"]

_LEVELS = {"study": Level.STUDY, "series": Level.SERIES, "instance": Level.INSTANCE}


def add_export_parser(commands: Any) -> None:
    """Add ``export`` to the subcommands of ``pacsflow``."""
    command: argparse.ArgumentParser = commands.add_parser(
        "export",
        help="export study, series and instance metadata to Parquet (reads the index)",
        description="Write one Parquet table per level under OUT, partitioned by StudyDate.",
    )
    command.add_argument("out", type=Path, help="output directory")
    command.add_argument(
        "--levels",
        default="study,series,instance",
        help="comma list of study, series, instance (default: all three)",
    )
    command.add_argument(
        "--attributes",
        help="comma list of attribute keywords or tags, each in the table of its level"
        " (default: every attribute the index holds)",
    )
    command.add_argument(
        "--partition-by",
        choices=("year", "month", "day"),
        default="month",
        help="partition granularity of StudyDate (default: month)",
    )
    command.add_argument(
        "--data-dir",
        type=Path,
        help="data directory of an embedded archive (PACSFLOW_DATA_DIR, default ./pacsflow-data)",
    )


def _options(args: argparse.Namespace) -> ExportOptions:
    """The options of the command line; ``ValueError`` names a wrong one."""
    from pacsflow.export.columns import column_for
    from pacsflow.export.metadata import ExportOptions

    names = [n.strip() for n in args.levels.split(",") if n.strip()]
    unknown = [n for n in names if n not in _LEVELS]
    if unknown or not names:
        raise ValueError(f"--levels: {', '.join(unknown) or '(none)'}: use study, series, instance")
    tags: frozenset[str] | None = None
    if args.attributes is not None:
        chosen = set()
        for name in (n.strip() for n in args.attributes.split(",")):
            attribute = resolve(name) if name else None
            if attribute is None or column_for(attribute.tag) is None:
                raise ValueError(f"--attributes: {name!r} is not a public, non-binary attribute")
            chosen.add(attribute.tag)
        tags = frozenset(chosen)
    levels = tuple(dict.fromkeys(_LEVELS[n] for n in names))
    return ExportOptions(levels=levels, tags=tags, granularity=args.partition_by)


async def run_export(settings: Settings, args: argparse.Namespace) -> int:
    """Export from the index the configuration names; the exit status."""
    from pacsflow.export.metadata import export_metadata

    try:
        options = _options(args)
    except ValueError as exc:
        print(f"pacsflow export: {exc}", file=sys.stderr)
        return 2
    if settings.index.url is None and not (settings.data_dir / "index.sqlite").exists():
        print(f"pacsflow export: no archive index in {settings.data_dir}", file=sys.stderr)
        return 2
    index = build_container(settings).index
    await index.start()
    try:
        result = await export_metadata(index, settings.site, args.out, options)
    finally:
        await index.close()
    for name, rows in result.rows.items():
        columns = len(result.columns[name])
        print(f"{name}: {rows} rows, {columns} columns -> {args.out / name}")
    print(f"exported in {result.seconds:.1f} s")
    return 0
