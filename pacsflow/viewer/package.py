"""The pinned OHIF Viewer package: fetched once from the npm registry, verified, unpacked.

``install`` asks the registry for the pinned version's document (npm registry API: ``GET
/{name}/{version}``), refuses it unless its ``dist.integrity`` is the pinned Subresource
Integrity value (``sha512-<base64>``), downloads ``dist.tarball`` and checks the bytes against
that digest, unpacks ``package/dist/`` (``tarfile``'s ``data`` filter: no links out, no device
files), moves it from ``/`` to ``/viewer/`` (``pacsflow.viewer.rebase``) and only then puts the
result in place, with a marker naming what was installed. A tarball fetched beforehand
(``npm pack @ohif/app@VERSION``) is checked against the same digest.
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import json
import os
import shutil
import tarfile
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Final
from urllib.parse import quote

import httpx

from pacsflow.viewer.rebase import BASE, precompress, rebase

__all__ = [
    "PIN",
    "REGISTRY",
    "InstallError",
    "InstalledViewer",
    "ViewerPin",
    "install",
    "installed",
]

REGISTRY: Final = "https://registry.npmjs.org"
MARKER: Final = ".pacsflow-viewer.json"
_MAX_TARBALL_BYTES: Final = 512 * 1024 * 1024
_DIST: Final = "package/dist/"


@dataclass(frozen=True)
class ViewerPin:
    """An npm package version and the integrity the registry publishes for its tarball."""

    package: str
    version: str
    integrity: str  # "sha512-<base64 of the tarball's SHA-512>"


# The same pin as tests/browser/package.json's "ohif" (a unit test compares them).
PIN: Final = ViewerPin(
    "@ohif/app",
    "3.13.2",
    "sha512-WZdxmpmG7rqFgW9ZJLcbgr3XCtLi1KDNPoMaeY5PPe6j4G4fjEjjkycZM6C6Zk2F87BKxFfpq+jd5xXZB9E8EA==",
)


@dataclass(frozen=True)
class InstalledViewer:
    """An installed viewer: where it is and what it is."""

    root: Path
    package: str
    version: str
    integrity: str


class InstallError(Exception):
    """The viewer cannot be installed: one line for the operator."""


def installed(root: Path) -> InstalledViewer | None:
    """The viewer installed in ``root``, or None (nothing there, or an unfinished install)."""
    try:
        marker = json.loads((root / MARKER).read_text())
        if not (root / "index.html").is_file():
            return None
        return InstalledViewer(root, marker["package"], marker["version"], marker["integrity"])
    except (OSError, ValueError, KeyError, TypeError):
        return None


def sri_sha512(digest: bytes) -> str:
    """A SHA-512 digest in Subresource Integrity form, as npm's ``dist.integrity``."""
    return "sha512-" + base64.b64encode(digest).decode()


def install(
    root: Path,
    pin: ViewerPin = PIN,
    *,
    registry: str = REGISTRY,
    tarball: Path | None = None,
    say: Callable[[str], None] = lambda _: None,
) -> InstalledViewer:
    """Install ``pin`` into ``root`` (replacing what is there); nothing when it already is."""
    present = installed(root)
    if present is not None and (present.version, present.integrity) == (pin.version, pin.integrity):
        say(f"{pin.package}@{pin.version} is already installed in {root}")
        return present
    root.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix=f".{root.name}-", dir=root.parent) as work:
        staging = Path(work)
        if tarball is None:
            tarball = staging / "package.tgz"
            _download(pin, registry, tarball, say)
        else:
            say(f"checking {tarball}")
            _check(pin, tarball)
        say(f"unpacking {pin.package}@{pin.version}")
        dist = _unpack(tarball, staging / "unpacked")
        changed = rebase(dist, BASE)
        packed = precompress(dist)
        say(f"moved to {BASE}: {len(changed)} files rewritten; {packed} files gzipped")
        marker = {"package": pin.package, "version": pin.version, "integrity": pin.integrity}
        (dist / MARKER).write_text(json.dumps(marker, indent=1) + "\n")
        _replace(dist, root)
    viewer = installed(root)
    if viewer is None:
        raise InstallError(f"the viewer in {root} is incomplete after installing")
    say(f"{pin.package}@{pin.version} installed in {root}")
    return viewer


