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

Per bucket, the weighted samples are sorted once; a sample of weight ``w`` whose running total
is ``upto`` holds the ranks ``(upto - w, upto]``, which turns every rank rule of §2.3.2 into
sums over overlaps.
No I/O here.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

from core.metric_errors import InvalidParameterValue
from query.metrics.series import Series
from query.metrics.sql import Sql, join, param, sql
from query.metrics.statistic import Percentile, Simple, Statistic, Trimmed
from query.metrics.window import Window
from store.metric_model import UNITS
from store.metric_sketch import constant_set_sql, opaque_sql, value_sql

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
    queries: Sequence[StatisticsQuery], relation: str = "metrics"
) -> CompiledStatistics:
    """One statement for every query; ``relation`` names the metric table."""
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
    ordered = any(not isinstance(s, Simple) for q in queries for s in q.statistics)
    scans = [
        _scan(w, [queries[i] for i in members], relation, ordered)
        for w, members in enumerate(windows.values())
    ]
    ctes = [
        _series_values(queries, window_of),
        sql("rows AS (\n{}\n)", join("\nUNION ALL\n", scans)),
        Sql(_buckets(ordered)),
    ]
    if ordered:
        ctes += [_stats_values(queries), Sql(_ORDERED)]
    statement = sql(
        "WITH {}\n" + (_SELECT_ORDERED if ordered else _SELECT_SIMPLE), join(",\n", ctes)
    )
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


def _series_values(queries: Sequence[StatisticsQuery], window_of: dict[int, int]) -> Sql:
    return _table(
        "series",
        [
            ("series_id", "INTEGER", list(range(len(queries)))),
            ("window_id", "INTEGER", [window_of[i] for i in range(len(queries))]),
            ("namespace", "VARCHAR", [q.namespace for q in queries]),
            ("metric_name", "VARCHAR", [q.metric_name for q in queries]),
            ("dims", "VARCHAR", [q.dims for q in queries]),
            ("start_ms", "BIGINT", [q.window.start_ms for q in queries]),
            ("period_ms", "BIGINT", [q.window.period_ms for q in queries]),
        ],
    )


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
    return sql(f"{column} IN ({{}})", join(", ", [param(v) for v in sorted(values)]))


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
    lists = ', "values", counts, sketch_keys, sketch_counts' if ordered else ""
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


def _buckets(ordered: bool) -> str:
    # An opaque bucket holds a statistic set of several different values (module docstring).
    opaque = opaque_sql()
    # One aggregation, then the small join to ``series``: within a window every series has the
    # window's start and period, so (window, metric, k) is one (series, bucket). A second
    # GROUP BY after the join (to merge units) cost a pipeline of its own; min = max says
    # whether the bucket holds one unit.
    return f"""grouped AS (
    SELECT window_id, namespace, metric_name, dims, k,
           CASE WHEN min(unit) = max(unit) THEN min(unit) ELSE 'None' END AS unit,
           sum(sample_count) AS n, sum("sum") AS total, min(minimum) AS low, max(maximum) AS high,
           {f"bool_or({opaque})" if ordered else "false"} AS opaque
    FROM rows
    GROUP BY window_id, namespace, metric_name, dims, k
),
buckets AS (
    SELECT s.series_id, s.start_ms + g.k * s.period_ms AS bucket_ms,
           g.unit, g.n, g.total, g.low, g.high, g.opaque
    FROM grouped AS g
    JOIN series AS s USING (window_id, namespace, metric_name, dims)
)"""


