"""Which files are DICOM, and which study and instance each one is (PS3.10, PS3.18 10.5).

Each file's first bytes are read with the archive's own STOW-RS header reader
(``pacsflow.dicom.header``), so the importer and the archive agree on what a DICOM object is:
the Study, Series and SOP Instance UIDs it gives batch the files by study and find them in
the archive on a re-run.

A file is sent when its header reads, and also when it does not but claims to be DICOM (the
``DICM`` prefix of PS3.10 7.1 or a ``.dcm``/``.dicom``/``.dic`` name): the archive's
answer then says why it is refused. Any other file is not DICOM and is skipped with a note,
as is a media directory (DICOMDIR), which is no instance: the files it references are.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Final

from pacsflow.dicom.header import HeaderIncomplete, PartHeader, PartRejected, read_part_header
from pacsflow.importer.outcomes import Outcome
from pacsflow.importer.sources import MEDIA_STORAGE_DIRECTORY, Item, media_storage_class

__all__ = ["Scanned", "scan_item", "sha256_of"]

_PREFIXES: Final = (64 * 1024, 16 * 1024 * 1024)  # bytes read for a header, then at most
_DICOM_SUFFIXES: Final = (".dcm", ".dicom", ".dic")


@dataclass(frozen=True, slots=True)
class Scanned:
    """A file and what its first bytes say: sent, or skipped (``not DICOM``, ``skipped``)."""

    item: Item
    skip: Outcome | None = None
    header: PartHeader | None = None  # None: unreadable (sent only if it claims to be DICOM)
    note: str = ""

    @property
    def study_uid(self) -> str:
        """The Study Instance UID, or "" when unknown."""
        return self.header.study_uid if self.header else ""

    @property
    def sop_uid(self) -> str:
        """The SOP Instance UID, or "" when unknown."""
        return self.header.sop_uid if self.header else ""


def scan_item(item: Item) -> Scanned:
    """Read the header of one file (``OSError`` when it cannot be read)."""
    prefix = b""
    header: PartHeader | None = None
    problem = ""
    for size in _PREFIXES:
        prefix = item.reader.prefix(size)
        complete = len(prefix) >= item.size
        try:
            header = read_part_header(prefix, complete=complete)
        except HeaderIncomplete:
            if complete:
                break
            continue
        except PartRejected as exc:
            problem = exc.message
        break
    if media_storage_class(prefix) == MEDIA_STORAGE_DIRECTORY:
        note = "a DICOMDIR (media directory): the files it references are imported, not it"
        return Scanned(item, Outcome.SKIPPED, header, note)
    if header is not None:
        return Scanned(item, None, header)
    claims = prefix[128:132] == b"DICM" or item.name.lower().endswith(_DICOM_SUFFIXES)
    if claims:
        return Scanned(item, None, None, problem)
    return Scanned(item, Outcome.NOT_DICOM, None, problem or "no DICOM header in its first bytes")


def sha256_of(item: Item) -> str:
    """The SHA-256 of every byte of the file (as the archive computes it on receipt)."""
    digest = hashlib.sha256()
    for chunk in item.reader.chunks():
        digest.update(chunk)
    return digest.hexdigest()
