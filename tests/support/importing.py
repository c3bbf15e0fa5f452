"""Helpers of the import and export tests: run ``pacsflow import``, read what an archive holds."""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import orjson
import pydicom
from pydicom.uid import generate_uid

__all__ = [
    "Imported",
    "archive_hashes",
    "copies_with_new_uids",
    "import_command",
    "run_import",
    "sha256_file",
]


@dataclass
class Imported:
    """What one ``pacsflow import`` run did: exit status, output, and its JSON report."""

    returncode: int
    stdout: str
    stderr: str
    report: list[dict[str, Any]]

    def outcome(self, name: str | Path) -> dict[str, Any]:
        """The report line of one file."""
        [line] = [r for r in self.report if r["file"] == str(name)]
        return line

    def by_outcome(self, outcome: str) -> list[dict[str, Any]]:
        """The report lines of one outcome."""
        return [r for r in self.report if r["outcome"] == outcome]


def import_command(
    url: str, *paths: str | Path, report: Path, extra: tuple[str, ...] = ()
) -> list[str]:
    """The command line of an import into ``url`` writing ``report``."""
    return [
        sys.executable, "-m", "pacsflow", "import", *map(str, paths),
        "--url", url, "--report", str(report), *extra,
    ]  # fmt: skip


def run_import(
    url: str,
    *paths: str | Path,
    report: Path,
    extra: tuple[str, ...] = (),
    env: dict[str, str] | None = None,
) -> Imported:
    """Run ``pacsflow import`` to the end (bounded) and read its report."""
    done = subprocess.run(
        import_command(url, *paths, report=report, extra=extra),
        capture_output=True,
        text=True,
        timeout=900,
        env={**os.environ, **(env or {})},
    )
    lines = report.read_bytes().splitlines() if report.exists() else []
    return Imported(done.returncode, done.stdout, done.stderr, [orjson.loads(x) for x in lines])


def archive_hashes(url: str) -> dict[str, str]:
    """SOP Instance UID → SHA-256 of every instance the archive holds (QIDO-RS, paged)."""
    found: dict[str, str] = {}
    while True:
        response = httpx.get(
            f"{url}/instances",
            params={"includefield": "00A11001", "limit": "1000", "offset": str(len(found))},
            timeout=60,
        )
        response.raise_for_status()
        page = response.json()
        for record in page:
            found[record["00080018"]["Value"][0]] = record["00A11001"]["Value"][0]
        if len(found) >= int(response.headers["x-total-count"]) or not page:
            return found


def sha256_file(path: Path) -> str:
    """The SHA-256 of a file's bytes."""
    return hashlib.sha256(path.read_bytes()).hexdigest()


def copies_with_new_uids(source: Path, folder: Path, studies: int, per_study: int) -> list[Path]:
    """Copies of a corpus file under new Study, Series and SOP Instance UIDs, one folder per
    study (``folder/study-N/M.dcm``)."""
    files = []
    template = pydicom.dcmread(source)
    for study in range(studies):
        study_uid, series_uid = generate_uid(), generate_uid()
        (folder / f"study-{study}").mkdir(parents=True, exist_ok=True)
        for number in range(per_study):
            sop_uid = generate_uid()
            template.StudyInstanceUID, template.SeriesInstanceUID = study_uid, series_uid
            template.SOPInstanceUID = template.file_meta.MediaStorageSOPInstanceUID = sop_uid
            template.InstanceNumber = number + 1
            path = folder / f"study-{study}" / f"{number:04d}.dcm"
            template.save_as(path, enforce_file_format=True)
            files.append(path)
    return files
