"""``GET /metrics``: the metrics in the Prometheus text format (``pacsflow.telemetry.metrics``).

Beside ``/health``, outside the DICOMweb roots: no PHI is in any metric, and Prometheus
scrapes without a token (restrict it by network, docs/operations.md).
"""

from __future__ import annotations

from fastapi.responses import Response

from pacsflow.telemetry import metrics
from services.head import Router

__all__ = ["router"]

router = Router()


@router.get("/metrics")
async def read_metrics() -> Response:
    """The process's metrics (all of ``serve``'s processes) in the Prometheus text format."""
    return Response(metrics.render(), media_type=metrics.CONTENT_TYPE)
