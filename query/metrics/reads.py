"""GetMetricStatistics and ListMetrics over a metric source (spec §2.2, §2.7).

A *metric source* is anything with the ``query(start_ms, end_ms, sql, params)`` of
``store.metrics.MetricStore``: these functions build SQL (``query.metrics.statistics``) and
hand it to the source, so the I/O stays in ``store``. Request bodies are pydantic models here,
so that a route only parses, calls one function and returns its answer.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Sequence
from typing import Any, Protocol

import orjson
import pyarrow as pa
from pydantic import BaseModel, ConfigDict

from core.metric_errors import InvalidParameterValue
from core.timeparse import RangeTimeInput, parse_range_time
from query.metrics.statistic import Simple, Statistic, parse_statistics_request
from query.metrics.statistics import (
    CompiledStatistics,
    Datapoint,
    StatisticsQuery,
    compile_statistics,
)
from query.metrics.window import MAX_STATISTICS_DATAPOINTS, plan_window
from store.metric_model import (
    UNITS,
    canonical_dims,
    dimension_name_problem,
    dimension_value_problem,
    metric_name_problem,
    namespace_problem,
    parse_dimensions,
)
from store.metric_sql import METRIC_ROWS, ListedMetric

__all__ = [
    "MAX_DIMENSION_FILTERS",
    "MAX_LISTED",
    "InvalidNextToken",
    "MetricSource",
    "MetricStatisticsBody",
    "check_metric",
    "check_unit",
    "datapoints_json",
    "decode_token",
    "encode_token",
    "get_metric_statistics",
    "list_metrics",
    "run_series",
    "run_statistics",
]

MAX_LISTED = 500  # ListMetrics page, spec §2.7
MAX_DIMENSION_FILTERS = 10
SNAKE = {
    "SampleCount": "sample_count",
    "Average": "average",
    "Sum": "sum",
    "Minimum": "minimum",
    "Maximum": "maximum",
}


class InvalidNextToken(InvalidParameterValue):
    """Raised when a ``next_token`` is unknown, garbled, expired or from another request."""

    code = "InvalidNextTokenException"


class MetricSource(Protocol):
    def query(
        self,
        start_ms: int,
        end_ms: int,
        sql: str,
        params: Sequence[Any],
        *,
        all_plain: tuple[str, Sequence[Any]] | None = None,
    ) -> pa.Table: ...


class ListingSource(Protocol):
    def list_metrics(
        self,
        *,
        namespace: str | None = None,
        metric_name: str | None = None,
        dimensions: Sequence[tuple[str, str | None]] = (),
        recently_active: bool = False,
        after: tuple[str, str, str] | None = None,
        limit: int = 500,
    ) -> list[ListedMetric]: ...


def run_statistics(
    source: MetricSource, queries: Sequence[StatisticsQuery]
) -> list[list[Datapoint]]:
    """One statement for every query (``compile_statistics``); datapoints per query."""
    ran = _run(source, queries)
    if ran is None:
        return [[] for _ in queries]
    compiled, table = ran
    columns = [table.column(i).to_pylist() for i in range(table.num_columns)]
    return compiled.datapoints(zip(*columns, strict=True))


def run_series(
    source: MetricSource, queries: Sequence[StatisticsQuery]
) -> list[tuple[tuple[int, ...], tuple[float, ...]]]:
    """(timestamps, values) of each query's first statistic, as ``datapoints_to_series``
    would give them, straight from the Arrow columns (GetMetricData asks for one statistic per
    query, and 100 queries over a day bring some 30,000 buckets)."""
    ran = _run(source, queries)
    if ran is None:
        return [((), ()) for _ in queries]
    compiled, table = ran
    return compiled.first_statistic_series(table)


def _run(
    source: MetricSource, queries: Sequence[StatisticsQuery]
) -> tuple[CompiledStatistics, pa.Table] | None:
    """The statement of ``queries`` and its rows; None when no window is readable."""
    readable = [q for q in queries if q.window.readable_from_ms < q.window.end_ms]
    if not readable:
        return None
    compiled = compile_statistics(queries, METRIC_ROWS)
    start_ms = min(q.window.readable_from_ms for q in readable)
    end_ms = max(q.window.end_ms for q in readable)
    table = source.query(
        start_ms, end_ms, compiled.sql, compiled.params, all_plain=compiled.all_plain
    )
    return compiled, table


def check_metric(namespace: str, metric_name: str, dimensions: object) -> str:
    """Validate a metric named in a read; its canonical ``dims``."""
    if problem := namespace_problem(namespace, allow_reserved=True):
        raise InvalidParameterValue(problem, details={"field": "namespace"})
    if problem := metric_name_problem(metric_name):
        raise InvalidParameterValue(problem, details={"field": "metric_name"})
    try:
        return canonical_dims(parse_dimensions(dimensions))
    except ValueError as exc:
        raise InvalidParameterValue(str(exc), details={"field": "dimensions"}) from None


def check_unit(unit: str | None) -> str | None:
    if unit is not None and unit not in UNITS:
        raise InvalidParameterValue(
            f"unit: {unit[:40]!r} is not a unit; use one of {', '.join(sorted(UNITS))}",
            details={"field": "unit"},
        )
    return unit


# ---- GetMetricStatistics --------------------------------------------------------------------


class MetricStatisticsBody(BaseModel):
    model_config = ConfigDict(extra="forbid")
    namespace: str
    metric_name: str
    dimensions: dict[str, Any] | list[Any] | None = None
    start: RangeTimeInput
    end: RangeTimeInput
    period: int
    statistics: list[str] | None = None
    extended_statistics: list[str] | None = None
    unit: str | None = None


def get_metric_statistics(
    source: MetricSource, body: MetricStatisticsBody, *, now_ms: int
) -> dict[str, Any]:
    """GetMetricStatistics: ``{"label", "datapoints": [...]}`` in ascending time order.

    SampleCount, Sum, Average, Minimum and Maximum are exact at every age. Extended statistics
    are exact while the raw samples exist (15 days by default); over rolled-up data (spec §1.8)
    they come from a log-bucket histogram: percentiles within 1 % relative error, the other
    order statistics as ``query.metrics.statistics`` describes.
    """
    dims = check_metric(body.namespace, body.metric_name, body.dimensions)
    statistics = parse_statistics_request(body.statistics, body.extended_statistics)
    window = plan_window(
        parse_range_time(body.start, now_ms=now_ms),
        parse_range_time(body.end, now_ms=now_ms),
        body.period,
        now_ms,
        max_datapoints=MAX_STATISTICS_DATAPOINTS,
    )
    query = StatisticsQuery(
        body.namespace, body.metric_name, dims, window, statistics, check_unit(body.unit)
    )
    ran = _run(source, [query])
    return {
        "label": body.metric_name,
        "datapoints": [] if ran is None else datapoints_json(ran[1], statistics),
    }


def datapoints_json(table: pa.Table, statistics: Sequence[Statistic]) -> list[dict[str, Any]]:
    """GetMetricStatistics datapoints from the rows of a one-query statement: the requested
    simple statistics as fields, the extended ones in a map (None: not computable), the unit.

    What ``CompiledStatistics.datapoints`` gives, turned into JSON, without a ``Datapoint``
    and its dict per bucket on the way (a day at 60 s is 1,440 of them).
    """
    if table.num_rows == 0:
        return []
    columns = [table.column(i).to_pylist() for i in range(table.num_columns)]
    simple = [(i, SNAKE[s.text]) for i, s in enumerate(statistics) if isinstance(s, Simple)]
    extended = [(i, s.text) for i, s in enumerate(statistics) if not isinstance(s, Simple)]
    row_values = CompiledStatistics.row_values
    out: list[dict[str, Any]] = []
    for row in zip(*columns, strict=True):
        values = row_values(statistics, row)
        point: dict[str, Any] = {"timestamp": int(row[1])}
        for i, key in simple:
            point[key] = values[i]
        if extended:
            point["extended_statistics"] = {text: values[i] for i, text in extended}
        point["unit"] = str(row[2])
        out.append(point)
    return out


# ---- ListMetrics ----------------------------------------------------------------------------


def list_metrics(
    source: ListingSource,
    *,
    namespace: str | None,
    metric_name: str | None,
    dimension_filters: Sequence[str],
    recently_active: str | None,
    next_token: str | None,
) -> dict[str, Any]:
    """ListMetrics: up to 500 metrics per page, in (namespace, name, dimensions) order.

    A dimension filter is ``Name=Value`` or ``Name`` (any value); the first ``=`` splits.
    """
    if len(dimension_filters) > MAX_DIMENSION_FILTERS:
        raise InvalidParameterValue(
            f"at most {MAX_DIMENSION_FILTERS} dimension filters, not {len(dimension_filters)}"
        )
    filters = [_dimension_filter(text) for text in dimension_filters]
    if recently_active is not None and recently_active != "PT3H":
        raise InvalidParameterValue(
            f"recently_active: the only value is PT3H, not {recently_active[:20]!r}"
        )
    listed = source.list_metrics(
        namespace=namespace,
        metric_name=metric_name,
        dimensions=filters,
        recently_active=recently_active is not None,
        after=_listing_cursor(next_token) if next_token else None,
        limit=MAX_LISTED + 1,
    )
    page = listed[:MAX_LISTED]
    token = None
    if len(listed) > MAX_LISTED:
        last = page[-1]
        token = encode_token([last.namespace, last.metric_name, last.dims])
    return {
        "metrics": [
            {"namespace": m.namespace, "metric_name": m.metric_name, "dimensions": m.dimensions}
            for m in page
        ],
        "next_token": token,
    }


def _dimension_filter(text: str) -> tuple[str, str | None]:
    name, equals, value = text.partition("=")
    if problem := dimension_name_problem(name):
        raise InvalidParameterValue(f"dimension filter {text[:60]!r}: {problem}")
    if not equals:
        return name, None
    if problem := dimension_value_problem(value):
        raise InvalidParameterValue(f"dimension filter {text[:60]!r}: {problem}")
    return name, value


def _listing_cursor(token: str) -> tuple[str, str, str]:
    decoded = decode_token(token)
    if (
        not isinstance(decoded, list)
        or len(decoded) != 3
        or not all(isinstance(part, str) for part in decoded)
    ):
        raise InvalidNextToken("next_token is not a ListMetrics token")
    return decoded[0], decoded[1], decoded[2]


# ---- tokens ---------------------------------------------------------------------------------


def encode_token(value: Any) -> str:
    """An opaque continuation token holding ``value`` (JSON)."""
    return base64.urlsafe_b64encode(orjson.dumps(value)).decode().rstrip("=")


def decode_token(token: str) -> Any:
    """The value of a token from ``encode_token``; InvalidNextToken for anything else."""
    try:
        return orjson.loads(base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)))
    except (binascii.Error, ValueError, orjson.JSONDecodeError):
        raise InvalidNextToken(
            "next_token is not a token this server gave out; start again without it"
        ) from None
