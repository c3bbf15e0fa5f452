"""``GET /metrics``: the metrics in the Prometheus text format (``pacsflow.telemetry.metrics``).

Beside ``/health``, outside the DICOMweb roots: no PHI is in any metric, and Prometheus
scrapes without a token (restrict it by network, docs/operations.md). A process serving QIDO-RS
also gives what the index holds (``Index.totals``), asked at most once a minute: the counts
scan the index, and every replica of the role would ask at each scrape otherwise. A process
serving STOW-RS gives how many ``ingest`` records wait per partition (``Bus.positions``, as
STOW's backpressure reads them): unlike the age of the last record handled, it grows while the
processors are stopped.
"""

from __future__ import annotations

import asyncio
import logging
import time
from typing import Final

from fastapi import Request
from fastapi.responses import Response

from pacsflow.errors import ServiceUnavailable
from pacsflow.pipeline.records import INGEST_GROUP, INGEST_TOPIC
from pacsflow.telemetry import metrics
from services.common import ContainerDep
from services.head import Router

__all__ = ["POSITIONS_SECONDS", "TOTALS_SECONDS", "router"]

log = logging.getLogger(__name__)

router = Router()

TOTALS_SECONDS: Final = 60.0  # how old the index totals of a scrape may be
POSITIONS_SECONDS: Final = 5.0  # the bus's offsets, within Prometheus's default 10 s scrape timeout


@router.get("/metrics")
async def read_metrics(request: Request, container: ContainerDep) -> Response:
    """The process's metrics (all of ``serve``'s processes) in the Prometheus text format."""
    state = request.app.state
    if (
        "qido" in state.roles
        and time.monotonic() - getattr(state, "totals_at", -1e9) >= TOTALS_SECONDS
    ):
        state.totals_at = time.monotonic()
        try:
            totals = await container.index.totals()
            metrics.index_totals(totals.studies, totals.series, totals.instances, totals.bytes)
        except ServiceUnavailable as exc:  # the scrape still answers; the failure is counted
            log.warning("index totals for /metrics: %s", exc)
            metrics.backend_error(exc)
    if "stow" in state.roles:  # the processes that publish to ingest read its positions
        try:
            positions = await asyncio.wait_for(
                container.bus.positions(INGEST_TOPIC, INGEST_GROUP), POSITIONS_SECONDS
            )
            metrics.ingest_behind(positions)
        except (ServiceUnavailable, TimeoutError) as exc:  # the scrape still answers in time
            log.warning("ingest positions for /metrics: %s", exc)
            metrics.backend_error(exc)
    return Response(metrics.render(), media_type=metrics.CONTENT_TYPE)
