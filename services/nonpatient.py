"""Non-Patient Instance Service HTTP endpoints (PS3.18 Chapter 12), per resource category.

For each ``npi-name`` of Table 12.1.1-1 (``pacsflow.nonpatient.resources``): Store
``POST /{npi-name}`` and ``/{npi-name}/{uid}`` (12.5, ``multipart/related;
type="application/dicom"``, the Store Instances Response as STOW-RS's), Search
``GET /{npi-name}`` (12.6, results as QIDO-RS's) and Retrieve ``GET /{npi-name}/{uid}``
(12.4, the instance in the media types of WADO-RS Retrieve Instance). Each transaction sits
with its Studies twin: store with the ``stow`` role, search with ``qido``, retrieve with
``wado``; the routes are written out per category, so the capability descriptions list them.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any, Literal

from fastapi import Request, Response

from pacsflow.auth import Right
from pacsflow.errors import UnsupportedMediaType
from pacsflow.media.accept import MetadataMedia, choose
from pacsflow.nonpatient.resources import RESOURCES, NpiResource
from pacsflow.query.model import Level
from pacsflow.query.parse import parse_query
from pacsflow.stow.response import StowResult
from services.auth import Audited, guard
from services.common import ContainerDep, SiteDep, dicomweb_root_url
from services.head import Router
from services.openapi import INSTANCE_TYPES, responses
from services.qido import QIDO_QUERY, QIDO_RESULTS, results_response
from services.retrieval import RetrievalDep, respond
from services.stow import STORE_BODY, STORE_RESPONSES, store_response

__all__ = ["retrieve_router", "search_router", "store_router"]

store_router = Router(dependencies=[guard(Right.WRITE, Audited.STORE)])
search_router = Router(dependencies=[guard(Right.READ, Audited.QUERY)])
retrieve_router = Router(dependencies=[guard(Right.READ, Audited.TRANSFER)])
_INSTANCES = responses(INSTANCE_TYPES)
Endpoint = Callable[..., Awaitable[Response]]


def _store(npi: NpiResource, with_uid: bool) -> Endpoint:
    async def store(
        request: Request, container: ContainerDep, site: SiteDep, uid: str | None = None
    ) -> Response:
        async def publish(
            body: AsyncIterator[bytes],
            boundary: str,
            part_type: str,
            consistency: Literal["durable"] | None,
        ) -> StowResult:
            if part_type != "application/dicom":  # 12.5.1.4: pacsflow stores PS3.10 instances
                raise UnsupportedMediaType(
                    f'the {npi} resources store multipart/related; type="application/dicom"'
                )
            service = container.nonpatient
            return await service.store(npi, uid, body, boundary, consistency, site=site)

        limit = container.settings.max_request_bytes
        root = dicomweb_root_url(request, container)
        return await store_response(request, publish, limit, root)

    if not with_uid:

        async def store_all(request: Request, container: ContainerDep, site: SiteDep) -> Response:
            return await store(request, container, site)

        store_all.__doc__ = f"Store {npi} instances (PS3.18 12.5)."
        return store_all
    store.__doc__ = f"Store one {npi} instance at its resource (PS3.18 12.5)."
    return store


def _search(npi: NpiResource) -> Endpoint:
    async def search(request: Request, container: ContainerDep, site: SiteDep) -> Response:
        media = choose(request.headers.get("accept", ""), list(MetadataMedia))
        parameters = list(request.query_params.multi_items())
        most = container.settings.qido_max_results
        query = parse_query(Level.INSTANCE, parameters, default_limit=most, max_limit=most)
        asked = next((int(v) for k, v in parameters if k == "limit"), None)
        root = dicomweb_root_url(request, container)
        result = await container.nonpatient.search(npi, query, site, root, asked=asked)
        return results_response(result, media, root)

    search.__doc__ = f"Search for {npi} instances (PS3.18 12.6)."
    return search


def _retrieve(npi: NpiResource) -> Endpoint:
    async def retrieve(
        uid: str, retrieval: RetrievalDep, container: ContainerDep, request: Request
    ) -> Response:
        return respond(await container.nonpatient.retrieve(npi, uid, retrieval), request)

    retrieve.__doc__ = f"Retrieve one {npi} instance (PS3.18 12.4)."
    return retrieve


def _name(npi: NpiResource) -> str:
    return npi.name.replace("-", "_")


def _register(npi: NpiResource) -> None:
    """The four routes of one category: store (two targets), search and retrieve."""
    every, one, name = f"/{npi.name}", f"/{npi.name}/{{uid}}", _name(npi)
    body: dict[str, Any] = STORE_BODY
    store_router.post(every, name=f"store_{name}", responses=STORE_RESPONSES, openapi_extra=body)(
        _store(npi, with_uid=False)
    )
    store_router.post(
        one, name=f"store_{name}_instance", responses=STORE_RESPONSES, openapi_extra=body
    )(_store(npi, with_uid=True))
    search_router.get(
        every, name=f"search_for_{name}", responses=QIDO_RESULTS, openapi_extra=QIDO_QUERY
    )(_search(npi))
    retrieve_router.get(one, name=f"retrieve_{name}_instance", responses=_INSTANCES)(_retrieve(npi))


for _resource in RESOURCES.values():
    _register(_resource)
