"""Period statistics over the metric table, in one DuckDB statement (spec §2.1-§2.3).

``compile_statistics`` turns any number of reads (a metric, a window, some statistics) into one
SQL statement over the relation ``metrics`` (columns of DESIGN.md, Contracts), so that
GetMetricStatistics, all the MetricStat queries of a GetMetricData and a whole alarm tick each
cost one statement. Reads that share a window share one scan (two for percentiles: rows flagged
``plain_samples`` apart from the others), filtered on the metrics they name, reading only the
columns the statistics need (``query.metrics.scan_sql``), and grouped per metric and bucket;
the small ``series`` relation (one list parameter per column) then maps the groups to the
reads. SampleCount, Sum, Average, Minimum and Maximum come
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

How the order statistics are computed in SQL (the percentile plan when every one is a
percentile, the general plan otherwise) is ``query.metrics.order_sql``'s business. A statement
with the percentile plan comes with an all-plain variant (``CompiledStatistics.all_plain``), which
the store runs instead when every row it reads is plain. No I/O here.
"""

from __future__ import annotations

from bisect import bisect_right
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc

from core.metric_errors import InvalidParameterValue
from query.metrics import scan_sql
from query.metrics.arrow_values import first_values
from query.metrics.order_sql import (
    GENERAL_CTES,
    GENERAL_SELECT,
    percentile_select,
    plain_percentile_select,
)
from query.metrics.scan_sql import BUCKETS, SELECT_SIMPLE, Needs, Plan, Scope
from query.metrics.series import Series
from query.metrics.sql import Sql, join, param, sql
from query.metrics.statistic import Percentile, Simple, Statistic, Trimmed
from query.metrics.window import Window
from store.metric_model import UNITS
from store.metric_sql import METRIC_OTHER_ROWS, METRIC_ROWS

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


# Where a row of ``CompiledStatistics.sql`` holds each simple statistic (Average is computed).
_SIMPLE_COLUMNS = {"SampleCount": 3, "Sum": 4, "Minimum": 5, "Maximum": 6}


@dataclass(frozen=True, slots=True)
class CompiledStatistics:
    """SQL for ``queries``: one row per query and bucket (see ``datapoints``)."""

    sql: str
    params: list[Any]
    queries: tuple[StatisticsQuery, ...]
    # The same rows when every row read has plain_samples true (``MetricStore.query``).
    all_plain: tuple[str, list[Any]] | None = None

    def datapoints(self, rows: Iterable[Sequence[Any]]) -> list[list[Datapoint]]:
        """Ascending datapoints, one list per query, from the rows of ``sql`` (``row_values``)."""
        result: list[list[Datapoint]] = [[] for _ in self.queries]
        texts = [[s.text for s in q.statistics] for q in self.queries]
        for row in rows:
            query_index, bucket_ms, unit, n = row[:4]
            found = self.row_values(self.queries[query_index].statistics, row)
            values = dict(zip(texts[query_index], found, strict=True))
            result[query_index].append(Datapoint(int(bucket_ms), str(unit), float(n), values))
        return result

    @staticmethod
    def row_values(statistics: Sequence[Statistic], row: Sequence[Any]) -> list[float | None]:
        """The values of ``statistics`` (a query's, in request order, or the first few of
        them) in one row of ``sql``; an order statistic of an opaque bucket is None.

        A row is (query index, bucket start, unit, SampleCount, Sum, Minimum, Maximum) and,
        when order statistics were asked for, the list of their values in request order. Sum,
        Minimum and Maximum are NULL when no query of the statement asked for them.
        """
        ordered = iter(row[7] or ()) if len(row) > 7 else iter(())
        values: list[float | None] = []
        for statistic in statistics:
            if not isinstance(statistic, Simple):
                value = next(ordered, None)
            elif statistic.text == "Average":
                total = row[4]
                value = None if total is None else total / row[3]
            else:
                value = row[_SIMPLE_COLUMNS[statistic.text]]
            values.append(None if value is None else float(value))
        return values

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
        first = [q.statistics[:1] for q in self.queries]
        for row in rows:
            query_index, bucket_ms, unit, n = row[:4]
            (value,) = self.row_values(first[query_index], row)
            yield query_index, int(bucket_ms), str(unit), float(n), value


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
    """One statement for every query; ``relation`` names the metric table, or is the
    metric store's from-item ``METRIC_ROWS`` (what reads of the store pass, see
    ``store.metric_sql``: each scan of a one-window statement then pushes its own filters and
    columns into the files, while a statement of several windows reads the store's ``metrics``).

    When every order statistic asked for is a percentile, the statement takes the one-scan
    plan of ``query.metrics.order_sql`` (same answers); ``fast=False`` forces the general plan,
    for tests that compare the two.
    """
    if not queries:
        raise ValueError("compile_statistics needs at least one query")
    if relation != METRIC_ROWS and not relation.isidentifier():
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
    source = other_source = f'"{relation}"'
    if relation == METRIC_ROWS and len(windows) == 1:
        source, other_source = METRIC_ROWS, METRIC_OTHER_ROWS
    elif relation == METRIC_ROWS:
        # Several windows (an alarm tick) read overlapping rows: the store's CTE ``metrics``,
        # which DuckDB materializes once, costs less than reading the files once per window.
        source = other_source = '"metrics"'
    statistics = [s for q in queries for s in q.statistics]
    plan = _plan(statistics, fast=fast)
    needs = Needs.of(statistics, plan)
    scopes = [
        _scope(w, [queries[i] for i in members]) for w, members in enumerate(windows.values())
    ]
    series = _series_values(queries, window_of, plan in _PERCENTILES)
    if plan is Plan.GENERAL:
        series = join(",\n", [series, _stats_values(queries)])
    statement = _statement(plan, needs, series, scopes, (source, other_source))
    all_plain = None
    if plan is Plan.PERCENTILE:
        plain = _statement(Plan.PLAIN_PERCENTILE, needs, series, scopes, (source, other_source))
        all_plain = (plain.text, list(plain.params))
    return CompiledStatistics(statement.text, list(statement.params), tuple(queries), all_plain)


