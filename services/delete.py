"""DELETE of studies, series and instances (not in PS3.18; docs/conformance.md, "Deletion").

204 No Content once the pipeline removed the resource from the index and the object store;
202 Accepted while it is on its way (``Prefer: respond-async``, or not applied within
``PACSFLOW_STOW_TIMEOUT_SECONDS``); 404 when the archive holds nothing of it. Needs the
``delete`` right on the site; audited as DICOM Study Deleted (PS3.15 A.5.3.8).
"""

from __future__ import annotations

from fastapi import Request, Response

from pacsflow.auth import Right
from services.auth import Audited, guard
from services.common import ContainerDep, SiteDep
from services.head import Router
from services.openapi import responses

__all__ = ["router"]

router = Router(dependencies=[guard(Right.DELETE, Audited.DELETE)])
_RESPONSES = responses(
    (),
    {
        202: {"description": "accepted: the deletion is on its way through the pipeline"},
        404: {"description": "the archive holds nothing of the resource"},
    },
    status=204,
    description="deleted from the index and the object store",
)


async def _delete(
    request: Request,
    container: ContainerDep,
    site: str,
    study: str,
    series: str | None = None,
    instance: str | None = None,
) -> Response:
    wait = "respond-async" not in request.headers.get("prefer", "").lower()
    deletion = await container.deletion.delete(site, study, series, instance, wait=wait)
    headers = {} if wait else {"Preference-Applied": "respond-async"}
    return Response(status_code=204 if deletion.applied else 202, headers=headers)


@router.delete("/studies/{study}", status_code=204, responses=_RESPONSES)
async def delete_study(
    study: str, request: Request, container: ContainerDep, site: SiteDep
) -> Response:
    """Delete a study: every series and instance of it."""
    return await _delete(request, container, site, study)


@router.delete("/studies/{study}/series/{series}", status_code=204, responses=_RESPONSES)
async def delete_series(
    study: str, series: str, request: Request, container: ContainerDep, site: SiteDep
) -> Response:
    """Delete a series of a study: every instance of it."""
    return await _delete(request, container, site, study, series)


@router.delete(
    "/studies/{study}/series/{series}/instances/{instance}", status_code=204, responses=_RESPONSES
)
async def delete_instance(
    study: str,
    series: str,
    instance: str,
    request: Request,
    container: ContainerDep,
    site: SiteDep,
) -> Response:
    """Delete one instance."""
    return await _delete(request, container, site, study, series, instance)
