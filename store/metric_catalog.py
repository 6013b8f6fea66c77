"""The metric side of the catalog: segments, the flush watermark, the metric index.

These tables live in the same DuckDB database as the log catalog (one database per data
directory, since DuckDB allows one process). Plain synchronous functions that take a cursor;
``store.metrics.MetricStore`` serialises the writes. Nothing here touches Parquet or WAL files.

- ``metric_segments``: one row per Parquet file of the metric table (path relative to the data
  directory, its UTC day, min/max ``ts_ms``, rows, bytes, and ``resolution_s``, the finest
  granularity of its rows: 1 when it holds high-resolution raw rows, 60 for standard raw rows,
  else the roll-up tier; the roll-up job picks its work by it without opening files), and
  ``plain``: every row of the file has ``plain_samples`` true (``store.metric_model``), so a
  read may take the flag as a constant and skip the file in its scan of the other rows.
- ``metric_state``: one row, ``flushed_seq``: every WAL batch up to this sequence number is in
  Parquet, so replay skips it.
- ``metric_index``: one row per metric (namespace, name, dimension set) with the newest datapoint
  time and the newest ingestion time, for ListMetrics.
- ``metric_idempotency_keys``: ``Idempotency-Key`` of flushed metric batches (24 h).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

import duckdb
import pyarrow as pa

DDL = """
CREATE TABLE IF NOT EXISTS metric_segments (
    path VARCHAR PRIMARY KEY,
    day_ms BIGINT NOT NULL,
    min_ts BIGINT NOT NULL,
    max_ts BIGINT NOT NULL,
    row_count BIGINT NOT NULL,
    size_bytes BIGINT NOT NULL
);
CREATE TABLE IF NOT EXISTS metric_state (
    id INTEGER PRIMARY KEY,
    flushed_seq BIGINT NOT NULL
);
-- Catalogs from before roll-ups: 1 is "may hold anything", so the job looks at them once.
ALTER TABLE metric_segments ADD COLUMN IF NOT EXISTS resolution_s INTEGER DEFAULT 1;
-- Catalogs from before the flag: false is "not known to be plain", which is always safe.
ALTER TABLE metric_segments ADD COLUMN IF NOT EXISTS plain BOOLEAN DEFAULT false;
INSERT INTO metric_state VALUES (1, 0) ON CONFLICT DO NOTHING;
CREATE TABLE IF NOT EXISTS metric_index (
    namespace VARCHAR NOT NULL,
    metric_name VARCHAR NOT NULL,
    dims VARCHAR NOT NULL,
    dimensions MAP(VARCHAR, VARCHAR) NOT NULL,
    last_ts_ms BIGINT NOT NULL,
    last_ingest_ms BIGINT NOT NULL,
    PRIMARY KEY (namespace, metric_name, dims)
);
"""


@dataclass(frozen=True, slots=True)
class MetricSegment:
    """One immutable Parquet file of the metric table, within one UTC day."""

    path: str  # relative to the data directory
    day_ms: int
    min_ts: int
    max_ts: int
    row_count: int
    size_bytes: int
    resolution_s: int = 1  # finest granularity of its rows (module docstring)
    plain: bool = False  # every row's plain_samples is true (module docstring)


def ensure_schema(conn: duckdb.DuckDBPyConnection) -> None:
    conn.execute(DDL + IDEMPOTENCY_DDL)


def load_segments(conn: duckdb.DuckDBPyConnection) -> list[MetricSegment]:
    rows = conn.execute(
        "SELECT path, day_ms, min_ts, max_ts, row_count, size_bytes, resolution_s, "
        "coalesce(plain, false) FROM metric_segments ORDER BY day_ms, min_ts"
    ).fetchall()
    return [MetricSegment(*row) for row in rows]


def insert_segments(conn: duckdb.DuckDBPyConnection, segments: Iterable[MetricSegment]) -> None:
    rows = [
        [s.path, s.day_ms, s.min_ts, s.max_ts, s.row_count, s.size_bytes, s.resolution_s, s.plain]
        for s in segments
    ]
    if rows:  # DuckDB refuses an empty parameter list
        conn.executemany(
            "INSERT INTO metric_segments (path, day_ms, min_ts, max_ts, row_count, size_bytes, "
            "resolution_s, plain) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            rows,
        )


def delete_segments(conn: duckdb.DuckDBPyConnection, paths: Iterable[str]) -> None:
    rows = [[p] for p in paths]
    if rows:
        conn.executemany("DELETE FROM metric_segments WHERE path = ?", rows)


def flushed_seq(conn: duckdb.DuckDBPyConnection) -> int:
    row = conn.execute("SELECT flushed_seq FROM metric_state WHERE id = 1").fetchone()
    return int(row[0]) if row else 0


def set_flushed_seq(conn: duckdb.DuckDBPyConnection, seq: int) -> None:
    conn.execute(
        "UPDATE metric_state SET flushed_seq = greatest(flushed_seq, ?) WHERE id = 1", [seq]
    )


def upsert_index(conn: duckdb.DuckDBPyConnection, rows: pa.Table) -> None:
    """Record the metrics of ``rows`` (metric-table columns plus ``ingest_ms``)."""
    if rows.num_rows == 0:
        return
    conn.register("wk_index_rows", rows)
    try:
        conn.execute(
            """INSERT INTO metric_index
            SELECT namespace, metric_name, dims, any_value(dimensions),
                   max(ts_ms), max(ingest_ms)
            FROM wk_index_rows
            GROUP BY namespace, metric_name, dims
            ON CONFLICT (namespace, metric_name, dims) DO UPDATE SET
                last_ts_ms = greatest(last_ts_ms, excluded.last_ts_ms),
                last_ingest_ms = greatest(last_ingest_ms, excluded.last_ingest_ms)"""
        )
    finally:
        conn.unregister("wk_index_rows")


def prune_index(conn: duckdb.DuckDBPyConnection, before_ms: int) -> int:
    """Forget metrics whose newest datapoint is older than ``before_ms``; return how many."""
    row = conn.execute(
        "DELETE FROM metric_index WHERE last_ts_ms < ? RETURNING 1", [before_ms]
    ).fetchall()
    return len(row)


# ---- Idempotency-Key of metric batches (apart from the log store's keys) ----------------------

IDEMPOTENCY_DDL = """
CREATE TABLE IF NOT EXISTS metric_idempotency_keys (
    key VARCHAR PRIMARY KEY,
    response VARCHAR NOT NULL,
    seen_ms BIGINT NOT NULL
);
"""


def save_idempotency_keys(
    conn: duckdb.DuckDBPyConnection, entries: Iterable[tuple[str, str, int]]
) -> None:
    rows = [list(e) for e in entries]
    if rows:
        conn.executemany(
            "INSERT INTO metric_idempotency_keys VALUES (?, ?, ?) ON CONFLICT DO NOTHING", rows
        )


def load_idempotency_keys(
    conn: duckdb.DuckDBPyConnection, since_ms: int
) -> list[tuple[str, str, int]]:
    return conn.execute(
        "SELECT key, response, seen_ms FROM metric_idempotency_keys WHERE seen_ms >= ?",
        [since_ms],
    ).fetchall()


def prune_idempotency_keys(conn: duckdb.DuckDBPyConnection, before_ms: int) -> None:
    conn.execute("DELETE FROM metric_idempotency_keys WHERE seen_ms < ?", [before_ms])
