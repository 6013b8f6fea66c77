"""HTTP routes that read metrics: GetMetricStatistics, GetMetricData, ListMetrics.

Each parses its body or query string, calls one function of ``query.metrics`` in a worker thread
(DuckDB runs there, never on the event loop) and returns its answer. Reads name no target
resource, so IAM decides them on ``*`` (spec audit §9).
"""

from __future__ import annotations

import asyncio
import time
from typing import Annotated, Any

from fastapi import APIRouter, Query, Request

from core.errors import Unavailable
from core.operations import Operation, operation
from query.metrics.get_data import MetricDataBody, get_metric_data
from query.metrics.reads import MetricStatisticsBody, get_metric_statistics, list_metrics
from store.metrics import MetricStore

router = APIRouter(prefix="/api/v1/metrics", tags=["metrics"])


# No target resource: IAM decides on ``*`` (spec audit §9), as for DescribeLogGroups.
GET_METRIC_STATISTICS = Operation(
    "GetMetricStatistics", "cloudwatch:GetMetricStatistics", True, False
)
GET_METRIC_DATA = Operation("GetMetricData", "cloudwatch:GetMetricData", True, False)
LIST_METRICS = Operation("ListMetrics", "cloudwatch:ListMetrics", True, False)


def _store(request: Request) -> MetricStore:
    store = getattr(request.app.state, "metrics", None)
    if store is None:
        raise Unavailable("the metric store is not open on this server", retry_after_s=5)
    return store  # type: ignore[no-any-return]


def _now_ms() -> int:
    return int(time.time() * 1000)


@router.post("/statistics")
@operation(GET_METRIC_STATISTICS)
async def metric_statistics(request: Request, body: MetricStatisticsBody) -> dict[str, Any]:
    """GetMetricStatistics: statistics of one metric per period bucket, oldest first."""
    return await asyncio.to_thread(get_metric_statistics, _store(request), body, now_ms=_now_ms())


@router.post("/query")
@operation(GET_METRIC_DATA)
async def metric_data(request: Request, body: MetricDataBody) -> dict[str, Any]:
    """GetMetricData: several metrics and metric-math expressions, paginated."""
    account_id = request.app.state.settings.account_id
    return await asyncio.to_thread(
        get_metric_data, _store(request), body, now_ms=_now_ms(), account_id=account_id
    )


@router.get("")
@operation(LIST_METRICS)
async def metrics(
    request: Request,
    namespace: str | None = None,
    metric_name: str | None = None,
    dimension: Annotated[
        list[str] | None, Query(description="Name=Value, or Name for any value; up to 10")
    ] = None,
    recently_active: Annotated[str | None, Query(description="PT3H")] = None,
    next_token: str | None = None,
) -> dict[str, Any]:
    """ListMetrics: metrics by namespace, name and dimensions, 500 per page."""
    return await asyncio.to_thread(
        list_metrics,
        _store(request),
        namespace=namespace,
        metric_name=metric_name,
        dimension_filters=dimension or [],
        recently_active=recently_active,
        next_token=next_token or None,
    )
