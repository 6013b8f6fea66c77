"""Period statistics over the metric table, in one DuckDB statement (spec §2.1-§2.3).

``compile_statistics`` turns any number of reads (a metric, a window, some statistics) into one
SQL statement over the relation ``metrics`` (columns of DESIGN.md, Contracts), so that
GetMetricStatistics, all the MetricStat queries of a GetMetricData and a whole alarm tick each
cost one statement. Reads that share a window share one scan, filtered on the metrics they name
and grouped per metric and bucket; the small ``series`` relation (one list parameter per
column) then maps the groups to the reads. SampleCount, Sum, Average, Minimum and Maximum come
from the exact per-row aggregates; only order statistics read the ``values``/``counts`` lists.

How order statistics are computed: every raw row contributes its ``values`` weighted by its
``counts``; a statistic set contributes ``sample_count`` copies of ``minimum`` when it holds one
value or identical values (§1.3), and otherwise makes its bucket *opaque*: no order statistic
there (None), while SampleCount, Sum, Average, Minimum and Maximum stay exact. A rolled-up row
(spec §1.8, ``store.metric_rollup``) contributes its histogram: each bucket's count at the
bucket's representative value (``store.metric_sketch``), clamped to the row's exact minimum and
maximum. What that returns: percentiles are within 1 % (relative) of the exact nearest-rank
value, since the representative of the bucket holding rank r is within 1 % of every value in
it; TM, WM and TS see each sample within 1 %, which bounds them within 1 % when the kept samples
share a sign (a sum of mixed signs may cancel); TC and PR with value bounds may count a sample
within 1 % of a bound on the wrong side of it. Reads of recent data (raw rows) stay exact.

How the order statistics are computed in SQL (one scan when every one is a percentile, the
general plan otherwise) is ``query.metrics.order_sql``'s business. No I/O here.
"""

from __future__ import annotations

from bisect import bisect_right
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc

from core.metric_errors import InvalidParameterValue
from query.metrics.arrow_values import first_values
from query.metrics.order_sql import (
    GENERAL_CTES,
    GENERAL_SELECT,
    percentile_grouped,
    percentile_select,
)
from query.metrics.series import Series
from query.metrics.sql import Sql, join, param, sql
from query.metrics.statistic import Percentile, Simple, Statistic, Trimmed
from query.metrics.window import Window
from store.metric_model import UNITS
from store.metric_sketch import opaque_sql

__all__ = [
    "CompiledStatistics",
    "Datapoint",
    "StatisticsQuery",
    "compile_statistics",
    "datapoints_to_series",
]


@dataclass(frozen=True, slots=True)
class StatisticsQuery:
    """One metric (its full dimension set as ``dims``), one window, 1+ statistics."""

    namespace: str
    metric_name: str
    dims: str
    window: Window
    statistics: tuple[Statistic, ...]
    unit: str | None = None


