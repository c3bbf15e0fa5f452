"""Shared request plumbing of the services: the container dependency and URL roots."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request

from pacsflow.container import Container

__all__ = ["DICOMWEB_ROOT", "ContainerDep", "dicomweb_root_url"]

DICOMWEB_ROOT = "/dicom-web"


def _container(request: Request) -> Container:
    container: Container = request.app.state.container
    return container


ContainerDep = Annotated[Container, Depends(_container)]


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
    # An ASGI server on a Unix socket (or in process) gives no port: nothing to add then.
    port = server[1] if server else None
    if host and ":" not in host.rsplit("]", 1)[-1] and port is not None and port not in (80, 443):
        base = base.replace(port=int(port))
    return str(base).rstrip("/") + DICOMWEB_ROOT
