"""SQL of the metric store: the ``metrics`` relation of a read, and ListMetrics (spec §2.7).

A read sees the Parquet segments that overlap its range plus the memtable, registered as the
Arrow table ``wk_metrics_mem`` (metric-table columns), as the relation ``metrics`` or the
from-item ``METRIC_ROWS``. ListMetrics reads the catalog table
``metric_index`` (flushed metrics) and the same memtable. Builds SQL text and parameters only;
``store.metrics.MetricStore`` runs them.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

__all__ = [
    "EMPTY",
    "MEMTABLE",
    "METRIC_OTHER_ROWS",
    "METRIC_ROWS",
    "ListedMetric",
    "list_metrics_sql",
    "read_sql",
]

MEMTABLE = "wk_metrics_mem"
PLAIN_PART = "wk_metrics_plain"  # the all-plain segments (plain_samples a constant true)
OTHER_PART = "wk_metrics_segments"  # the other segments
# A part without files: no rows, the metric table's columns (not the memtable's, since a CTE
# that reads the registered Arrow table is materialized).
EMPTY = (
    "SELECT NULL::VARCHAR AS namespace, NULL::VARCHAR AS metric_name, NULL::VARCHAR AS dims, "
    "NULL::MAP(VARCHAR, VARCHAR) AS dimensions, NULL::BIGINT AS ts_ms, NULL::VARCHAR AS unit, "
    "NULL::INTEGER AS storage_resolution, NULL::DOUBLE AS sample_count, NULL::DOUBLE AS sum, "
    'NULL::DOUBLE AS minimum, NULL::DOUBLE AS maximum, NULL::DOUBLE[] AS "values", '
    "NULL::DOUBLE[] AS counts, NULL::INTEGER AS rollup_s, NULL::INTEGER[] AS sketch_keys, "
    "NULL::DOUBLE[] AS sketch_counts, NULL::BOOLEAN AS plain_samples WHERE false"
)
# A from-item for statements over the relation of ``read_sql``: every row of its range, and
# memtable rows outside it too, so each scan filters ``ts_ms`` itself. Inlined at each use,
# unlike the CTE ``metrics``, so every scan pushes its own filters and columns down: a scan of
# ``plain_samples IS NOT TRUE`` leaves out the all-plain segments when DuckDB plans it.
METRIC_ROWS = (
    f"(SELECT * FROM {PLAIN_PART} UNION ALL BY NAME SELECT * FROM {OTHER_PART} "
    f"UNION ALL BY NAME SELECT * FROM {MEMTABLE})"
)
# The rows of METRIC_ROWS outside the all-plain segments: a superset of those whose
# plain_samples is not true. A scan of those need not bind (open) the all-plain segments.
METRIC_OTHER_ROWS = f"(SELECT * FROM {OTHER_PART} UNION ALL BY NAME SELECT * FROM {MEMTABLE})"


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
    plain_segment_paths: Sequence[str] = (),
) -> tuple[str, list[Any]]:
    """``sql`` (which may begin with its own ``WITH``) over the relation ``metrics``.

    The relation holds the rows of the segments and of ``wk_metrics_mem`` (which the caller
    always registers, empty or not; ``memory`` is kept for callers) with
    ``start_ms <= ts_ms < end_ms``, raw and rolled-up rows alike (``store.metric_model``).
    ``plain_segment_paths`` are segments whose every row has ``plain_samples`` true (the
    catalog's ``plain``).

    ``metrics`` suits a statement that reads it once. DuckDB materializes a CTE that holds
    the registered Arrow memtable (it will not inline one), so a statement that scans the
    table several times, each scan with its own filters and columns, reads ``METRIC_ROWS``
    instead (see there).
    """
    # The date=… folders are layout, not data: without hive_partitioning = false DuckDB would
    # add a ``date`` column to the relation. Segments from before the roll-up columns (or the
    # flag) lack them: union_by_name reads them as NULL.
    scan = "read_parquet(?, hive_partitioning = false, union_by_name = true)"
    in_range = "WHERE ts_ms >= ? AND ts_ms < ?"
    # All-plain segments were written with the whole of METRIC_SCHEMA (the flag came last),
    # so they need no union_by_name, which reads every file's footer each time a scan binds
    # the part. A column added to the schema later must bring union_by_name back here.
    # Their rows are raw (no roll-up columns) by the flag's definition: as constants, filters
    # on those columns fold away and the columns are not read.
    plain = (
        "SELECT * REPLACE (true AS plain_samples, NULL::INTEGER AS rollup_s, "
        "NULL::INTEGER[] AS sketch_keys, NULL::DOUBLE[] AS sketch_counts) "
        f"FROM read_parquet(?, hive_partitioning = false) {in_range}"
    )
    other = f"SELECT * FROM {scan} {in_range}"
    head: list[Any] = []
    if plain_segment_paths:
        head += [list(plain_segment_paths), start_ms, end_ms]
    if segment_paths:
        head += [list(segment_paths), start_ms, end_ms]
    relations = (
        f"{PLAIN_PART} AS NOT MATERIALIZED ({plain if plain_segment_paths else EMPTY}), "
        f"{OTHER_PART} AS NOT MATERIALIZED ({other if segment_paths else EMPTY}), "
        f"metrics AS (SELECT * FROM {METRIC_ROWS} {in_range})"
    )
    body = sql.lstrip()
    if body[:4].upper() == "WITH" and body[4:5].isspace():
        text = f"WITH {relations}, {body[5:]}"
    else:
        text = f"WITH {relations} {body}"
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