@dataclass(frozen=True, slots=True)
class Datapoint:
    """One bucket: its start, unit (``None`` when the bucket mixes units) and the statistics.

    ``values`` is keyed by the statistic's text as requested; an order statistic of an opaque
    bucket (statistic sets only, see the module docstring) is None.
    """

    timestamp_ms: int
    unit: str
    sample_count: float
    values: dict[str, float | None] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class CompiledStatistics:
    """SQL for ``queries``: one row per query and bucket (see ``datapoints``)."""

    sql: str
    params: list[Any]
    queries: tuple[StatisticsQuery, ...]

    def datapoints(self, rows: Iterable[Sequence[Any]]) -> list[list[Datapoint]]:
        """Ascending datapoints, one list per query, from the rows of ``sql``.

        A row is (query index, bucket start, unit, SampleCount, Sum, Minimum, Maximum) and,
        when order statistics were asked for, the list of their values in request order.
        """
        result: list[list[Datapoint]] = [[] for _ in self.queries]
        for query_index, bucket_ms, unit, n, total, low, high, *rest in rows:
            simple = {
                "SampleCount": n,
                "Sum": total,
                "Average": total / n,
                "Minimum": low,
                "Maximum": high,
            }
            ordered = iter(rest[0] if rest and rest[0] is not None else ())
            values: dict[str, float | None] = {}
            for statistic in self.queries[query_index].statistics:
                if isinstance(statistic, Simple):
                    values[statistic.text] = float(simple[statistic.text])
                else:
                    value = next(ordered, None)
                    values[statistic.text] = None if value is None else float(value)
            result[query_index].append(Datapoint(int(bucket_ms), str(unit), float(n), values))
        return result

    def first_statistic_series(
        self, table: pa.Table
    ) -> list[tuple[tuple[int, ...], tuple[float, ...]]]:
        """(timestamps, values) per query of its first statistic, from the result of ``sql``:
        what ``datapoints_to_series`` gives from ``datapoints``, without a Python object per
        bucket (points without a value, or with a value that is not finite, are left out)."""
        if table.num_rows == 0:
            return [((), ()) for _ in self.queries]
        value = first_values(table, [q.statistics[0] for q in self.queries])
        kept = pc.fill_null(pc.is_finite(value), False)
        ids = table.column(0).filter(kept).to_pylist()
        buckets = table.column(1).filter(kept).to_pylist()
        values = value.filter(kept).to_pylist()
        out = []
        begin = 0
        for index in range(len(self.queries)):
            end = bisect_right(ids, index, begin)
            out.append((tuple(buckets[begin:end]), tuple(values[begin:end])))
            begin = end
        return out

    def first_statistic(
        self, rows: Iterable[Sequence[Any]]
    ) -> Iterator[tuple[int, int, str, float, float | None]]:
        """(query index, bucket start, unit, SampleCount, value of the query's first statistic)
        per row of ``sql``: what ``datapoints`` gives for that statistic, without a
        ``Datapoint`` and its dict per bucket. Alarm reads ask for one statistic each, and a
        tick of 10,000 alarms reads some 50,000 buckets.
        """
        simple = [
            q.statistics[0].text if isinstance(q.statistics[0], Simple) else None
            for q in self.queries
        ]
        for query_index, bucket_ms, unit, n, total, low, high, *rest in rows:
            match simple[query_index]:
                case None:
                    ordered = rest[0] if rest else None
                    value = ordered[0] if ordered else None
                case "SampleCount":
                    value = n
                case "Sum":
                    value = total
                case "Average":
                    value = total / n
                case "Minimum":
                    value = low
                case _:  # Maximum
                    value = high
            yield (
                query_index,
                int(bucket_ms),
                str(unit),
                float(n),
                None if value is None else float(value),
            )


def datapoints_to_series(
    points: Iterable[Datapoint], statistic: str, period_s: int, label: str = ""
) -> Series:
    """The series of one statistic, as metric math reads a MetricStat query (spec §2.6)."""
    return Series.of(
        ((p.timestamp_ms, v) for p in points if (v := p.values.get(statistic)) is not None),
        period_s,
        label,
    )


