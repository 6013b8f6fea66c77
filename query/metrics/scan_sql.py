"""The ``rows`` and ``grouped`` CTEs of ``query.metrics.statistics``: what each window scans.

A statement reads only the columns its statistics need, because the scan of the Parquet
segments is most of its cost and ``sum``, ``minimum``, ``maximum`` and ``values`` are the wide
columns (one distinct double per row; ``sample_count``, ``unit`` and ``counts`` are nearly
constant and cost little):

- **Simple** statistics read ``sample_count`` and, only when asked for, ``sum`` (Sum,
  Average), ``minimum`` and ``maximum``.
- **Percentiles only** (``PERCENTILE``) scan each window twice. Rows whose ``plain_samples`` is
  true (``store.metric_model``: their samples are their ``values``, each counted once) give
  ``values`` as ``av`` and nothing else (``rows``); ``minimum``, ``maximum``, ``counts`` and the
  sketch columns are read only by the scan of the other rows (``other_rows``, where
  ``plain_samples IS NOT TRUE``: weighted values, statistic sets, roll-ups, and rows from
  before the flag), whose ``values`` and ``counts`` come as ``bv``/``bc`` and whose histograms
  and constant sets come as (value, weight) pairs ``wp``. Row-group statistics on the flag (and
  the store's all-plain segments, where the flag is a constant) let that second scan skip most
  of the data.
- **Plain percentiles** (``PLAIN_PERCENTILE``): the statement the store runs instead of the
  percentile plan's when every row it reads is plain (``MetricStore.query``'s ``all_plain``):
  the first scan alone, one row per sample when no Sum is needed (``_unnests``).
- **General** (other order statistics): one scan of every column, for ``order_sql``'s
  window-function plan.

No I/O here.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from enum import Enum

from query.metrics.sql import Sql, join, param, sql
from query.metrics.statistic import Simple, Statistic
from query.metrics.window import Window
from store.metric_sketch import constant_set_sql, opaque_sql, value_sql

__all__ = ["BUCKETS", "SELECT_SIMPLE", "Needs", "Plan", "Scope", "grouped", "other_scan", "scan"]


class Plan(Enum):
    SIMPLE = "simple"  # no order statistic
    PERCENTILE = "percentile"  # order statistics, every one a percentile
    PLAIN_PERCENTILE = "plain percentile"  # the same, over rows whose plain_samples are true
    GENERAL = "general"


@dataclass(frozen=True, slots=True)
class Needs:
    """The wide per-row aggregates some statistic of the statement reads."""

    total: bool
    low: bool
    high: bool

    @classmethod
    def of(cls, statistics: Sequence[Statistic], plan: Plan) -> Needs:
        if plan is Plan.GENERAL:
            return cls(True, True, True)
        texts = {s.text for s in statistics if isinstance(s, Simple)}
        return cls(
            total=bool(texts & {"Sum", "Average"}),
            low="Minimum" in texts,
            high="Maximum" in texts,
        )


@dataclass(frozen=True, slots=True)
class Scope:
    """What one window reads: its metrics, its unit, its window (``statistics`` groups them)."""

    window_id: int
    window: Window
    unit: str | None
    namespaces: frozenset[str]
    metric_names: frozenset[str]
    dims: frozenset[str]


def scan(scope: Scope, source: str, plan: Plan, needs: Needs) -> Sql:
    """The SELECT of one window for the ``rows`` CTE (the plain rows, in the percentile plan);
    ``source`` is a from-item (a quoted relation name, or ``store.metric_sql.METRIC_ROWS``)."""
    head, where = _head(scope), _where(scope, source)
    wide = _wide(needs)
    if plan is Plan.SIMPLE:
        return sql("{}" + wide + "\n    {}", head, where)
    if plan is Plan.GENERAL:
        lists = f', "values", counts, {_sketches(scope)}'
        return sql("{}" + ', "sum", minimum, maximum' + lists + "\n    {}", head, where)
    # PERCENTILE and PLAIN_PERCENTILE: the plain rows
    values = '"values"'
    if _unnests(plan, needs):
        values = 'unnest("values")'
    return sql("{}" + wide + f", {values} AS av\n    {{}} AND plain_samples", head, where)


def _unnests(plan: Plan, needs: Needs) -> bool:
    """Whether the plain scan gives one row per sample rather than per datum.

    Aggregating doubles costs less than aggregating lists (a fifth of a 100-metric
    GetMetricData), but a row per sample repeats ``sum``: only a statement that needs no Sum
    may (``minimum``, ``maximum`` and ``unit`` do not mind; the count of plain samples is the
    count of rows).
    """
    return plan is Plan.PLAIN_PERCENTILE and not needs.total


def other_scan(scope: Scope, source: str, needs: Needs) -> Sql:
    """The SELECT of one window for the ``other_rows`` CTE of the percentile plan: every
    column their samples need, read only where such rows are."""
    columns = ', "sum", minimum, maximum, "values", counts, ' + _sketches(scope)
    return sql(
        "    SELECT window_id, namespace, metric_name, dims, k, unit, sample_count"
        + _wide(needs)
        + ', "values" AS bv, counts AS bc, '
        f"CASE WHEN {_others()} THEN {_other_pairs()} END AS wp, {opaque_sql()} AS opaque\n"
        "    FROM (\n{}" + columns + "\n    {} AND plain_samples IS NOT TRUE\n    )",
        _head(scope),
        _where(scope, source),
    )


def _head(scope: Scope) -> Sql:
    return sql(
        f"""    SELECT {scope.window_id} AS window_id, namespace, metric_name, dims,
           (ts_ms - {{}}) // {{}} AS k, unit, sample_count""",
        param(scope.window.start_ms),
        param(scope.window.period_ms),
    )


