"""The web console (docs/console.md): server-rendered pages that use the DICOMweb API itself.

``/`` lists and searches studies, ``/console/studies/{study}`` shows one, ``/console/upload``
stores files through STOW-RS and ``/console/status`` plots the archive's status from
``/console/status.json``. The pages hold no patient data: the browser asks the DICOMweb
services for it with the user's bearer token (signed in at the OpenID provider with the
authorization code flow and PKCE, ``/console/callback``), so a page's URL names at most a UID
and a search's terms never enter a URL (PS3.18 leaves the user interface to us; IHE IOCM and
the HIPAA minimum-necessary rule motivate keeping PHI out of URLs and logs).
"""

from __future__ import annotations

import functools
from pathlib import Path
from typing import Annotated, Any, Final

import orjson
from fastapi import APIRouter, Depends, Request, Response
from fastapi.responses import HTMLResponse
from fastapi.routing import APIRoute
from fastapi.templating import Jinja2Templates
from pydicom._dicom_dict import DicomDictionary
from starlette.staticfiles import StaticFiles

from pacsflow import __version__
from pacsflow.auth import Principal, Right
from pacsflow.console.status import StatusReader
from pacsflow.dicom.status import FailureReason, WarningReason
from pacsflow.dicom.uids import require_uid
from pacsflow.viewer import installed
from pacsflow.viewer.config import source_name
from services.auth import PrincipalDep, guard, principal_of
from services.common import DICOMWEB_ROOT, SITE_ROOT, ContainerDep, SiteDep

__all__ = ["STATIC_DIR", "router"]

WEB_DIR: Final = Path(__file__).resolve().parent / "web"
STATIC_DIR: Final = WEB_DIR / "static"
_NO_STORE: Final = {"Cache-Control": "no-store"}
_DELETE_PATH: Final = "/studies/{study}"  # Delete Study (PS3.18 10.11 in later editions)
# Failure and Warning Reasons (PS3.18 Tables I.2-1, I.2-2) as the pages name them.
_REASONS: Final = {
    f"{reason.value:04X}": reason.name.lower().replace("_", " ").replace("sop", "SOP")
    for reason in (*FailureReason, *WarningReason)
}

router = APIRouter(include_in_schema=False)
router.mount("/console/static", StaticFiles(directory=STATIC_DIR), name="console-static")


@functools.cache
def _templates() -> Jinja2Templates:
    return Jinja2Templates(directory=WEB_DIR / "templates")


def can_delete(request: Request) -> bool:
    """Whether the archive has a Delete Study route (in any role: the gateway routes it)."""
    routers = getattr(request.app.state, "dicomweb_routers", ())
    return any(
        isinstance(route, APIRoute)
        and route.path == _DELETE_PATH
        and "DELETE" in (route.methods or ())
        for router in routers
        for route in router.routes
    )


def _roots(container: ContainerDep) -> dict[str, str]:
    """The DICOMweb root of each site the process serves, as the browser reaches it."""
    settings = container.settings
    public = (settings.public_url or "").rstrip("/").removesuffix(DICOMWEB_ROOT)
    sites = [settings.site, *(s for s in settings.sites if s != settings.site)]
    return {
        site: public + (DICOMWEB_ROOT if site == settings.site else SITE_ROOT.format(site=site))
        for site in sites
    }


def _config(request: Request, container: ContainerDep) -> dict[str, Any]:
    """What the pages' scripts need: roots, sign-in, which actions exist."""
    settings = container.settings
    auth = None
    if settings.auth.enabled:
        auth = {
            "issuer": settings.auth.issuer.rstrip("/"),
            "clientId": settings.console_client_id,
            "scope": settings.console_scope,
            "resource": settings.console_resource or None,
        }
    roots = _roots(container)
    return {
        "version": __version__,
        "site": settings.site,
        "roots": roots,
        "sources": {site: source_name(site, settings.site) for site in roots},
        "auth": auth,
        "viewer": installed(settings.resolved_viewer_dir()) is not None,
        "delete": can_delete(request),
        "reasons": _REASONS,
    }


