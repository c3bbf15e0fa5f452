"""Shared request plumbing of the services: the container, the site, and URL roots."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request

from pacsflow.container import Container

__all__ = ["DICOMWEB_ROOT", "ContainerDep", "SiteDep", "dicomweb_root_url", "request_site"]

DICOMWEB_ROOT = "/dicom-web"


# Dependencies are coroutines: FastAPI runs a plain ``def`` dependency in a worker thread, a
# thread hop per dependency and request for what is a few attribute reads.


async def _container(request: Request) -> Container:
    container: Container = request.app.state.container
    return container


ContainerDep = Annotated[Container, Depends(_container)]


async def request_site(container: ContainerDep) -> str:
    """The site (partition) a request reads and writes: the one place that decides it."""
    return container.settings.site


SiteDep = Annotated[str, Depends(request_site)]


def dicomweb_root_url(request: Request, container: Container) -> str:
    """The absolute DICOMweb root for RetrieveURLs (PACSFLOW_PUBLIC_URL when set)."""
    if container.settings.public_url:
        return container.settings.public_url.rstrip("/")
    base = request.base_url
    host = request.headers.get("host", "")
    server = request.scope.get("server")
    # Some clients (dicomweb-client among them) send a Host header without the port; the
    # port the request arrived on is then the better guess. Behind a proxy, set
    # PACSFLOW_PUBLIC_URL instead (docs/configuration.md).
    port = server[1] if server else None  # an ASGI server may leave it out (ASGI spec: "server")
    if host and ":" not in host.rsplit("]", 1)[-1] and port not in (None, 80, 443):
        base = base.replace(port=int(port))
    return str(base).rstrip("/") + DICOMWEB_ROOT