def _where(scope: Scope, source: str) -> Sql:
    return sql(f"FROM {source}\n    WHERE {{}}", _filters(scope))


def _wide(needs: Needs) -> str:
    wanted = (('"sum"', needs.total), ("minimum", needs.low), ("maximum", needs.high))
    return "".join(f", {column}" for column, yes in wanted if yes)


def _sketches(scope: Scope) -> str:
    """Raw rows have no histogram: a window without roll-up tiers need not read those columns."""
    return "sketch_keys, sketch_counts" if scope.window.rollup_resolutions else _NO_SKETCH


def _filters(scope: Scope) -> Sql:
    window = scope.window
    filters = [
        sql("ts_ms >= {} AND ts_ms < {}", param(window.readable_from_ms), param(window.end_ms)),
        _one_of("namespace", scope.namespaces),
        _one_of("metric_name", scope.metric_names),
        _one_of("dims", scope.dims),
    ]
    if scope.unit is not None:
        filters.append(sql("unit = {}", param(scope.unit)))
    if window.high_resolution_only:
        filters.append(Sql("storage_resolution = 1"))
    tiers = window.rollup_resolutions
    filters.append(
        Sql(f"(rollup_s IS NULL OR rollup_s IN ({', '.join(map(str, tiers))}))")
        if tiers
        else Sql("rollup_s IS NULL")
    )
    return join(" AND ", filters)


def _one_of(column: str, values: frozenset[str]) -> Sql:
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
_NO_SKETCH = "NULL::INTEGER[] AS sketch_keys, NULL::DOUBLE[] AS sketch_counts"
_PAIRS = "STRUCT(v DOUBLE, w DOUBLE)[]"


def _others() -> str:
    """Rows whose samples are not in ``values``: roll-up histograms and constant sets."""
    return f"(sketch_keys IS NOT NULL OR {constant_set_sql()})"


def _other_pairs() -> str:
    """The (value, weight) samples of such a row (``store.metric_sketch``)."""
    sketch_value = f"least(greatest({value_sql('key')}, minimum), maximum)"
    return f"""list_concat(
               CASE WHEN sketch_keys IS NOT NULL THEN list_transform(sketch_keys,
                   lambda key, i: {{'v': {sketch_value},
                                    'w': coalesce(sketch_counts[i], 1.0)::DOUBLE}}) END,
               CASE WHEN {constant_set_sql()}
                    THEN [{{'v': minimum, 'w': sample_count::DOUBLE}}] END)::{_PAIRS}"""


