"""What a test stored into an archive: the corpus files it accepted, by SOP Instance UID."""

from __future__ import annotations

import warnings
from collections import defaultdict
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path

import pydicom

from tests.support.corpus import read_header

__all__ = ["EXPLICIT_LE", "Stored", "syntax_of"]

EXPLICIT_LE = "1.2.840.10008.1.2.1"


@dataclass
class Stored:
    """The corpus files the archive at ``url`` accepted, by SOP Instance UID (the last one
    stored wins)."""

    url: str
    files: dict[str, Path] = field(default_factory=dict)

    def dataset(self, sop: str) -> pydicom.Dataset:
        """The whole data set of the file stored under ``sop``."""
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return pydicom.dcmread(self.files[sop], force=True)

    def path_of(self, sop: str) -> str:
        """The instance's URL."""
        ds = self.dataset(sop)
        series = f"{self.url}/studies/{ds.StudyInstanceUID}/series/{ds.SeriesInstanceUID}"
        return f"{series}/instances/{sop}"

    @cached_property
    def headers(self) -> dict[str, pydicom.Dataset]:
        """The header of every stored file, by SOP Instance UID: the reference of searches."""
        return {sop: read_header(path) for sop, path in self.files.items()}

    def studies(self) -> dict[str, list[pydicom.Dataset]]:
        """The headers of the stored instances, by Study Instance UID."""
        by_study: dict[str, list[pydicom.Dataset]] = defaultdict(list)
        for ds in self.headers.values():
            by_study[str(ds.StudyInstanceUID)].append(ds)
        return by_study

    def by_name(self, prefix: str) -> str:
        """A stored instance from a file whose name starts with ``prefix`` (files that share a
        SOP Instance UID replace each other: the last one stored is the one kept)."""
        return next(sop for sop, path in self.files.items() if path.name.startswith(prefix))


def syntax_of(ds: pydicom.Dataset) -> str:
    """The transfer syntax a file is in (Implicit VR Little Endian without File Meta)."""
    return str(ds.file_meta.get("TransferSyntaxUID", "1.2.840.10008.1.2"))
