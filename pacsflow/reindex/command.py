"""``pacsflow reindex``: rebuild the index from the object store (docs/operations.md)."""

from __future__ import annotations

import argparse
import asyncio
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from pacsflow.config import Settings
from pacsflow.container import build_container
from pacsflow.reindex.rebuild import BATCH, CONCURRENCY, Progress, reindex

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
    command.add_argument(
        "--concurrency",
        type=int,
        default=CONCURRENCY,
        help=f"objects read and parsed at once (default {CONCURRENCY})",
    )
    command.add_argument(
        "--batch-size",
        type=int,
        default=BATCH,
        help=f"documents per index write, and a checkpoint after each (default {BATCH})",
    )


async def run_reindex(settings: Settings, args: argparse.Namespace) -> int:
    """Rebuild the index the configuration names from its object store; the exit status."""
    checkpoint = args.checkpoint or settings.data_dir / "reindex.checkpoint"
    try:  # a pipeline's data directory may be new (issue 23: a traceback at the first batch)
        checkpoint.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        print(f"pacsflow reindex: cannot keep the checkpoint {checkpoint}: {exc}", file=sys.stderr)
        return 1
    if args.concurrency < 1 or args.batch_size < 1:
        print("pacsflow reindex: --concurrency and --batch-size: at least 1", file=sys.stderr)
        return 2
    if checkpoint.exists():
        print(f"pacsflow reindex: resuming after {checkpoint.read_text().strip()!r}")
    container = build_container(settings)
    objects, index = container.objects, container.index
    started = time.monotonic()

    def report(progress: Progress) -> None:
        seconds = time.monotonic() - started
        rate = progress.indexed / max(seconds, 1e-9)
        print(
            f"reindexed {progress.indexed} instances in {seconds:.1f} s ({rate:.0f}/s),"
            f" up to {progress.last_key}",
            flush=True,
        )

    # the reads and parses run in the loop's default threads: as many as objects in flight
    loop = asyncio.get_running_loop()
    loop.set_default_executor(ThreadPoolExecutor(args.concurrency + 4, "reindex"))
    await objects.start()
    await index.start()
    try:
        done = await reindex(
            objects,
            index,
            checkpoint=checkpoint,
            report=report,
            concurrency=args.concurrency,
            batch_size=args.batch_size,
        )
    finally:
        await index.close()
        await objects.close()
    seconds = time.monotonic() - started
    print(
        f"reindex complete: {done.indexed} instances in {seconds:.1f} s"
        f" ({done.indexed / max(seconds, 1e-9):.0f}/s), {done.refused} objects not instances"
    )
    for key, reason in done.refusals:
        print(f"pacsflow reindex: not an instance: {key}: {reason}", file=sys.stderr)
    if done.refused > len(done.refusals):
        print(f"pacsflow reindex: and {done.refused - len(done.refusals)} more", file=sys.stderr)
    return 0
