"""Moves the prebuilt OHIF Viewer from the site root to ``/viewer/``.

The npm package is built for ``PUBLIC_URL=/``: its pages and style sheets name their files
from the root (``/app.bundle.js``, ``url(/font.woff2)``) and webpack's runtime loads chunks from
``__webpack_require__.p = "/"``. OHIF documents a rebuild for another base path; a rebuild
needs its whole build chain, so the few places that hold the base are rewritten instead, each
by an exact pattern, and ``rebase`` fails when a pattern finds nothing (a new OHIF release
that moved them). ``routerBasename`` (in ``app-config.js``, ``pacsflow.viewer.config``) does
the rest. ``precompress`` writes a ``.gz`` beside each large text file for the server.
"""

from __future__ import annotations

import gzip
import re
import shutil
from pathlib import Path
from typing import Final

__all__ = ["BASE", "precompress", "rebase"]

BASE: Final = "/viewer/"
_WEBPACK: Final = re.compile(rb'__webpack_require__\.p = "/";')
_HTML: Final = re.compile(rb'(\s(?:href|src)=")/(?!/)')
_PUBLIC_URL: Final = re.compile(rb'window\.PUBLIC_URL="/"')
_CSS_URL: Final = re.compile(rb"url\(/(?!/)")
_MANIFEST: Final = re.compile(rb'("(?:src|start_url)":\s*")/(?!/)')
_PACKED: Final = (".js", ".css", ".json", ".html", ".svg", ".wasm", ".mjs", ".map")
_PACK_MIN_BYTES: Final = 4096
_PACK_MAX_BYTES: Final = 64 * 1024 * 1024


def _rewrite(path: Path, pattern: re.Pattern[bytes], replacement: bytes) -> bool:
    text = path.read_bytes()
    changed, count = pattern.subn(replacement, text)
    if count:
        path.write_bytes(changed)
    return count > 0


def rebase(dist: Path, base: str = BASE) -> list[str]:
    """Rewrite ``dist`` (OHIF's ``dist/``) to be served under ``base``; the files changed."""
    prefix = base.encode()
    changed: list[str] = []
    index = dist / "index.html"
    if not (
        _rewrite(index, _HTML, rb"\1" + prefix)
        and _rewrite(index, _PUBLIC_URL, b'window.PUBLIC_URL="' + prefix + b'"')
    ):
        raise ValueError(f"{index} does not name its files from / as expected")
    changed.append(index.name)
    for page in sorted(dist.glob("*.html")):
        if page != index and _rewrite(page, _HTML, rb"\1" + prefix):
            changed.append(page.name)
    runtimes = [
        script.name
        for script in sorted(dist.glob("*.js"))
        if _rewrite(script, _WEBPACK, b'__webpack_require__.p = "' + prefix + b'";')
    ]
    if not any(name.startswith("app.bundle.") for name in runtimes):
        raise ValueError(f"no webpack public path in {dist}/app.bundle.*.js")
    changed += runtimes
    changed += [
        sheet.name
        for sheet in sorted(dist.glob("*.css"))
        if _rewrite(sheet, _CSS_URL, b"url(" + prefix)
    ]
    manifest = dist / "manifest.json"
    if manifest.is_file() and _rewrite(manifest, _MANIFEST, rb"\1" + prefix):
        changed.append(manifest.name)
    return changed


def precompress(dist: Path) -> int:
    """Write ``NAME.gz`` beside each text or wasm file of ``dist`` worth it; how many."""
    count = 0
    for path in sorted(dist.rglob("*")):
        if path.suffix not in _PACKED or not path.is_file():
            continue
        size = path.stat().st_size
        if not _PACK_MIN_BYTES <= size <= _PACK_MAX_BYTES:
            continue
        packed = path.with_name(path.name + ".gz")
        with path.open("rb") as source, gzip.open(packed, "wb", compresslevel=6) as out:
            shutil.copyfileobj(source, out, 1 << 20)
        if packed.stat().st_size >= size * 0.9:  # not worth a second file
            packed.unlink()
            continue
        count += 1
    return count