def compile_statistics(
    queries: Sequence[StatisticsQuery], relation: str = "metrics", *, fast: bool = True
) -> CompiledStatistics:
    """One statement for every query; ``relation`` names the metric table.

    When every order statistic asked for is a percentile, the statement takes the one-scan
    plan of ``query.metrics.order_sql`` (same answers); ``fast=False`` forces the general plan,
    for tests that compare the two.
    """
    if not queries:
        raise ValueError("compile_statistics needs at least one query")
    if not relation.isidentifier():
        raise ValueError(f"not a plain relation name: {relation!r}")
    for query in queries:
        if query.unit is not None and query.unit not in UNITS:
            raise InvalidParameterValue(f"unknown unit {query.unit!r}")
        if not query.statistics:
            raise InvalidParameterValue("ask for at least one statistic")
    # Queries that share a window share one scan, which groups by metric before any join: a
    # join of every raw row with the query list costs twice the aggregation itself.
    windows: dict[tuple[Any, ...], list[int]] = {}
    for index, q in enumerate(queries):
        key = (q.window.start_ms, q.window.readable_from_ms, q.window.end_ms, q.window.period_ms)
        windows.setdefault(key + (q.unit, q.window.high_resolution_only), []).append(index)
    window_of = {i: w for w, members in enumerate(windows.values()) for i in members}
    # Only order statistics read the value lists: scanning them costs more than the rest.
    order = [s for q in queries for s in q.statistics if not isinstance(s, Simple)]
    percentiles = fast and bool(order) and all(isinstance(s, Percentile) for s in order)
    scans = [
        _scan(w, [queries[i] for i in members], relation, bool(order))
        for w, members in enumerate(windows.values())
    ]
    ctes = [
        _series_values(queries, window_of, percentiles),
        sql("rows AS (\n{}\n)", join("\nUNION ALL\n", scans)),
        Sql(_grouped(percentile_grouped() if percentiles else None, bool(order))),
    ]
    if percentiles:
        body = ",\n" + percentile_select()  # its own last CTE, then the SELECT
    else:
        ctes.append(Sql(_BUCKETS))
        if order:
            ctes += [_stats_values(queries), Sql(GENERAL_CTES)]
        body = "\n" + (GENERAL_SELECT if order else _SELECT_SIMPLE)
    statement = sql("WITH {}" + body, join(",\n", ctes))
    return CompiledStatistics(statement.text, list(statement.params), tuple(queries))


def _table(name: str, columns: list[tuple[str, str, list[Any]]]) -> Sql:
    """A small relation passed as one list parameter per column.

    Planning a VALUES list with a cast parameter per cell took DuckDB about 30 ms more for a
    hundred metrics (measured on this machine), as much as scanning their day of data.
    """
    return sql(
        f"{name} AS (SELECT {', '.join(f'unnest({{}}) AS {c}' for c, _, _ in columns)})",
        *(param(values, f"{sql_type}[]") for _, sql_type, values in columns),
    )


def _series_values(
    queries: Sequence[StatisticsQuery], window_of: dict[int, int], percentiles: bool
) -> Sql:
    columns: list[tuple[str, str, list[Any]]] = [
        ("series_id", "INTEGER", list(range(len(queries)))),
        ("window_id", "INTEGER", [window_of[i] for i in range(len(queries))]),
        ("namespace", "VARCHAR", [q.namespace for q in queries]),
        ("metric_name", "VARCHAR", [q.metric_name for q in queries]),
        ("dims", "VARCHAR", [q.dims for q in queries]),
        ("start_ms", "BIGINT", [q.window.start_ms for q in queries]),
        ("period_ms", "BIGINT", [q.window.period_ms for q in queries]),
    ]
    if percentiles:  # each read's percentiles in basis points, in request order
        bps = [
            [float(s.basis_points) for s in q.statistics if isinstance(s, Percentile)]
            for q in queries
        ]
        columns.append(("bps", "DOUBLE[]", bps))
    return _table("series", columns)


def _stat_row(statistic: Statistic) -> tuple[str, bool, float | None, float | None]:
    """(kind, percent, lower, upper) as the ``stats`` relation holds them."""
    match statistic:
        case Simple():
            return statistic.text, False, None, None
        case Percentile():
            return "p", True, float(statistic.basis_points), None
        case Trimmed():
            lower, upper = statistic.lower, statistic.upper
            return (
                statistic.kind,
                statistic.percent,
                None if lower is None else float(lower),
                None if upper is None else float(upper),
            )


def _stats_values(queries: Sequence[StatisticsQuery]) -> Sql:
    """The order statistics of every query; ``stat_id`` keeps the order of the request."""
    ids = [
        (i, j)
        for i, q in enumerate(queries)
        for j, statistic in enumerate(q.statistics)
        if not isinstance(statistic, Simple)
    ]
    rows = [_stat_row(queries[i].statistics[j]) for i, j in ids]
    return _table(
        "stats",
        [
            ("series_id", "INTEGER", [i for i, _ in ids]),
            ("stat_id", "INTEGER", [j for _, j in ids]),
            ("kind", "VARCHAR", [r[0] for r in rows]),
            ("percent", "BOOLEAN", [r[1] for r in rows]),
            ("lower", "DOUBLE", [r[2] for r in rows]),
            ("upper", "DOUBLE", [r[3] for r in rows]),
        ],
    )


