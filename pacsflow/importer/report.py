"""The import's account: counts by outcome, failures by reason, rates, and a JSON report.

``--report FILE`` writes one JSON object per file (``file``, ``outcome``, ``sop_instance_uid``,
``reason``, ``message``), for scripts and for the record.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO

import orjson

from pacsflow.importer.outcomes import FileResult, Outcome

__all__ = ["Summary"]

_ORDER = (
    Outcome.STORED,
    Outcome.REPLACED,
    Outcome.HELD,
    Outcome.NOT_DICOM,
    Outcome.SKIPPED,
    Outcome.FAILED,
    Outcome.NOT_SENT,
)


@dataclass
class Summary:
    """Every file's result, and the time and bytes of the sending."""

    results: list[FileResult] = field(default_factory=list)
    sent_bytes: int = 0
    sending_seconds: float = 0.0
    interrupted: str = ""  # the signal's name when the import was interrupted

    def add(self, result: FileResult) -> None:
        """Record one file's result."""
        self.results.append(result)

    @property
    def counts(self) -> Counter[Outcome]:
        """Files by outcome."""
        return Counter(r.outcome for r in self.results)

    @property
    def failures(self) -> Counter[str]:
        """Failed files by reason."""
        return Counter(r.reason for r in self.results if r.outcome is Outcome.FAILED)

    @property
    def instances_per_second(self) -> float:
        """Instances stored (or replaced) per second of sending."""
        counts = self.counts
        stored = counts[Outcome.STORED] + counts[Outcome.REPLACED]
        return stored / self.sending_seconds if self.sending_seconds > 0 else 0.0

    def exit_status(self, signal_number: int = 0) -> int:
        """0 when every file was imported, held or skipped; 1 with failures; 128 + the
        signal's number when interrupted."""
        if signal_number:
            return 128 + signal_number
        return 1 if self.counts[Outcome.FAILED] else 0

    def text(self) -> str:
        """The summary for people."""
        counts = self.counts
        sent = (
            f"sent {self.sent_bytes / 1e6:,.1f} MB in {self.sending_seconds:,.1f} s"
            f" ({self.instances_per_second:,.1f} instances/s)"
            if self.sent_bytes
            else "nothing sent"
        )
        lines = [f"pacsflow import: {len(self.results):,} files; {sent}"]
        for outcome in _ORDER:
            if counts[outcome]:
                lines.append(f"  {outcome:<13} {counts[outcome]:>8,}")
            if outcome is Outcome.FAILED:
                for reason, number in sorted(self.failures.items()):
                    lines.append(f"    {reason:<40} {number:>6,}")
        if self.interrupted:
            lines.append(
                f"interrupted by {self.interrupted}: run the same command again to resume"
                " (what the archive holds is skipped)"
            )
        return "\n".join(lines)

    def write_report(self, path: Path) -> None:
        """One JSON object per file."""
        with path.open("wb") as out:
            for r in self.results:
                record = {
                    "file": r.name,
                    "outcome": str(r.outcome),
                    "sop_instance_uid": r.sop_uid,
                    "reason": r.reason,
                    "message": r.message,
                }
                out.write(orjson.dumps(record) + b"\n")

    def note(self, result: FileResult, stream: IO[str]) -> None:
        """A line on a file skipped or refused, as it happens."""
        if result.outcome in (Outcome.NOT_DICOM, Outcome.SKIPPED):
            print(f"note: skipped {result.name}: {result.message}", file=stream)
        elif result.outcome is Outcome.FAILED:
            detail = f": {result.message}" if result.message else ""
            print(f"failed: {result.name}: {result.reason}{detail}", file=stream)
