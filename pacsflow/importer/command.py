"""``pacsflow import PATH…``: the command line of the bulk import (docs/operations.md)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from pacsflow.importer import DEFAULT_URL

__all__ = ["add_import_parser", "run_import"]


def _positive(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, not {value}")
    return value


def add_import_parser(commands: Any) -> None:
    """Add ``import`` to the subcommands of ``pacsflow``."""
    command: argparse.ArgumentParser = commands.add_parser(
        "import",
        help="send folders, zip/tar archives, DICOMDIR media or S3 prefixes to an archive",
        description="Send DICOM files to a DICOMweb archive with STOW-RS, skipping what it"
        " already holds. PATH: a file, a folder (recursive), a .zip or .tar[.gz|.bz2|.xz]"
        " archive, a DICOMDIR, or s3://bucket/prefix.",
    )
    command.add_argument("paths", nargs="+", metavar="PATH")
    command.add_argument(
        "--url", default=DEFAULT_URL, help=f"DICOMweb root (default {DEFAULT_URL})"
    )
    command.add_argument("--token", help="bearer token sent as 'Authorization: Bearer TOKEN'")
    command.add_argument(
        "--parallel", type=_positive, default=4, help="requests at once (default 4)"
    )
    command.add_argument(
        "--batch-files", type=_positive, default=100, help="files per request at most (default 100)"
    )
    command.add_argument(
        "--batch-mb", type=_positive, default=64, help="megabytes per request at most (default 64)"
    )
    command.add_argument(
        "--force",
        action="store_true",
        help="send every file, without asking the archive what it already holds",
    )
    command.add_argument(
        "--s3-endpoint",
        help="S3 server URL for s3:// paths (default $AWS_ENDPOINT_URL, else AWS);"
        " credentials from AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY",
    )
    command.add_argument(
        "--spool-dir", type=Path, help="where tar archives are unpacked (default $TMPDIR)"
    )
    command.add_argument("--report", type=Path, help="write one JSON line per file to REPORT")
    command.add_argument(
        "--no-progress", action="store_true", help="no progress bar, even on a terminal"
    )


def run_import(args: argparse.Namespace) -> int:
    """Run the import the arguments describe; the exit status."""
    from pacsflow.importer.run import ImportOptions, import_files
    from pacsflow.importer.s3 import S3Options

    options = ImportOptions(
        url=args.url,
        token=args.token,
        parallel=args.parallel,
        batch_files=args.batch_files,
        batch_bytes=args.batch_mb * 1024 * 1024,
        resume=not args.force,
        spool_dir=args.spool_dir,
        s3=S3Options.from_environment(args.s3_endpoint),
        progress=sys.stdout.isatty() and not args.no_progress,
        report=args.report,
    )
    return import_files(args.paths, options, sys.stdout)