def _one_of(column: str, values: set[str]) -> Sql:
    """A filter the scan can push down; the join to ``series`` keeps only exact metrics."""
    if len(values) == 1:
        return sql(f"{column} = {{}}", param(next(iter(values))))
    ordered = sorted(values)
    if len(ordered) <= _IN_LIST_MAX:
        return sql(f"{column} IN ({{}})", join(", ", [param(v) for v in ordered]))
    # DuckDB evaluates a long IN list as a chain of ORs; one list parameter is a single
    # function, and the range still prunes row groups by their statistics.
    return sql(
        f"{column} >= {{}} AND {column} <= {{}} AND list_contains({{}}, {column})",
        param(ordered[0]),
        param(ordered[-1]),
        param(ordered, "VARCHAR[]"),
    )


_IN_LIST_MAX = 8


def _scan(window_id: int, queries: list[StatisticsQuery], relation: str, ordered: bool) -> Sql:
    """The rows of one window, each with its bucket number ``k`` (bucket = start + k * period)."""
    window, unit = queries[0].window, queries[0].unit
    filters = [
        sql("ts_ms >= {} AND ts_ms < {}", param(window.readable_from_ms), param(window.end_ms)),
        _one_of("namespace", {q.namespace for q in queries}),
        _one_of("metric_name", {q.metric_name for q in queries}),
        _one_of("dims", {q.dims for q in queries}),
    ]
    if unit is not None:
        filters.append(sql("unit = {}", param(unit)))
    if window.high_resolution_only:
        filters.append(Sql("storage_resolution = 1"))
    tiers = window.rollup_resolutions
    filters.append(
        Sql(f"(rollup_s IS NULL OR rollup_s IN ({', '.join(map(str, tiers))}))")
        if tiers
        else Sql("rollup_s IS NULL")
    )
    # Raw rows have no histogram: a window without roll-up tiers need not read those columns.
    sketches = "sketch_keys, sketch_counts" if tiers else _NO_SKETCH
    lists = f', "values", counts, {sketches}' if ordered else ""
    return sql(
        f"""    SELECT {window_id} AS window_id, namespace, metric_name, dims,
           (ts_ms - {{}}) // {{}} AS k, unit,
           sample_count, "sum", minimum, maximum{lists}
    FROM "{relation}"
    WHERE {{}}""",
        param(window.start_ms),
        param(window.period_ms),
        join(" AND ", filters),
    )


def _grouped(percentiles: str | None, ordered: bool) -> str:
    """One aggregation per (window, metric, bucket): within a window every series has the
    window's start and period, so (window, metric, k) is one (series, bucket). ``min = max``
    says whether the bucket holds one unit (a second GROUP BY to merge units cost a pipeline).
    An opaque bucket holds a statistic set of several different values (module docstring).
    """
    extra = percentiles or f"{f'bool_or({opaque_sql()})' if ordered else 'false'} AS opaque"
    return f"""grouped AS (
    SELECT window_id, namespace, metric_name, dims, k,
           CASE WHEN min(unit) = max(unit) THEN min(unit) ELSE 'None' END AS unit,
           sum(sample_count) AS n, sum("sum") AS total, min(minimum) AS low, max(maximum) AS high,
           {extra}
    FROM rows
    GROUP BY window_id, namespace, metric_name, dims, k
)"""


_NO_SKETCH = "NULL::INTEGER[] AS sketch_keys, NULL::DOUBLE[] AS sketch_counts"

_BUCKETS = """buckets AS (
    SELECT s.series_id, s.start_ms + g.k * s.period_ms AS bucket_ms,
           g.unit, g.n, g.total, g.low, g.high, g.opaque
    FROM grouped AS g
    JOIN series AS s USING (window_id, namespace, metric_name, dims)
)"""

_SELECT_SIMPLE = """SELECT series_id, bucket_ms, unit, n, total, low, high
FROM buckets
ORDER BY series_id, bucket_ms"""
