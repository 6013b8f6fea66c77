"""SQL of order statistics for ``query.metrics.statistics`` (spec §2.3.2). No I/O here.

Two plans, same answers:

- **General** (``GENERAL_CTES``, ``GENERAL_SELECT``): every weighted sample of a bucket, sorted
  once in a window function; a sample of weight ``w`` whose running total is ``upto`` holds
  the ranks ``(upto - w, upto]``, which turns every rank rule of §2.3.2 into sums over
  overlaps, one aggregate per statistic of the ``stats`` relation.
- **Percentiles only** (``percentile_select``), when every order statistic of the statement
  is a ``pNN``: one aggregation (``query.metrics.scan_sql``), which gathers each bucket's
  samples into lists: values of count 1 from rows flagged ``plain_samples``, the other raw
  ``values`` with their ``counts``, and the samples of roll-up histograms and constant
  statistic sets as (value, weight) pairs. When every count is 1 and there are no such pairs
  (raw data as it usually is), the sorted values are the samples and
  the nearest rank ``r = max(1, ceil(q * n))`` is an index into them. Otherwise the bucket
  sorts (value, weight) pairs and walks their running weight until it reaches ``r``
  (``list_reduce``): the first sample whose running total reaches the rank, as the general
  plan's ``min(v) FILTER (WHERE upto >= rank)``, and the largest when none does.
  ``series.bps`` holds each read's percentiles in basis points, in request order.
"""

from __future__ import annotations

from store.metric_sketch import constant_set_sql, value_sql

__all__ = ["GENERAL_CTES", "GENERAL_SELECT", "percentile_select", "plain_percentile_select"]


def percentile_select() -> str:
    """The rows of the statement (see ``CompiledStatistics.datapoints``) from ``grouped``.

    ``grouped`` holds per bucket ``sv`` (samples of count 1), ``bv``/``bc`` (other raw values
    and their counts) and ``wp`` (histogram and constant-set samples as (value, weight)), as
    ``query.metrics.scan_sql`` builds them.
    """
    rank = "greatest(1, ceil(bp * {n} / 10000))"
    unit_rank = rank.format(n="len(g.su)")
    weighed_rank = rank.format(n="g.wn")
    unit = (
        "coalesce(len(wp), 0) = 0 "
        "AND coalesce(list_min(bc), 1) = 1 AND coalesce(list_max(bc), 1) = 1"
    )
    return f"""weighed AS (
    SELECT *, list_sum(list_transform(ws, lambda p: p.w)) AS wn
    FROM (
        SELECT *,
               CASE WHEN {unit} THEN list_sort(CASE WHEN coalesce(len(bv), 0) = 0 THEN sv
                                                    ELSE list_concat(sv, bv) END) END AS su,
               CASE WHEN NOT ({unit}) THEN list_sort(list_concat(
                   list_transform(sv, lambda x: {{'v': x, 'w': 1.0::DOUBLE}}),
                   list_transform(bv, lambda x, i: {{'v': x, 'w': coalesce(bc[i], 1.0)::DOUBLE}}),
                   wp)) END AS ws
        FROM grouped
    )
)
SELECT s.series_id, s.start_ms + g.k * s.period_ms AS bucket_ms,
       g.unit, g.n, g.total, g.low, g.high,
       CASE WHEN NOT g.opaque THEN CASE
           WHEN g.ws IS NULL THEN list_transform(s.bps,
               lambda bp: g.su[{unit_rank}::BIGINT])
           WHEN len(g.ws) > 0 THEN list_transform(s.bps, lambda bp: list_reduce(g.ws,
               lambda acc, x: CASE WHEN acc.w >= {weighed_rank} THEN acc
                                   ELSE {{'v': x.v, 'w': acc.w + x.w}} END).v)
       END END AS order_values
FROM weighed AS g
JOIN series AS s USING (window_id, namespace, metric_name, dims)
ORDER BY s.series_id, bucket_ms"""


def plain_percentile_select() -> str:
    """``percentile_select`` when every sample has count 1: ``grouped.sv`` is all of them."""
    return """SELECT s.series_id, s.start_ms + g.k * s.period_ms AS bucket_ms,
       g.unit, g.n, g.total, g.low, g.high,
       list_transform(s.bps, lambda bp: g.su[greatest(1, ceil(bp * len(g.su) / 10000))::BIGINT])
           AS order_values
FROM (SELECT *, list_sort(sv) AS su FROM grouped) AS g
JOIN series AS s USING (window_id, namespace, metric_name, dims)
ORDER BY s.series_id, bucket_ms"""


# Weighted samples per bucket, each knowing the ranks it holds, then one aggregate per order
# statistic. Percent bounds keep ranks (low_rank, high_rank]; value bounds keep lower < v <= upper.
GENERAL_CTES = f"""series_rows AS (
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

GENERAL_SELECT = """SELECT b.series_id, b.bucket_ms, b.unit, b.n, b.total, b.low, b.high,
       CASE WHEN NOT b.opaque THEN o.order_values END AS order_values
FROM buckets AS b
LEFT JOIN (
    SELECT series_id, bucket_ms, list(value ORDER BY stat_id) AS order_values
    FROM ordered
    GROUP BY series_id, bucket_ms
) AS o ON o.series_id = b.series_id AND o.bucket_ms = b.bucket_ms
ORDER BY b.series_id, b.bucket_ms"""
