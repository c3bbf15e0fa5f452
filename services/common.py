"""Shared request plumbing of the services: the container, the site, and URL roots."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request
from starlette.requests import HTTPConnection

from pacsflow.container import Container
from pacsflow.errors import PayloadTooLarge

__all__ = [
    "DICOMWEB_ROOT",
    "SITE_ROOT",
    "ContainerDep",
    "SiteDep",
    "dicomweb_root_url",
    "read_body",
    "request_site",
]

DICOMWEB_ROOT = "/dicom-web"
SITE_ROOT = "/sites/{site}/dicom-web"  # the DICOMweb root of one site (docs/security.md)


# Dependencies are coroutines: FastAPI runs a plain ``def`` dependency in a worker thread, a
# thread hop per dependency and request for what is a few attribute reads.


async def _container(connection: HTTPConnection) -> Container:
    container: Container = connection.app.state.container
    return container


ContainerDep = Annotated[Container, Depends(_container)]


async def request_site(connection: HTTPConnection, container: ContainerDep) -> str:
    """The site (partition) a request reads and writes: the one place that decides it.

    ``/sites/{site}/dicom-web/...`` names it (404 for a site the process does not serve);
    ``/dicom-web/...`` is the default site (``PACSFLOW_SITE``).
    """
    return container.sites.resolve(connection.path_params.get("site"))


SiteDep = Annotated[str, Depends(request_site)]


def dicomweb_root_url(request: Request, container: Container) -> str:
    """The absolute DICOMweb root of the request's site for RetrieveURLs.

    ``PACSFLOW_PUBLIC_URL`` is the root of the default site when set; a site's root is then
    ``PACSFLOW_PUBLIC_URL`` with its ``/dicom-web`` replaced by ``/sites/{site}/dicom-web``.
    """
    site = request.path_params.get("site")
    if container.settings.public_url:
        public = container.settings.public_url.rstrip("/")
        if site is None:
            return public
        return public.removesuffix(DICOMWEB_ROOT) + SITE_ROOT.format(site=site)
    base = request.base_url
    host = request.headers.get("host", "")
    server = request.scope.get("server")
    # Some clients (dicomweb-client among them) send a Host header without the port; the
    # port the request arrived on is then the better guess. Behind a proxy, set
    # PACSFLOW_PUBLIC_URL instead (docs/configuration.md).
    port = server[1] if server else None  # an ASGI server may leave it out (ASGI spec: "server")
    if host and ":" not in host.rsplit("]", 1)[-1] and port not in (None, 80, 443):
        base = base.replace(port=int(port))
    root = SITE_ROOT.format(site=site) if site is not None else DICOMWEB_ROOT
    return str(base).rstrip("/") + root


async def read_body(request: Request, limit: int, variable: str) -> bytes:
    """A small request body, read up to ``limit`` bytes; 413 naming ``variable`` beyond."""
    length = request.headers.get("content-length", "")
    too_large = f"the payload exceeds {limit} bytes ({variable})"
    if length.isdigit() and int(length) > limit:
        raise PayloadTooLarge(too_large)
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise PayloadTooLarge(too_large)
        chunks.append(chunk)
    return b"".join(chunks)