# Weighted samples per bucket, each knowing the ranks it holds, then one aggregate per order
# statistic. Percent bounds keep ranks (low_rank, high_rank]; value bounds keep lower < v <= upper.
_ORDERED = f"""series_rows AS (
    SELECT s.series_id, s.start_ms + r.k * s.period_ms AS bucket_ms,
           r.sample_count, r.minimum, r.maximum, r."values", r.counts,
           r.sketch_keys, r.sketch_counts
    FROM rows AS r
    JOIN series AS s USING (window_id, namespace, metric_name, dims)
    WHERE s.series_id IN (SELECT series_id FROM stats)
),
samples AS (
    SELECT series_id, bucket_ms, v, coalesce(w, 1) AS w
    FROM (
        SELECT series_id, bucket_ms, unnest("values") AS v, unnest(counts) AS w
        FROM series_rows
        WHERE len("values") > 0
        UNION ALL
        SELECT series_id, bucket_ms,
               least(greatest({value_sql("key")}, minimum), maximum) AS v, w
        FROM (
            SELECT series_id, bucket_ms, minimum, maximum,
                   unnest(sketch_keys) AS key, unnest(sketch_counts) AS w
            FROM series_rows
            WHERE sketch_keys IS NOT NULL
        )
        UNION ALL
        SELECT series_id, bucket_ms, minimum AS v, sample_count AS w
        FROM series_rows
        WHERE {constant_set_sql()}
    )
),
ranked AS (
    SELECT series_id, bucket_ms, v, w,
           sum(w) OVER (PARTITION BY series_id, bucket_ms ORDER BY v
                        ROWS BETWEEN UNBOUNDED PRECEDING AND CURRENT ROW) AS upto,
           sum(w) OVER (PARTITION BY series_id, bucket_ms) AS n
    FROM samples
),
ranged AS (
    SELECT r.series_id, r.bucket_ms, t.stat_id, t.kind, t.percent, t.lower, t.upper,
           r.v, r.w, r.upto, r.n,
           floor(t.lower * r.n / 10000) AS low_rank,
           ceil(t.upper * r.n / 10000) AS high_rank
    FROM ranked AS r
    JOIN stats AS t ON r.series_id = t.series_id
),
weighed AS (
    SELECT *,
           CASE WHEN percent
                THEN greatest(0, least(upto, high_rank) - greatest(upto - w, low_rank))
                WHEN (lower IS NULL OR v > lower) AND (upper IS NULL OR v <= upper) THEN w
                ELSE 0 END AS kept
    FROM ranged
),
ordered AS (
    SELECT series_id, bucket_ms, stat_id,
           CASE any_value(kind)
             WHEN 'p' THEN coalesce(
                 min(v) FILTER (WHERE upto >= greatest(1, ceil(lower * n / 10000))), max(v))
             WHEN 'TC' THEN sum(kept)
             WHEN 'TS' THEN sum(kept * v)
             WHEN 'TM' THEN sum(kept * v) / nullif(sum(kept), 0)
             WHEN 'PR' THEN 100 * sum(kept) / any_value(n)
             WHEN 'WM' THEN CASE WHEN sum(kept) > 0 THEN (
                 sum(kept * v)
                 + CASE WHEN any_value(percent) THEN any_value(low_rank)
                        ELSE coalesce(sum(w) FILTER (WHERE v <= lower), 0) END
                   * min(v) FILTER (WHERE kept > 0)
                 + CASE WHEN any_value(percent) THEN any_value(n) - any_value(high_rank)
                        ELSE coalesce(sum(w) FILTER (WHERE v > upper), 0) END
                   * max(v) FILTER (WHERE kept > 0)
               ) / any_value(n) END
           END AS value
    FROM weighed
    GROUP BY series_id, bucket_ms, stat_id
)"""

_SELECT_SIMPLE = """SELECT series_id, bucket_ms, unit, n, total, low, high
FROM buckets
ORDER BY series_id, bucket_ms"""

_SELECT_ORDERED = """SELECT b.series_id, b.bucket_ms, b.unit, b.n, b.total, b.low, b.high,
       CASE WHEN NOT b.opaque THEN o.order_values END AS order_values
FROM buckets AS b
LEFT JOIN (
    SELECT series_id, bucket_ms, list(value ORDER BY stat_id) AS order_values
    FROM ordered
    GROUP BY series_id, bucket_ms
) AS o ON o.series_id = b.series_id AND o.bucket_ms = b.bucket_ms
ORDER BY b.series_id, b.bucket_ms"""