_PERCENTILES = (Plan.PERCENTILE, Plan.PLAIN_PERCENTILE)


def _statement(
    plan: Plan, needs: Needs, series: Sql, scopes: Sequence[Scope], sources: tuple[str, str]
) -> Sql:
    """``series`` holds the statement's parameter relations (``series``, and ``stats`` for
    the general plan); ``sources`` the from-items of the scans and of the other-row scans."""
    ctes = [series, _union("rows", [scan_sql.scan(s, sources[0], plan, needs) for s in scopes])]
    if plan is Plan.PERCENTILE:
        others = [scan_sql.other_scan(scope, sources[1], needs) for scope in scopes]
        ctes.append(_union("other_rows", others))
    ctes.append(Sql(scan_sql.grouped(plan, needs)))
    if plan is Plan.PERCENTILE:
        body = ",\n" + percentile_select()  # its own last CTE, then the SELECT
    elif plan is Plan.PLAIN_PERCENTILE:
        body = "\n" + plain_percentile_select()
    else:
        ctes.append(Sql(BUCKETS))
        if plan is Plan.GENERAL:
            ctes.append(Sql(GENERAL_CTES))
        body = "\n" + (GENERAL_SELECT if plan is Plan.GENERAL else SELECT_SIMPLE)
    return sql("WITH {}" + body, join(",\n", ctes))


def _union(name: str, scans: list[Sql]) -> Sql:
    return sql(f"{name} AS (\n{{}}\n)", join("\nUNION ALL\n", scans))


def _plan(statistics: Sequence[Statistic], *, fast: bool) -> Plan:
    """Only order statistics read the value lists: scanning them costs more than the rest."""
    order = [s for s in statistics if not isinstance(s, Simple)]
    if not order:
        return Plan.SIMPLE
    if fast and all(isinstance(s, Percentile) for s in order):
        return Plan.PERCENTILE
    return Plan.GENERAL


def _scope(window_id: int, queries: Sequence[StatisticsQuery]) -> Scope:
    return Scope(
        window_id,
        queries[0].window,
        queries[0].unit,
        frozenset(q.namespace for q in queries),
        frozenset(q.metric_name for q in queries),
        frozenset(q.dims for q in queries),
    )


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
