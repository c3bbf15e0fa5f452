"""QIDO-RS HTTP endpoints (PS3.18 10.6): Search for Studies, Series and Instances.

Six resources under the DICOMweb root; results in ``application/dicom+json`` (PS3.18 Annex F,
the default) or ``multipart/related; type="application/dicom+xml"`` (PS3.19, one part per
result). Every response carries ``X-Total-Count``, the number of all matches; a page cut by
the server's maximum carries ``Warning: 299`` (PS3.18 8.3.4.4).
"""

from __future__ import annotations

import orjson
from fastapi import Request, Response

from pacsflow.auth import Right
from pacsflow.dicom.xml import dataset_to_xml
from pacsflow.media.accept import MetadataMedia, choose
from pacsflow.media.multipart_out import Multipart
from pacsflow.qido.search import SearchResult, search
from pacsflow.query.model import Level
from pacsflow.query.parse import parse_query
from services.auth import Audited, guard
from services.common import ContainerDep, SiteDep, dicomweb_root_url
from services.head import Router
from services.openapi import METADATA_TYPES, QIDO, parameters, responses

__all__ = ["QIDO_QUERY", "QIDO_RESULTS", "TOTAL_HEADER", "results_response", "router"]

router = Router(dependencies=[guard(Right.READ, Audited.QUERY)])
QIDO_RESULTS = responses(METADATA_TYPES)
QIDO_QUERY = parameters(*QIDO)

TOTAL_HEADER = "X-Total-Count"
_TRUNCATED = (
    '"The number of results exceeded the maximum supported by the server.'
    ' Additional results can be requested."'
)


async def _search(
    request: Request,
    container: ContainerDep,
    site: str,
    level: Level,
    study: str | None = None,
    series: str | None = None,
) -> Response:
    """Parse, search, render: the three steps of every Search resource."""
    media = choose(request.headers.get("accept", ""), list(MetadataMedia))
    settings = container.settings
    parameters = list(request.query_params.multi_items())
    query = parse_query(
        level,
        parameters,
        study_uid=study,
        series_uid=series,
        default_limit=settings.qido_max_results,
        max_limit=settings.qido_max_results,
    )
    asked = next((int(v) for k, v in parameters if k == "limit"), None)
    root = dicomweb_root_url(request, container)
    result = await search(container.index, site, query, root, asked=asked)
    return results_response(result, media, root)


def results_response(result: SearchResult, media: MetadataMedia, root: str) -> Response:
    """The results in ``media`` with ``X-Total-Count`` and, when cut, ``Warning: 299``
    (PS3.18 10.6.3, 8.3.4.4); the NPI Search answers the same way (12.6.3)."""
    headers = {TOTAL_HEADER: str(result.total)}
    if result.truncated:
        headers["Warning"] = f"299 {root}: {_TRUNCATED}"
    if media is MetadataMedia.DICOM_XML:
        body = Multipart("application/dicom+xml")
        xml = body.body(dataset_to_xml(dataset) for dataset in result.results)
        return Response(xml, media_type=body.content_type, headers=headers)
    return Response(orjson.dumps(result.results), media_type=media.media_type, headers=headers)


@router.get("/studies", responses=QIDO_RESULTS, openapi_extra=QIDO_QUERY)
async def search_for_studies(request: Request, container: ContainerDep, site: SiteDep) -> Response:
    """Search for Studies (PS3.18 10.6.1.2.1)."""
    return await _search(request, container, site, Level.STUDY)


@router.get("/series", responses=QIDO_RESULTS, openapi_extra=QIDO_QUERY)
async def search_for_all_series(
    request: Request, container: ContainerDep, site: SiteDep
) -> Response:
    """Search for Series of all studies (PS3.18 10.6.1.2.2)."""
    return await _search(request, container, site, Level.SERIES)


@router.get("/studies/{study}/series", responses=QIDO_RESULTS, openapi_extra=QIDO_QUERY)
async def search_for_series(
    study: str, request: Request, container: ContainerDep, site: SiteDep
) -> Response:
    """Search for Series of one study (PS3.18 10.6.1.2.2)."""
    return await _search(request, container, site, Level.SERIES, study)


@router.get("/instances", responses=QIDO_RESULTS, openapi_extra=QIDO_QUERY)
async def search_for_all_instances(
    request: Request, container: ContainerDep, site: SiteDep
) -> Response:
    """Search for Instances of all studies (PS3.18 10.6.1.2.3)."""
    return await _search(request, container, site, Level.INSTANCE)


@router.get("/studies/{study}/instances", responses=QIDO_RESULTS, openapi_extra=QIDO_QUERY)
async def search_for_study_instances(
    study: str, request: Request, container: ContainerDep, site: SiteDep
) -> Response:
    """Search for Instances of one study (PS3.18 10.6.1.2.3)."""
    return await _search(request, container, site, Level.INSTANCE, study)


@router.get(
    "/studies/{study}/series/{series}/instances", responses=QIDO_RESULTS, openapi_extra=QIDO_QUERY
)
async def search_for_instances(
    study: str, series: str, request: Request, container: ContainerDep, site: SiteDep
) -> Response:
    """Search for Instances of one series (PS3.18 10.6.1.2.3)."""
    return await _search(request, container, site, Level.INSTANCE, study, series)
