"""Shared request plumbing of the services: the container dependency and URL roots."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request

from pacsflow.container import Container

__all__ = ["ContainerDep", "DICOMWEB_ROOT", "dicomweb_root_url"]

DICOMWEB_ROOT = "/dicom-web"


def _container(request: Request) -> Container:
    container: Container = request.app.state.container
    return container


ContainerDep = Annotated[Container, Depends(_container)]


def dicomweb_root_url(request: Request, container: Container) -> str:
    """The absolute DICOMweb root for RetrieveURLs (PACSFLOW_PUBLIC_URL when set)."""
    if container.settings.public_url:
        return container.settings.public_url.rstrip("/")
    return str(request.base_url).rstrip("/") + DICOMWEB_ROOT
