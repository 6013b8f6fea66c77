"""GetMetricData (spec §2.4-§2.6): several metrics and metric math in one request, paginated.

Every ``metric_stat`` query is fetched in one statement (``reads.run_series``); the
expressions are evaluated over those series (``math.evaluate_expressions``). Pagination walks
the datapoints of all returned series in time order (newest first for
``TimestampDescending``); the token records where the last page stopped, together with the
resolved window, so that relative times such as ``-3h`` do not move between pages. A request
that returns a math expression is answered in one page (§2.5). No I/O here but the source's.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal

import orjson
import pyarrow as pa
import pyarrow.compute as pc
from pydantic import BaseModel, ConfigDict, Field

from core.metric_errors import (
    InvalidParameterCombination,
    InvalidParameterValue,
    MetricMathError,
)
from core.timeparse import RangeTimeInput, parse_range_time
from query.metrics.math import MathContext, SeriesResult, evaluate_expressions
from query.metrics.math_parse import MAX_EXPRESSION_CHARS, check_query_id, parse_expression
from query.metrics.reads import (
    InvalidNextToken,
    MetricSource,
    check_metric,
    check_unit,
    decode_token,
    encode_token,
    run_series,
)
from query.metrics.series import Series
from query.metrics.statistic import parse_statistic
from query.metrics.statistics import StatisticsQuery
from query.metrics.window import check_period, plan_window

__all__ = ["MAX_DATAPOINTS", "MAX_QUERIES", "MetricDataBody", "get_metric_data"]

MAX_QUERIES = 500
MAX_DATAPOINTS = 100_800
TOKEN_TTL_MS = 15 * 60_000


class MetricModel(BaseModel):
    model_config = ConfigDict(extra="forbid")
    namespace: str
    metric_name: str
    dimensions: dict[str, Any] | list[Any] | None = None


class MetricStatModel(BaseModel):
    model_config = ConfigDict(extra="forbid")
    metric: MetricModel
    period: int
    stat: str
    unit: str | None = None


class DataQueryModel(BaseModel):
    model_config = ConfigDict(extra="forbid")
    id: str
    metric_stat: MetricStatModel | None = None
    expression: str | None = None
    label: str | None = None
    return_data: bool = True
    period: int | None = None
    account_id: str | None = None


class MetricDataBody(BaseModel):
    model_config = ConfigDict(extra="forbid")
    metric_data_queries: list[DataQueryModel]
    start: RangeTimeInput
    end: RangeTimeInput
    scan_by: Literal["TimestampDescending", "TimestampAscending"] = "TimestampDescending"
    max_datapoints: int = Field(default=MAX_DATAPOINTS, ge=1, le=MAX_DATAPOINTS)
    next_token: str | None = None


@dataclass(frozen=True, slots=True)
class _Result:
    id: str
    label: str
    series: Series


@dataclass(frozen=True, slots=True)
class _Cursor:
    start_ms: int
    end_ms: int
    now_ms: int
    position: tuple[int, int] | None  # (timestamp, result index) of the last point sent


def get_metric_data(
    source: MetricSource, body: MetricDataBody, *, now_ms: int, account_id: str
) -> dict[str, Any]:
    """GetMetricData: ``{"metric_data_results": [...], "messages": [], "next_token"}``."""
    queries = body.metric_data_queries
    _check_queries(queries, account_id)
    fingerprint = _fingerprint(body)
    if body.next_token:
        cursor = _decode_cursor(body.next_token, fingerprint, now_ms)
    else:
        start_ms = parse_range_time(body.start, now_ms=now_ms)
        end_ms = parse_range_time(body.end, now_ms=now_ms)
        if start_ms >= end_ms:
            raise InvalidParameterValue("the start time must be before the end time")
        cursor = _Cursor(start_ms, end_ms, now_ms, None)
    results = _results(source, queries, cursor)
    descending = body.scan_by == "TimestampDescending"
    if any(q.expression is not None and q.return_data for q in queries):
        total = sum(len(r.series.timestamps) for r in results)
        if total > MAX_DATAPOINTS:
            raise InvalidParameterValue(
                f"the math expressions of this request return {total} datapoints, more than "
                f"{MAX_DATAPOINTS}: ask for a larger period or a shorter window"
            )
        return _page(results, descending, None, total, None, now_ms)
    return _page(results, descending, cursor, body.max_datapoints, fingerprint, now_ms)


def _check_queries(queries: Sequence[DataQueryModel], account_id: str) -> None:
    if not 1 <= len(queries) <= MAX_QUERIES:
        raise InvalidParameterValue(
            f"metric_data_queries must hold 1 to {MAX_QUERIES} queries, not {len(queries)}"
        )
    seen: set[str] = set()
    for query in queries:
        check_query_id(query.id)
        if query.id in seen:
            raise InvalidParameterValue(f"the query id {query.id!r} is used twice")
        seen.add(query.id)
        if (query.metric_stat is None) == (query.expression is None):
            raise InvalidParameterCombination(
                f"query {query.id}: give exactly one of metric_stat and expression"
            )
        if query.account_id is not None and query.account_id != account_id:
            raise InvalidParameterValue(
                f"query {query.id}: cross-account reads are not supported; account_id must be "
                f"{account_id} or left out"
            )
        if query.period is not None:
            check_period(query.period)
        if query.expression is not None:
            if len(query.expression) > MAX_EXPRESSION_CHARS:
                raise MetricMathError(
                    f"the expression has more than {MAX_EXPRESSION_CHARS} characters",
                    query_id=query.id,
                )
            try:
                parse_expression(query.expression)
            except MetricMathError as error:
                raise MetricMathError(
                    error.reason, query_id=query.id, column=error.column
                ) from None


def _results(
    source: MetricSource, queries: Sequence[DataQueryModel], cursor: _Cursor
) -> list[_Result]:
    """Every returned series, in request order (an array expression gives several)."""
    stats = [q for q in queries if q.metric_stat is not None]
    series = _fetch(source, stats, cursor)
    expressions = {q.id: q.expression for q in queries if q.expression is not None}
    wanted = [q.id for q in queries if q.expression is not None and q.return_data]
    periods = [q.metric_stat.period for q in stats if q.metric_stat is not None]
    periods += [q.period for q in queries if q.period is not None]
    context = MathContext(
        metrics=series,
        expressions=expressions,
        start_ms=cursor.start_ms,
        end_ms=cursor.end_ms,
        now_ms=cursor.now_ms,
        default_period_s=periods[0] if periods else 60,
    )
    evaluated: dict[str, SeriesResult] = evaluate_expressions(context, wanted) if wanted else {}
    results: list[_Result] = []
    for query in queries:
        if not query.return_data:
            continue
        if query.id in series:
            results.append(_Result(query.id, series[query.id].label, series[query.id]))
            continue
        value = evaluated[query.id]
        label = query.label or query.id
        members = value if isinstance(value, tuple) else (value,)
        for member in members:
            own = member.label if isinstance(value, tuple) and query.label is None else ""
            results.append(_Result(query.id, own or label, member))
    return results


def _fetch(
    source: MetricSource, stats: Sequence[DataQueryModel], cursor: _Cursor
) -> dict[str, Series]:
    reads = []
    for query in stats:
        stat = query.metric_stat
        assert stat is not None
        metric = stat.metric
        dims = check_metric(metric.namespace, metric.metric_name, metric.dimensions)
        window = plan_window(cursor.start_ms, cursor.end_ms, stat.period, cursor.now_ms)
        statistic = parse_statistic(stat.stat)
        reads.append(
            StatisticsQuery(
                metric.namespace,
                metric.metric_name,
                dims,
                window,
                (statistic,),
                check_unit(stat.unit),
            )
        )
    fetched = run_series(source, reads) if reads else []
    out: dict[str, Series] = {}
    for query, read, (timestamps, values) in zip(stats, reads, fetched, strict=True):
        label = query.label or read.metric_name
        out[query.id] = Series(timestamps, values, read.window.period_s, label)
    return out


def _page(
    results: list[_Result],
    descending: bool,
    cursor: _Cursor | None,
    limit: int,
    fingerprint: str | None,
    now_ms: int,
) -> dict[str, Any]:
    """The next ``limit`` datapoints after the cursor, across every result, in scan order."""
    sign = -1 if descending else 1
    # The order of sorted((sign * t, index, v)) over every point, sorted by Arrow.
    points = pa.table(
        {
            "key": pa.array([sign * t for r in results for t in r.series.timestamps], pa.int64()),
            "owner": pa.array(
                [i for i, r in enumerate(results) for _ in r.series.timestamps], pa.int64()
            ),
            "value": pa.array([v for r in results for v in r.series.values], pa.float64()),
        }
    )
    if cursor is not None and cursor.position is not None:
        after_key, after_index = sign * cursor.position[0], cursor.position[1]
        key, owner = points.column("key"), points.column("owner")
        points = points.filter(
            pc.or_(
                pc.greater(key, after_key),
                pc.and_(pc.equal(key, after_key), pc.greater(owner, after_index)),
            )
        )
    points = points.take(
        pc.sort_indices(
            points, [("key", "ascending"), ("owner", "ascending"), ("value", "ascending")]
        )
    )
    page = points.slice(0, limit)
    timestamps: list[list[int]] = [[] for _ in results]
    values: list[list[float]] = [[] for _ in results]
    page_keys, page_owners = page.column("key").to_pylist(), page.column("owner").to_pylist()
    for key_, index, value in zip(
        page_keys, page_owners, page.column("value").to_pylist(), strict=True
    ):
        timestamps[index].append(sign * key_)
        values[index].append(value)
    pending = set(pc.unique(points.column("owner").slice(limit)).to_pylist())
    token = None
    if points.num_rows > limit and cursor is not None and fingerprint is not None:
        token = encode_token(
            {
                "f": fingerprint,
                "s": cursor.start_ms,
                "e": cursor.end_ms,
                "n": cursor.now_ms,
                "x": now_ms + TOKEN_TTL_MS,
                "p": [sign * page_keys[-1], page_owners[-1]],
            }
        )
    return {
        "metric_data_results": [
            {
                "id": result.id,
                "label": result.label,
                "timestamps": timestamps[index],
                "values": values[index],
                "status_code": "PartialData" if index in pending else "Complete",
                "messages": [],
            }
            for index, result in enumerate(results)
        ],
        "messages": [],
        "next_token": token,
    }


def _fingerprint(body: MetricDataBody) -> str:
    """What a token is bound to: the request without its paging members."""
    shape = body.model_dump(exclude={"next_token", "max_datapoints"})
    return hashlib.sha256(orjson.dumps(shape, option=orjson.OPT_SORT_KEYS)).hexdigest()[:24]


def _decode_cursor(token: str, fingerprint: str, now_ms: int) -> _Cursor:
    value = decode_token(token)
    try:
        if value["f"] != fingerprint:
            raise InvalidNextToken(
                "next_token belongs to another request: repeat the request that gave it, "
                "changing only max_datapoints"
            )
        if value["x"] < now_ms:
            raise InvalidNextToken("next_token has expired (15 minutes); start again without it")
        position = (int(value["p"][0]), int(value["p"][1]))
        return _Cursor(int(value["s"]), int(value["e"]), int(value["n"]), position)
    except (KeyError, TypeError, ValueError, IndexError):
        raise InvalidNextToken("next_token is not a GetMetricData token") from None
