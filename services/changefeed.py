"""Change feed HTTP endpoints: ``GET /changefeed`` and ``GET /changefeed/latest``.

The shape of Azure's DICOM change feed (docs/operations.md lists the differences); entries of
the request's site only, for a token with the read right on it.
"""

from __future__ import annotations

import orjson
from fastapi import Request, Response

from pacsflow.auth import Right
from pacsflow.changefeed.read import FeedWindow, latest_entry, read_feed
from services.auth import Audited, guard
from services.common import ContainerDep, SiteDep
from services.head import Router

__all__ = ["router"]

router = Router(dependencies=[guard(Right.READ, Audited.QUERY)])

_JSON = "application/json"


@router.get("/changefeed")
async def read_change_feed(request: Request, container: ContainerDep, site: SiteDep) -> Response:
    """Entries in sequence order from ``startSequence`` (or after ``offset``), ``limit`` of them."""
    window = FeedWindow.parse(list(request.query_params.multi_items()))
    entries = await read_feed(container.index, site, window)
    return Response(orjson.dumps(entries), media_type=_JSON)


@router.get("/changefeed/latest")
async def read_latest_change(request: Request, container: ContainerDep, site: SiteDep) -> Response:
    """The entry with the highest sequence; ``{"Sequence": 0}`` while the feed is empty."""
    window = FeedWindow.parse(list(request.query_params.multi_items()))
    entry = await latest_entry(container.index, site, window.include_metadata)
    return Response(orjson.dumps(entry or {"Sequence": 0}), media_type=_JSON)
