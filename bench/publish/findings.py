"""The hand-written findings of a run: ``<results>.findings.md`` beside its JSON, shown first
on the performance page (the numbers say what was measured; the findings say what it means)."""

from __future__ import annotations

from pathlib import Path

__all__ = ["findings_of", "findings_section"]


def findings_of(results: Path) -> str | None:
    """The hand-written findings kept next to a results file (``<name>.findings.md``)."""
    path = results.with_suffix(".findings.md")
    return path.read_text() if path.is_file() else None


def findings_section(findings: str | None) -> list[str]:
    """The page's "Findings" section (nothing when there are none)."""
    if not findings or not findings.strip():
        return []
    return ["## Findings", "", findings.strip(), ""]
