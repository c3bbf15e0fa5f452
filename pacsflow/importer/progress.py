"""The import's progress bar (rich): files, megabytes, instances per second, time left.

Shown only when standard output is a terminal; otherwise the importer prints nothing until
its summary, so logs and pipes stay clean.
"""

from __future__ import annotations

import time
from typing import IO

from rich.console import Console
from rich.progress import (
    BarColumn,
    DownloadColumn,
    Progress,
    SpinnerColumn,
    TaskID,
    TextColumn,
    TimeRemainingColumn,
)

__all__ = ["ImportProgress"]


class ImportProgress:
    """One bar per phase: finding files, reading headers, sending (by bytes)."""

    def __init__(self, enabled: bool, stream: IO[str]) -> None:
        self._progress: Progress | None = None
        if enabled:
            self._progress = Progress(
                SpinnerColumn(),
                TextColumn("[bold]{task.description}"),
                BarColumn(),
                TextColumn("{task.fields[files]} files"),
                DownloadColumn(binary_units=False),
                TextColumn("{task.fields[rate]}"),
                TimeRemainingColumn(),
                console=Console(file=stream),
                transient=False,
            )
            self._progress.start()
        self._task: TaskID | None = None
        self._files = 0
        self._total_files: int | None = None
        self._instances = 0
        self._started = time.monotonic()

    def phase(self, description: str, files: int | None = None, nbytes: int | None = None) -> None:
        """Start a phase of ``files`` files and ``nbytes`` bytes (``None``: not known yet)."""
        self._files, self._total_files, self._instances = 0, files, 0
        self._started = time.monotonic()
        if self._progress is not None:
            if self._task is not None:
                self._progress.stop_task(self._task)
            self._task = self._progress.add_task(
                description, total=nbytes, files=self._count(), rate=""
            )

    def advance(self, files: int = 1, nbytes: int = 0, instances: int = 0) -> None:
        """Count files, bytes and stored instances done in the current phase."""
        self._files += files
        self._instances += instances
        if self._progress is not None and self._task is not None:
            elapsed = max(time.monotonic() - self._started, 1e-6)
            rate = f"{self._instances / elapsed:,.1f} instances/s" if self._instances else ""
            self._progress.update(self._task, advance=nbytes, files=self._count(), rate=rate)

    def _count(self) -> str:
        total = "" if self._total_files is None else f"/{self._total_files:,}"
        return f"{self._files:,}{total}"

    def close(self) -> None:
        """Stop drawing."""
        if self._progress is not None:
            self._progress.stop()
            self._progress = None