def _download(pin: ViewerPin, registry: str, target: Path, say: Callable[[str], None]) -> None:
    """The pinned tarball from ``registry`` into ``target``, checked against the pin."""
    name = quote(pin.package, safe="@")
    document_url = f"{registry.rstrip('/')}/{name}/{quote(pin.version)}"
    say(f"asking {document_url}")
    try:
        with httpx.Client(follow_redirects=True, timeout=httpx.Timeout(30, read=120)) as client:
            answer = client.get(document_url, headers={"Accept": "application/json"})
            if answer.status_code != 200:
                raise InstallError(f"{document_url} answered {answer.status_code}")
            dist = answer.json().get("dist") or {}
            if dist.get("integrity") != pin.integrity:
                raise InstallError(
                    f"the registry's integrity of {pin.package}@{pin.version} is"
                    f" {dist.get('integrity')!r}, not the pinned {pin.integrity!r}"
                )
            say(f"downloading {dist['tarball']}")
            digest = hashlib.sha512()
            size = 0
            with client.stream("GET", dist["tarball"]) as response, target.open("wb") as out:
                if response.status_code != 200:
                    raise InstallError(f"{dist['tarball']} answered {response.status_code}")
                for chunk in response.iter_bytes(1 << 20):
                    size += len(chunk)
                    if size > _MAX_TARBALL_BYTES:
                        raise InstallError(f"the tarball exceeds {_MAX_TARBALL_BYTES} bytes")
                    digest.update(chunk)
                    out.write(chunk)
    except httpx.HTTPError as exc:
        raise InstallError(f"cannot fetch {pin.package}@{pin.version}: {exc}") from exc
    except (ValueError, KeyError, TypeError) as exc:  # not a registry document
        raise InstallError(f"{document_url} is not an npm registry document: {exc}") from exc
    _compare(pin, sri_sha512(digest.digest()), "the downloaded tarball")


def _check(pin: ViewerPin, tarball: Path) -> None:
    digest = hashlib.sha512()
    try:
        with tarball.open("rb") as source:
            while chunk := source.read(1 << 20):
                digest.update(chunk)
    except OSError as exc:
        raise InstallError(f"cannot read {tarball}: {exc.strerror or exc}") from exc
    _compare(pin, sri_sha512(digest.digest()), str(tarball))


def _compare(pin: ViewerPin, actual: str, what: str) -> None:
    if actual != pin.integrity:
        raise InstallError(
            f"{what} has integrity {actual}, not the pinned {pin.integrity}"
            f" of {pin.package}@{pin.version}: refused"
        )


def _unpack(tarball: Path, into: Path) -> Path:
    """``package/dist/`` of the tarball, unpacked under ``into``; the dist directory."""
    try:
        with tarfile.open(tarball, "r:gz") as archive:
            members = [m for m in archive.getmembers() if m.name.startswith(_DIST)]
            archive.extractall(into, members=members, filter="data")
    except (tarfile.TarError, OSError, EOFError) as exc:
        raise InstallError(f"cannot unpack {tarball}: {exc}") from exc
    dist = into / _DIST
    if not (dist / "index.html").is_file():
        raise InstallError(f"{tarball} holds no {_DIST}index.html")
    return dist


def _replace(new: Path, root: Path) -> None:
    """Put ``new`` where ``root`` is, moving the old one aside first and removing it after."""
    old = root.with_name(f".{root.name}-old-{os.getpid()}")
    if root.exists():
        root.rename(old)
    new.rename(root)
    with contextlib.suppress(FileNotFoundError):
        shutil.rmtree(old)
