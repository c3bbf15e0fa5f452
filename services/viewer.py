"""The OHIF Viewer at ``/viewer`` (docs/console.md): its files, and ``app-config.js`` for this
archive (``pacsflow.viewer.config``).

The files are those ``pacsflow viewer install`` put in ``PACSFLOW_VIEWER_DIR``; a path that
names no file is one of the single-page app's own routes (``/viewer/viewer``,
``/viewer/callback``) and gets ``index.html``. ``/viewer?StudyInstanceUIDs=...`` redirects to
the viewer's route for it, ``/viewer/signed-out`` (after the viewer's sign-out) to the console.
Files whose names carry a content hash are cached for a year; a ``.gz`` beside a file is sent
to clients that accept gzip. Until the viewer is installed, ``/viewer`` answers 404 with the
command that installs it.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Final

from fastapi import APIRouter, Request, Response
from fastapi.responses import FileResponse, HTMLResponse, RedirectResponse

from pacsflow.viewer import installed
from pacsflow.viewer.config import SIGNED_OUT, app_config
from pacsflow.viewer.package import MARKER
from services.common import ContainerDep

__all__ = ["router"]

router = APIRouter(include_in_schema=False)

_TYPES: Final = {
    ".js": "text/javascript",
    ".mjs": "text/javascript",
    ".css": "text/css",
    ".wasm": "application/wasm",
    ".json": "application/json",
    ".html": "text/html; charset=utf-8",
    ".svg": "image/svg+xml",
    ".map": "application/json",
}
_HASHED: Final = re.compile(r"(^|[.-])[0-9a-f]{16,}\.(js|wasm|css|woff2?)$")
_NOT_INSTALLED: Final = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Viewer not installed - pacsflow</title>
<meta name="viewport" content="width=device-width, initial-scale=1"></head>
<body><main><h1>The OHIF Viewer is not installed</h1>
<p>Install it once with <code>pacsflow viewer install</code> (it fetches the pinned
<code>@ohif/app</code> from the npm registry and checks its integrity), then reload this page.
See docs/console.md.</p><p><a href="/">Back to the studies</a></p></main></body></html>
"""


def _cache(name: str) -> str:
    return "public, max-age=31536000, immutable" if _HASHED.search(name) else "no-cache"


def _file(request: Request, path: Path) -> Response:
    """``path`` (or its ``.gz``), with 304 for a matching ``If-None-Match``."""
    media_type = _TYPES.get(path.suffix)
    headers = {"Cache-Control": _cache(path.name), "Vary": "Accept-Encoding"}
    packed = path.with_name(path.name + ".gz")
    if "gzip" in request.headers.get("accept-encoding", "") and packed.is_file():
        headers["Content-Encoding"] = "gzip"
        response = FileResponse(packed, media_type=media_type, headers=headers)
    else:
        response = FileResponse(path, media_type=media_type, headers=headers)
    tag = response.headers.get("etag")
    if tag and tag in request.headers.get("if-none-match", ""):
        return Response(status_code=304, headers={"ETag": tag, **headers})
    return response


@router.get("/viewer")
async def viewer_entry(request: Request) -> RedirectResponse:
    """``/viewer?StudyInstanceUIDs=...`` opens the study; ``/viewer`` the viewer's list."""
    query = request.url.query
    target = f"/viewer/viewer?{query}" if "StudyInstanceUIDs" in query else "/viewer/"
    return RedirectResponse(target, status_code=307)


@router.get(f"/viewer{SIGNED_OUT}")
async def viewer_signed_out() -> RedirectResponse:
    """Where the provider returns the viewer after sign-out: on to the console's studies."""
    return RedirectResponse("/", status_code=303)


@router.get("/viewer/{path:path}")
def viewer_file(path: str, request: Request, container: ContainerDep) -> Response:
    """A file of the installed viewer, its configuration, or its page for its own routes."""
    settings = container.settings
    viewer = installed(settings.resolved_viewer_dir())
    if viewer is None:
        return HTMLResponse(_NOT_INSTALLED, status_code=404, headers={"Cache-Control": "no-cache"})
    if path == "app-config.js":
        return Response(
            app_config(settings),
            media_type="text/javascript",
            headers={"Cache-Control": "no-cache"},
        )
    root = viewer.root.resolve()
    target = (root / path).resolve()
    if target.is_relative_to(root) and target.is_file() and target.name != MARKER:
        return _file(request, target)
    if "." in path.rsplit("/", 1)[-1]:  # a file name that is not there
        return Response(status_code=404, headers={"Cache-Control": "no-cache"})
    return _file(request, root / "index.html")
