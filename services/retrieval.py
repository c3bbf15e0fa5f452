"""Request plumbing of the WADO routes (PS3.18 10.4, 9), written once as dependencies.

The path names a ``ResourceKey``; Accept, Range, If-None-Match, Cache-Control, the query
parameters, the site and the DICOMweb root make the ``Retrieval``; ``respond`` sends any
``Payload`` back.
"""

from __future__ import annotations

import gzip
from collections.abc import AsyncIterator
from typing import Annotated

from fastapi import Depends, Header, Request, Response
from fastapi.responses import StreamingResponse

from pacsflow.wado.retrieval import Payload, ResourceKey, Retrieval
from pacsflow.wado.service import WadoService
from services.common import ContainerDep, SiteDep, dicomweb_root_url

__all__ = ["InstanceKey", "RetrievalDep", "SeriesKey", "StudyKey", "WadoDep", "respond"]

_GZIP_MIN_BYTES = 1024
# The dependencies are coroutines: a plain ``def`` one would run in a worker thread.


async def _study(study: str) -> ResourceKey:
    return ResourceKey(study)


async def _series(study: str, series: str) -> ResourceKey:
    return ResourceKey(study, series)


async def _instance(study: str, series: str, instance: str) -> ResourceKey:
    return ResourceKey(study, series, instance)


StudyKey = Annotated[ResourceKey, Depends(_study)]
SeriesKey = Annotated[ResourceKey, Depends(_series)]
InstanceKey = Annotated[ResourceKey, Depends(_instance)]


async def _retrieval(
    request: Request,
    container: ContainerDep,
    site: SiteDep,
    accept: Annotated[str, Header()] = "",
    range_: Annotated[str | None, Header(alias="range")] = None,
    if_none_match: Annotated[str | None, Header()] = None,
    cache_control: Annotated[str | None, Header()] = None,
) -> Retrieval:
    # PS3.18 8.3.3.1: the accept query parameter, when given, is used instead of the header.
    asked = [value for name, value in request.query_params.multi_items() if name == "accept"]
    directives = {d.strip().split("=")[0].lower() for d in (cache_control or "").split(",")}
    return Retrieval(
        site=site,
        accept=",".join(asked) if asked else accept,
        range=range_,
        if_none_match=if_none_match,
        parameters=tuple(request.query_params.multi_items()),
        root_url=dicomweb_root_url(request, container),
        no_cache="no-cache" in directives,
    )


RetrievalDep = Annotated[Retrieval, Depends(_retrieval)]


async def _wado(container: ContainerDep) -> WadoService:
    return container.wado


WadoDep = Annotated[WadoService, Depends(_wado)]


def respond(payload: Payload, request: Request) -> Response:
    """The HTTP response of a payload: streamed, or bytes (gzip when compressible and asked)."""
    headers = dict(payload.headers)
    if payload.etag is not None:
        headers["ETag"] = payload.etag
    if payload.status == 304:
        return Response(status_code=304, headers=headers)
    body = payload.body
    if not isinstance(body, bytes):
        if request.method == "HEAD":  # the same headers, and the stream never read on
            body = _nothing(body)
        return StreamingResponse(body, payload.status, headers, payload.content_type)
    encodings = request.headers.get("accept-encoding", "")
    if payload.compressible and len(body) >= _GZIP_MIN_BYTES and "gzip" in encodings:
        body = gzip.compress(body, compresslevel=4)
        headers["Content-Encoding"] = "gzip"
    return Response(body, payload.status, headers, payload.content_type)


async def _nothing(body: AsyncIterator[bytes]) -> AsyncIterator[bytes]:
    """An empty body in place of ``body``, which is closed unread (the answer to a HEAD)."""
    close = getattr(body, "aclose", None)
    if close is not None:
        await close()
    return
    yield  # an async generator that yields nothing
