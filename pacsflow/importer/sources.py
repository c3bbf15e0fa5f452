"""Where ``pacsflow import`` finds files: folders, zip and tar archives, DICOMDIR media, S3.

Every path becomes a list of :class:`Item`, each able to give its first bytes and then all of
them in chunks, wherever it lives:

* a folder is walked recursively in name order (symbolic links to folders are not followed);
  zip and tar archives found in it are opened too;
* a zip archive is read member by member where it is (``zipfile``);
* a tar archive (plain or compressed) is unpacked once, in order, into a temporary folder,
  since a compressed tar cannot be read at random;
* a DICOMDIR (PS3.10 8.6, a file named ``DICOMDIR`` or of the Media Storage Directory SOP
  Class) gives the files its directory records reference (Referenced File ID), looked up
  case-insensitively as media written on other systems need;
* ``s3://bucket/prefix`` lists the objects under the prefix (``pacsflow.adapters.s3_source``).

Sources own what they open; :class:`Sources` closes it all.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import tarfile
import tempfile
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Final, Protocol

from pydicom import dcmread
from pydicom.errors import InvalidDicomError
from pydicom.uid import MediaStorageDirectoryStorage

if TYPE_CHECKING:
    from pacsflow.importer.s3 import S3Options

__all__ = [
    "CHUNK",
    "MEDIA_STORAGE_DIRECTORY",
    "Item",
    "LocalFile",
    "Reader",
    "Sources",
    "is_archive",
    "media_storage_class",
]

CHUNK: Final = 1024 * 1024
MEDIA_STORAGE_DIRECTORY: Final = MediaStorageDirectoryStorage
_ZIP: Final = (".zip",)
_TAR: Final = (".tar", ".tar.gz", ".tgz", ".tar.bz2", ".tbz2", ".tar.xz", ".txz")


class Reader(Protocol):
    """The bytes of one item."""

    def prefix(self, size: int) -> bytes:
        """Up to ``size`` first bytes."""
        ...

    def chunks(self) -> Iterator[bytes]:
        """Every byte, in chunks of at most ``CHUNK``."""
        ...


@dataclass(frozen=True, slots=True)
class Item:
    """One file to import: its name for people, its size and its bytes."""

    name: str
    size: int
    reader: Reader


@dataclass(frozen=True, slots=True)
class LocalFile:
    """A file on a local disk."""

    path: Path

    def prefix(self, size: int) -> bytes:
        """Up to ``size`` first bytes."""
        with self.path.open("rb") as fp:
            return fp.read(size)

    def chunks(self) -> Iterator[bytes]:
        """Every byte, chunk by chunk."""
        with self.path.open("rb") as fp:
            while chunk := fp.read(CHUNK):
                yield chunk


@dataclass(frozen=True, slots=True)
class _ZipMember:
    archive: zipfile.ZipFile
    member: zipfile.ZipInfo

    def prefix(self, size: int) -> bytes:
        with self.archive.open(self.member) as fp:
            return fp.read(size)

    def chunks(self) -> Iterator[bytes]:
        with self.archive.open(self.member) as fp:
            while chunk := fp.read(CHUNK):
                yield chunk


def is_archive(name: str) -> bool:
    """Whether a file name is that of a zip or tar archive."""
    lower = name.lower()
    return lower.endswith(_ZIP) or lower.endswith(_TAR)


@dataclass
class Sources:
    """Turns the command's paths into items; keeps archives open and temporary files until
    ``close``. ``missing`` gathers the names that could not be read, with the reason."""

    spool_dir: Path | None = None
    s3: S3Options | None = None
    missing: list[tuple[str, str]] = field(default_factory=list)
    _stack: contextlib.ExitStack = field(default_factory=contextlib.ExitStack)
    _spool: Path | None = None

    def close(self) -> None:
        """Close archives and remove unpacked files."""
        self._stack.close()

    def items(self, location: str) -> Iterator[Item]:
        """The items of one command-line location, in a stable order."""
        if location.startswith("s3://"):
            from pacsflow.importer.s3 import S3Options, s3_items

            try:
                yield from s3_items(location, self.s3 or S3Options.from_environment(None))
            except (OSError, ValueError) as exc:
                self.missing.append((location, str(exc)))
            return
        path = Path(location)
        if path.is_dir():
            yield from self._folder(path)
        elif not path.is_file():
            self.missing.append((location, "no such file or folder"))
        elif is_archive(path.name):
            yield from self._archive(path)
        elif _is_dicomdir(path):
            yield from self._dicomdir(path)
        else:
            yield Item(str(path), path.stat().st_size, LocalFile(path))

    def _folder(self, root: Path) -> Iterator[Item]:
        for folder, subfolders, files in os.walk(root, onerror=self._walk_error):
            subfolders.sort()
            for name in sorted(files):
                path = Path(folder, name)
                try:
                    if is_archive(name):
                        yield from self._archive(path)
                    elif path.is_file():
                        yield Item(str(path), path.stat().st_size, LocalFile(path))
                except OSError as exc:
                    self.missing.append((str(path), f"cannot read: {exc.strerror or exc}"))

    def _walk_error(self, exc: OSError) -> None:
        self.missing.append((str(exc.filename), f"cannot list: {exc.strerror or exc}"))

    def _archive(self, path: Path) -> Iterator[Item]:
        try:
            if path.name.lower().endswith(_ZIP):
                yield from self._zip(path)
            else:
                yield from self._tar(path)
        except (OSError, zipfile.BadZipFile, tarfile.TarError) as exc:
            self.missing.append((str(path), f"cannot read the archive: {exc}"))

    def _zip(self, path: Path) -> Iterator[Item]:
        archive = self._stack.enter_context(zipfile.ZipFile(path))
        for member in sorted(archive.infolist(), key=lambda m: m.filename):
            if not member.is_dir():
                yield Item(
                    f"{path}!{member.filename}", member.file_size, _ZipMember(archive, member)
                )

    def _tar(self, path: Path) -> Iterator[Item]:
        spool = self._spool_dir()
        with tarfile.open(path, "r:*") as archive:
            for number, member in enumerate(archive):
                if not member.isfile():
                    continue
                source = archive.extractfile(member)
                if source is None:
                    continue
                target = spool / f"{number:08d}"
                with source, target.open("wb") as out:
                    shutil.copyfileobj(source, out, CHUNK)
                yield Item(f"{path}!{member.name}", member.size, LocalFile(target))

    def _spool_dir(self) -> Path:
        if self._spool is None:
            parent = str(self.spool_dir) if self.spool_dir else None
            self._spool = Path(tempfile.mkdtemp(prefix="pacsflow-import-", dir=parent))
            self._stack.callback(shutil.rmtree, self._spool, True)
        return self._spool

    def _dicomdir(self, path: Path) -> Iterator[Item]:
        try:
            directory = dcmread(path, force=True)
            records = list(directory.get("DirectoryRecordSequence", []))
        except (OSError, InvalidDicomError, ValueError) as exc:
            self.missing.append((str(path), f"cannot read the DICOMDIR: {exc}"))
            return
        for record in records:
            reference = record.get("ReferencedFileID")
            if not reference:
                continue
            parts = [reference] if isinstance(reference, str) else list(reference)
            found = _find(path.parent, [str(p) for p in parts])
            name = str(path.parent.joinpath(*parts))
            if found is None:
                self.missing.append((name, f"referenced by {path}, not found"))
            else:
                yield Item(str(found), found.stat().st_size, LocalFile(found))


def _is_dicomdir(path: Path) -> bool:
    """A file named DICOMDIR, or whose File Meta names the Media Storage Directory class."""
    if path.name.upper() == "DICOMDIR":
        return True
    return media_storage_class(LocalFile(path).prefix(4096)) == MEDIA_STORAGE_DIRECTORY


def media_storage_class(prefix: bytes) -> str:
    """Media Storage SOP Class UID (0002,0002) of a PS3.10 file's first bytes, or ""."""
    if prefix[128:132] != b"DICM":
        return ""
    at = prefix.find(b"\x02\x00\x02\x00UI", 132)
    if at < 0:
        return ""
    length = int.from_bytes(prefix[at + 6 : at + 8], "little")
    return prefix[at + 8 : at + 8 + length].rstrip(b"\x00 ").decode("ascii", "replace")


def _find(root: Path, parts: list[str]) -> Path | None:
    """``root/parts…``, each part matched case-insensitively if not exactly (ISO 9660 media)."""
    path = root
    for part in parts:
        exact = path / part
        if exact.exists():
            path = exact
            continue
        try:
            matches = [p for p in path.iterdir() if p.name.upper() == part.upper()]
        except OSError:
            return None
        if not matches:
            return None
        path = matches[0]
    return path if path.is_file() else None
