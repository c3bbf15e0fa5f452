"""Batches of files to send: one study a STOW-RS request, large studies in several.

Files sharing a SOP Instance UID form a group that is never split: the archive can keep one
object per UID, so the group goes in one request, in file order, and the archive's answer
says which one it kept (the last it accepted, with duplicate policy ``replace``) and why it
refused the others. A group goes with the study of its first file. Files whose header could
not be read go in batches of their own, to ``POST /studies``, for the archive to judge.

Batches are sent largest first: with several requests at once, the longest ones start early
and the last ones to end are short, so the connections stay busy to the end (the longest
processing time rule of scheduling).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from pacsflow.importer.classify import Scanned

__all__ = ["Batch", "plan_batches", "sending_order"]

Group = tuple[Scanned, ...]


@dataclass(frozen=True, slots=True)
class Batch:
    """The files of one request: groups of files of one SOP Instance UID (or one file)."""

    study_uid: str  # "" for files whose study is unknown
    groups: tuple[Group, ...]

    @property
    def files(self) -> list[Scanned]:
        """Every file, in the order it is sent."""
        return [file for group in self.groups for file in group]

    @property
    def nbytes(self) -> int:
        """Bytes of every file."""
        return sum(file.item.size for file in self.files)


def plan_batches(files: Sequence[Scanned], max_files: int, max_bytes: int) -> list[Batch]:
    """Batches of at most ``max_files`` files and ``max_bytes`` bytes (a larger group alone),
    studies in the order their first file came, files in their order."""
    studies: dict[str, list[list[Scanned]]] = {}
    groups: dict[str, list[Scanned]] = {}
    for file in files:
        if file.sop_uid and file.sop_uid in groups:
            groups[file.sop_uid].append(file)
            continue
        group = [file]
        if file.sop_uid:
            groups[file.sop_uid] = group
        studies.setdefault(file.study_uid, []).append(group)
    batches: list[Batch] = []
    for study, members in studies.items():
        current: list[Group] = []
        count = size = 0
        for group in members:
            group_size = sum(f.item.size for f in group)
            if current and (count + len(group) > max_files or size + group_size > max_bytes):
                batches.append(Batch(study, tuple(current)))
                current, count, size = [], 0, 0
            current.append(tuple(group))
            count += len(group)
            size += group_size
        if current:
            batches.append(Batch(study, tuple(current)))
    return batches


def sending_order(batches: Sequence[Batch]) -> list[Batch]:
    """The batches by decreasing size (bytes), in plan order among equals."""
    return sorted(batches, key=lambda batch: batch.nbytes, reverse=True)
