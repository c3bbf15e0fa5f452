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
    from pacsflow.export.metadata import ExportOptions, ExportResult
    from pacsflow.ports.index import Index

__all__ = ["add_export_parser", "run_export"]

_LEVELS = {"study": Level.STUDY, "series": Level.SERIES, "instance": Level.INSTANCE}
_ALL_LEVELS = "study,series,instance"


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
        default=_ALL_LEVELS,
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
        "--since",
        metavar="SEQUENCE",
        help="update the export in OUT with the changes the change feed lists after SEQUENCE"
        " (a number, or 'last': the sequence OUT's previous export recorded); only the"
        " partitions those changes fall in are rewritten",
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


def _since(text: str | None) -> int | None:
    """``--since``: a sequence (0 or more), ``last`` (None: the manifest's), or not given."""
    if text is None or text == "last":
        return None
    if not text.isdigit():
        raise ValueError(f"--since: a change-feed sequence number or 'last', not {text!r}")
    return int(text)


async def _incremental(index: Index, site: str, out: Path, since: int | None) -> ExportResult:
    """Apply the change feed after ``since`` to the export in ``out``, and say what it did."""
    from pacsflow.export.incremental import export_changes

    result = await export_changes(index, site, out, since)
    print(
        f"change feed {result.since + 1}..{result.sequence}: {result.changes} changes of"
        f" {result.studies} studies, {result.partitions} partitions rewritten"
        if result.changes
        else f"no changes after sequence {result.since}"
    )
    return result


async def run_export(settings: Settings, args: argparse.Namespace) -> int:
    """Export from the index the configuration names; the exit status."""
    from pacsflow.export.incremental import NotIncremental
    from pacsflow.export.metadata import export_metadata

    try:
        options = _options(args)
        since = _since(args.since)
    except ValueError as exc:
        print(f"pacsflow export: {exc}", file=sys.stderr)
        return 2
    if args.since is not None and (args.levels != _ALL_LEVELS or args.attributes is not None):
        print(
            "pacsflow export: --since updates the tables and columns of the export in OUT:"
            " give no --levels or --attributes with it",
            file=sys.stderr,
        )
        return 2
    if settings.index.url is None and not (settings.data_dir / "index.sqlite").exists():
        print(f"pacsflow export: no archive index in {settings.data_dir}", file=sys.stderr)
        return 2
    index = build_container(settings).index
    await index.start()
    try:
        if args.since is None:
            result = await export_metadata(index, settings.site, args.out, options)
        else:
            result = await _incremental(index, settings.site, args.out, since)
    except NotIncremental as exc:
        print(f"pacsflow export: {exc}", file=sys.stderr)
        return 2
    finally:
        await index.close()
    for name, rows in result.rows.items():
        columns = len(result.columns[name])
        print(f"{name}: {rows} rows, {columns} columns -> {args.out / name}")
    print(f"exported in {result.seconds:.1f} s")
    return 0
