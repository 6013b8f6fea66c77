"""SQL of the metric store: the ``metrics`` relation of a read, and ListMetrics (spec §2.7).

A read sees the Parquet segments that overlap its range plus the memtable, registered as the
Arrow table ``wk_metrics_mem`` (metric-table columns). ListMetrics reads the catalog table
``metric_index`` (flushed metrics) and the same memtable. Builds SQL text and parameters only;
``store.metrics.MetricStore`` runs them.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

__all__ = ["MEMTABLE", "ListedMetric", "list_metrics_sql", "read_sql"]

MEMTABLE = "wk_metrics_mem"


@dataclass(frozen=True, slots=True)
class ListedMetric:
    namespace: str
    metric_name: str
    dims: str  # canonical dimension set, the identity (store.metric_model.canonical_dims)
    dimensions: dict[str, str]


def read_sql(
    sql: str,
    params: Sequence[Any],
    *,
    segment_paths: Sequence[str],
    memory: bool,
    start_ms: int,
    end_ms: int,
) -> tuple[str, list[Any]]:
    """``sql`` (which may begin with its own ``WITH``) over the relation ``metrics``.

    The relation holds the rows of the segments and of ``wk_metrics_mem`` (which the caller
    always registers, empty or not; ``memory`` is kept for callers) with
    ``start_ms <= ts_ms < end_ms``, raw and rolled-up rows alike (``store.metric_model``).
    """
    parts, head = [], []
    if segment_paths:
        # The date=… folders are layout, not data: without hive_partitioning = false DuckDB
        # would add a ``date`` column to the relation. Segments from before the roll-up
        # columns lack them: union_by_name reads them as NULL.
        parts.append(
            "SELECT * FROM read_parquet(?, hive_partitioning = false, union_by_name = true)"
        )
        head.append(list(segment_paths))
    # The memtable (empty or not) always has every column, so the union by name does too.
    parts.append(f"SELECT * FROM {MEMTABLE}")
    relation = (
        f"metrics AS (SELECT * FROM ({' UNION ALL BY NAME '.join(parts)}) "
        "WHERE ts_ms >= ? AND ts_ms < ?)"
    )
    body = sql.lstrip()
    if body[:4].upper() == "WITH" and body[4:5].isspace():
        text = f"WITH {relation}, {body[5:]}"
    else:
        text = f"WITH {relation} {body}"
    return text, [*head, start_ms, end_ms, *params]


def list_metrics_sql(
    *,
    namespace: str | None,
    metric_name: str | None,
    dimensions: Sequence[tuple[str, str | None]],
    since_ms: int | None,
    after: tuple[str, str, str] | None,
    limit: int,
) -> tuple[str, list[Any]]:
    """SQL and parameters giving (namespace, metric_name, dims, dimensions) rows, in order."""
    filters: list[str] = []
    params: list[Any] = []
    if namespace is not None:
        filters.append("namespace = ?")
        params.append(namespace)
    if metric_name is not None:
        filters.append("metric_name = ?")
        params.append(metric_name)
    for name, value in dimensions:
        if value is None:
            filters.append("map_contains(dimensions, ?)")
            params.append(name)
        else:
            filters.append("list_contains(map_extract(dimensions, ?), ?)")
            params += [name, value]
    if after is not None:
        filters.append(
            "(namespace > ? OR (namespace = ? AND (metric_name > ? "
            "OR (metric_name = ? AND dims > ?))))"
        )
        params += [after[0], after[0], after[1], after[1], after[2]]
    where = " AND ".join(filters) or "true"
    recent = "last_ingest_ms >= ?" if since_ms is not None else "true"
    sql = f"""
        SELECT namespace, metric_name, dims, any_value(dimensions) AS dimensions
        FROM (
            SELECT namespace, metric_name, dims, dimensions FROM metric_index WHERE {recent}
            UNION ALL
            SELECT namespace, metric_name, dims, dimensions FROM {MEMTABLE}
        )
        WHERE {where}
        GROUP BY namespace, metric_name, dims
        ORDER BY namespace, metric_name, dims
        LIMIT ?"""
    head = [since_ms] if since_ms is not None else []
    return sql, [*head, *params, limit]
