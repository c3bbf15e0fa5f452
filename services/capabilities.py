"""Retrieve Capabilities (PS3.18 8.9): ``OPTIONS`` on the DICOMweb root and on every resource.

The answer is the Capabilities Description of Annex H, a WADL document
(``application/vnd.sun.wadl+xml``, also sent as ``application/xml`` when asked), with an
``Allow`` header listing the methods of the Target Resource; 404 for a path no route serves.
The description is made from the OpenAPI document of the routes the process describes
(``services.app``: its own roles, or every role behind the gateway), so it never lists a
resource that does not exist nor misses one that does.
"""

from __future__ import annotations

from typing import Annotated, Final

from fastapi import Header, Request, Response

from pacsflow.auth import Right
from pacsflow.errors import NotAcceptable, NotFound
from pacsflow.media.accept import parse_accept
from services.auth import guard
from services.common import DICOMWEB_ROOT, ContainerDep, dicomweb_root_url
from services.head import Router
from services.openapi import responses
from services.wadl import WADL_MEDIA_TYPE, ResourceTree

__all__ = ["CAPABILITY_TYPES", "router"]

CAPABILITY_TYPES: Final = (WADL_MEDIA_TYPE, "application/xml", "text/xml")

router = Router(dependencies=[guard(Right.READ)])
_ANSWERS = responses(CAPABILITY_TYPES, description="The Capabilities Description (Annex H)")


def _media_type(accept: str) -> str:
    """The WADL media type, or ``application/xml``/``text/xml`` when only that is accepted."""
    for media in parse_accept(accept):
        if media.quality <= 0:
            continue
        if media.media_type in ("*/*", "application/*", WADL_MEDIA_TYPE):
            return WADL_MEDIA_TYPE
        if media.media_type in CAPABILITY_TYPES:
            return media.media_type
        if media.media_type == "text/*":
            return "text/xml"
    raise NotAcceptable(f"the Capabilities Description is {WADL_MEDIA_TYPE} (PS3.18 Annex H)")


def _describe(request: Request, container: ContainerDep, accept: str, target: str) -> Response:
    media_type = _media_type(accept)
    tree: ResourceTree = request.app.state.resource_tree
    node = tree.find(target)
    if node is None:
        raise NotFound(f"no resource {DICOMWEB_ROOT}/{target.strip('/')}")
    base = dicomweb_root_url(request, container) + "/"
    headers = {"Allow": ", ".join(tree.allow(node))}
    return Response(tree.wadl(base, target, node), media_type=media_type, headers=headers)


@router.options("", responses=_ANSWERS)
async def retrieve_capabilities(
    request: Request, container: ContainerDep, accept: Annotated[str, Header()] = ""
) -> Response:
    """Retrieve Capabilities (PS3.18 8.9) of the service: every resource it has."""
    return _describe(request, container, accept, "")


@router.options("/{path:path}", responses=_ANSWERS)
async def retrieve_resource_capabilities(
    path: str, request: Request, container: ContainerDep, accept: Annotated[str, Header()] = ""
) -> Response:
    """Retrieve Capabilities (PS3.18 8.9, Annex H) of one resource and those below it."""
    return _describe(request, container, accept, path)
