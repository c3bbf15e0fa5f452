"""The OHIF Viewer's ``app-config.js`` for this archive: one DICOMweb data source per site.

The roots are paths (``/dicom-web``, ``/sites/{site}/dicom-web``) completed in the browser with
the page's origin, since the viewer and the DICOMweb services share it (``pacsflow serve``, the
gateway); ``PACSFLOW_PUBLIC_URL`` names another origin. With authentication on, the viewer
signs in at ``PACSFLOW_AUTH_ISSUER`` (authorization code flow with PKCE, OHIF's ``oidc``
setting) as the public client ``PACSFLOW_CONSOLE_CLIENT_ID``, returning to ``/viewer/callback``.
"""

from __future__ import annotations

import json
from typing import Any, Final

from pacsflow.config import Settings

__all__ = ["DEFAULT_SOURCE", "SIGNED_OUT", "app_config", "data_source", "source_name"]

DEFAULT_SOURCE: Final = "dicomweb"
SIGNED_OUT: Final = "/signed-out"  # under /viewer: where the provider returns after sign-out
_ROOT: Final = "/dicom-web"


def source_name(site: str, default_site: str) -> str:
    """The OHIF data source of a site: ``dicomweb`` for the default one, ``site-{site}``."""
    return DEFAULT_SOURCE if site == default_site else f"site-{site}"


def data_source(name: str, root: str, friendly: str) -> dict[str, Any]:
    """An OHIF DICOMweb data source of ``root`` (QIDO-RS, WADO-RS, bulk data URIs)."""
    return {
        "namespace": "@ohif/extension-default.dataSourcesModule.dicomweb",
        "sourceName": name,
        "configuration": {
            "friendlyName": friendly,
            "name": name,
            "qidoRoot": root,
            "wadoRoot": root,
            "wadoUriRoot": root,
            "qidoSupportsIncludeField": True,
            "supportsFuzzyMatching": True,
            "supportsWildcard": True,
            "imageRendering": "wadors",
            "thumbnailRendering": "wadors",
            "enableStudyLazyLoad": True,
            "omitQuotationForMultipartRequest": True,
            "bulkDataURI": {"enabled": True},
        },
    }


def _config(settings: Settings) -> dict[str, Any]:
    sites = [settings.site, *(s for s in settings.sites if s != settings.site)]
    sources = [
        data_source(
            source_name(site, settings.site),
            _ROOT if site == settings.site else f"/sites/{site}{_ROOT}",
            f"pacsflow ({site})",
        )
        for site in sites
    ]
    config: dict[str, Any] = {
        "routerBasename": "/viewer",
        "extensions": [],
        "modes": [],
        "customizationService": {},
        "showStudyList": True,
        "maxNumberOfWebWorkers": 3,
        "showWarningMessageForCrossOrigin": False,
        "showCPUFallbackMessage": True,
        "showLoadingIndicator": True,
        "strictZSpacingForVolumeViewport": True,
        "investigationalUseDialog": {"option": "never"},
        "maxNumRequests": {"interaction": 100, "thumbnail": 5, "prefetch": 10},
        "defaultDataSourceName": DEFAULT_SOURCE,
        "dataSources": sources,
    }
    if settings.auth.enabled:
        oidc: dict[str, Any] = {
            "authority": settings.auth.issuer,
            "client_id": settings.console_client_id,
            "redirect_uri": "/callback",
            "response_type": "code",
            "scope": settings.console_scope,
            # Not "/": OHIF 3.13 routes its sign-out callback at this URL's path without the
            # basename taken off, so "/" (/viewer/) would capture the viewer's own /viewer route
            # and send every study link through a sign-out (services/viewer.py sends this on).
            "post_logout_redirect_uri": SIGNED_OUT,
        }
        if settings.console_resource:
            oidc["extraQueryParams"] = {"resource": settings.console_resource}
        config["oidc"] = [oidc]
    return config


def app_config(settings: Settings) -> str:
    """The text of ``app-config.js``: sets ``window.config`` (OHIF's configuration)."""
    public = (settings.public_url or "").rstrip("/")
    origin = json.dumps(public.removesuffix(_ROOT)) if public else "window.location.origin"
    config = json.dumps(_config(settings), indent=1, ensure_ascii=False)
    return (
        "/* pacsflow: the OHIF Viewer's configuration (docs/console.md) */\n"
        "window.config = (function (origin, config) {\n"
        "  for (const source of config.dataSources) {\n"
        "    for (const key of ['qidoRoot', 'wadoRoot', 'wadoUriRoot']) {\n"
        "      source.configuration[key] = origin + source.configuration[key];\n"
        "    }\n"
        "  }\n"
        "  return config;\n"
        f"}})({origin}, {config});\n"
    )