def grouped(plan: Plan, needs: Needs) -> str:
    """One aggregation per (window, metric, bucket): within a window every series has the
    window's start and period, so (window, metric, k) is one (series, bucket). ``min = max``
    says whether the bucket holds one unit (a second GROUP BY to merge units cost a pipeline).
    An opaque bucket holds a statistic set of several different values (``statistics``).
    Aggregates nobody asked for are NULL.

    The percentile plan aggregates its plain rows and its other rows apart (lists of NULLs for
    the absent kind cost a fifth of the statement) and joins the two per bucket.
    """
    if plan is Plan.PERCENTILE:
        return _grouped_percentile(needs)
    unnested = _unnests(plan, needs)
    extra = {
        Plan.SIMPLE: "false AS opaque",
        Plan.GENERAL: f"bool_or({opaque_sql()}) AS opaque",
        Plan.PLAIN_PERCENTILE: "false AS opaque, "
        + ("list(av) AS sv" if unnested else "flatten(list(av)) AS sv"),
    }[plan]
    n = "count(*)::DOUBLE" if unnested else "sum(sample_count)"
    return f"""grouped AS (
    SELECT {_KEYS},
           CASE WHEN min(unit) = max(unit) THEN min(unit) ELSE 'None' END AS unit,
           {n} AS n, {_aggregates(needs)},
           {extra}
    FROM rows
    GROUP BY {_KEYS}
)"""


def _aggregates(needs: Needs) -> str:
    total = 'sum("sum")' if needs.total else "NULL::DOUBLE"
    low = "min(minimum)" if needs.low else "NULL::DOUBLE"
    high = "max(maximum)" if needs.high else "NULL::DOUBLE"
    return f"{total} AS total, {low} AS low, {high} AS high"


def _grouped_percentile(needs: Needs) -> str:
    common = f"""SELECT {_KEYS}, min(unit) AS unit_low, max(unit) AS unit_high,
           sum(sample_count) AS n, {_aggregates(needs)}"""
    total = "coalesce(p.total, 0) + coalesce(o.total, 0)" if needs.total else "NULL::DOUBLE"
    # least and greatest skip NULLs: a bucket without one of the two kinds of rows.
    return f"""plain_grouped AS (
    {common}, flatten(list(av)) AS sv
    FROM rows
    GROUP BY {_KEYS}
),
other_grouped AS (
    {common}, bool_or(opaque) AS opaque,
           flatten(list(bv)) AS bv, flatten(list(bc)) AS bc, flatten(list(wp)) AS wp
    FROM other_rows
    GROUP BY {_KEYS}
),
grouped AS (
    SELECT {_KEYS},
           CASE WHEN least(p.unit_low, o.unit_low) = greatest(p.unit_high, o.unit_high)
                THEN least(p.unit_low, o.unit_low) ELSE 'None' END AS unit,
           coalesce(p.n, 0) + coalesce(o.n, 0) AS n, {total} AS total,
           least(p.low, o.low) AS low, greatest(p.high, o.high) AS high,
           coalesce(o.opaque, false) AS opaque, coalesce(p.sv, []) AS sv,
           coalesce(o.bv, []) AS bv, coalesce(o.bc, []) AS bc, o.wp
    FROM plain_grouped AS p
    FULL JOIN other_grouped AS o USING ({_KEYS})
)"""


_KEYS = "window_id, namespace, metric_name, dims, k"


BUCKETS = """buckets AS (
    SELECT s.series_id, s.start_ms + g.k * s.period_ms AS bucket_ms,
           g.unit, g.n, g.total, g.low, g.high, g.opaque
    FROM grouped AS g
    JOIN series AS s USING (window_id, namespace, metric_name, dims)
)"""

SELECT_SIMPLE = """SELECT series_id, bucket_ms, unit, n, total, low, high
FROM buckets
ORDER BY series_id, bucket_ms"""