def _security_headers(config: dict[str, Any]) -> dict[str, str]:
    """Content Security Policy and friends: scripts and styles of this origin only."""
    connect = ["'self'"]
    if config["auth"]:
        connect.append(config["auth"]["issuer"])
    connect += sorted({root for root in config["roots"].values() if "://" in root})
    policy = (
        "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' blob: data:; "
        f"connect-src {' '.join(connect)}; frame-ancestors 'none'; base-uri 'none'; "
        "form-action 'self'"
    )
    return {
        "Content-Security-Policy": policy,
        "Referrer-Policy": "no-referrer",
        "X-Content-Type-Options": "nosniff",
        "Cache-Control": "no-cache",
    }


ConfigDep = Annotated[dict[str, Any], Depends(_config)]


def _page(request: Request, config: dict[str, Any], name: str, **context: Any) -> HTMLResponse:
    response = _templates().TemplateResponse(
        request, f"{name}.html", {"config": config, "page": name, **context}
    )
    response.headers.update(_security_headers(config))
    return response


@router.get("/")
async def studies_page(request: Request, config: ConfigDep) -> HTMLResponse:
    """The study list: search, paging, thumbnails."""
    return _page(request, config, "studies")


@router.get("/console/studies/{study}")
async def study_page(study: str, request: Request, config: ConfigDep) -> HTMLResponse:
    """One study: its series, instance counts and attributes."""
    require_uid(study, "study")
    return _page(request, config, "study", study=study)


@router.get("/console/upload")
async def upload_page(request: Request, config: ConfigDep) -> HTMLResponse:
    """Upload files and folders through STOW-RS."""
    return _page(request, config, "upload")


@router.get("/console/status")
async def status_page(request: Request, config: ConfigDep) -> HTMLResponse:
    """Ingest rate, processor lag, dead letters, storage and readiness, with live plots."""
    return _page(request, config, "status")


@router.get("/console/callback")
async def callback_page(request: Request, config: ConfigDep) -> HTMLResponse:
    """Where the OpenID provider returns the browser after sign-in (authorization code)."""
    return _page(request, config, "callback")


def _reader(request: Request, container: ContainerDep) -> StatusReader:
    reader: StatusReader | None = getattr(request.app.state, "console_status", None)
    if reader is None:
        reader = request.app.state.console_status = StatusReader(container)
    return reader


@router.get("/console/status.json", dependencies=[guard(Right.ADMIN)])
async def status(
    request: Request, site: SiteDep, reader: Annotated[StatusReader, Depends(_reader)]
) -> Response:
    """The archive's counters now (``pacsflow.console.status``); needs the admin right."""
    principal: Principal = principal_of(request)
    snapshot = await reader.snapshot(site, principal)
    snapshot["roles"] = list(request.app.state.roles)
    return Response(orjson.dumps(snapshot), media_type="application/json", headers=_NO_STORE)


@router.get("/console/rights.json")
async def rights(principal: PrincipalDep, container: ContainerDep) -> Response:
    """The rights of the request's principal on each site served: the actions a page offers.

    The pages offer Delete only where the principal holds the delete right; the DICOMweb
    routes decide all the same (``services.auth.guard``).
    """
    held = {site: [str(r) for r in Right if principal.may(site, r)] for site in _roots(container)}
    body = {"subject": principal.subject, "rights": held}
    return Response(orjson.dumps(body), media_type="application/json", headers=_NO_STORE)


@functools.cache
def _dictionary() -> bytes:
    keywords = {f"{tag:08X}": entry[4] for tag, entry in DicomDictionary.items() if entry[4]}
    return orjson.dumps(keywords, option=orjson.OPT_SORT_KEYS)


@router.get("/console/dictionary.json")
async def dictionary() -> Response:
    """Attribute keywords by tag (pydicom's data dictionary, PS3.6) for the metadata tables."""
    return Response(
        _dictionary(),
        media_type="application/json",
        headers={"Cache-Control": "public, max-age=86400", "ETag": f'"{__version__}"'},
    )
