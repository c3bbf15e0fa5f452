"""``pacsflow reindex``: rebuild the index from the object store (docs/operations.md)."""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path
from typing import Any

from pacsflow.config import Settings
from pacsflow.container import build_container
from pacsflow.reindex.rebuild import Progress, reindex

__all__ = ["add_reindex_parser", "run_reindex"]


def add_reindex_parser(commands: Any) -> None:
    """Add ``reindex`` to the subcommands of ``pacsflow``."""
    command: argparse.ArgumentParser = commands.add_parser(
        "reindex",
        help="rebuild the index from the stored objects (resumable)",
        description="Parse every stored instance and upsert its index document; a run that"
        " stops resumes after the last batch done (the checkpoint file).",
    )
    command.add_argument(
        "--data-dir",
        type=Path,
        help="data directory of an embedded archive (PACSFLOW_DATA_DIR, default ./pacsflow-data)",
    )
    command.add_argument(
        "--checkpoint",
        type=Path,
        help="the resume file (default: reindex.checkpoint in the data directory)",
    )


async def run_reindex(settings: Settings, args: argparse.Namespace) -> int:
    """Rebuild the index the configuration names from its object store; the exit status."""
    checkpoint = args.checkpoint or settings.data_dir / "reindex.checkpoint"
    try:  # a pipeline's data directory may be new (issue 23: a traceback at the first batch)
        checkpoint.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        print(f"pacsflow reindex: cannot keep the checkpoint {checkpoint}: {exc}", file=sys.stderr)
        return 1
    if checkpoint.exists():
        print(f"pacsflow reindex: resuming after {checkpoint.read_text().strip()!r}")
    container = build_container(settings)
    objects, index = container.objects, container.index
    started = time.monotonic()

    def report(progress: Progress) -> None:
        rate = progress.indexed / max(time.monotonic() - started, 1e-9)
        print(f"reindexed {progress.indexed} instances ({rate:.0f}/s), up to {progress.last_key}")

    await objects.start()
    await index.start()
    try:
        done = await reindex(objects, index, checkpoint=checkpoint, report=report)
    finally:
        await index.close()
        await objects.close()
    print(f"reindex complete: {done.indexed} instances, {done.refused} objects not instances")
    if done.refused:
        print("pacsflow reindex: some objects could not be parsed (see above)", file=sys.stderr)
    return 0
