"""The catalog: metadata of the lake in a DuckDB database (groups, streams, segments...).

Plain synchronous functions that take a connection (or cursor); the engine serialises writes.
Nothing here touches Parquet or WAL files.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

import duckdb
import orjson

from store.idempotency import KeyRecord, ScopedKey

DDL = """
CREATE SEQUENCE IF NOT EXISTS log_group_ids START 1;
CREATE TABLE IF NOT EXISTS log_groups (
    id BIGINT PRIMARY KEY,
    name VARCHAR NOT NULL UNIQUE,
    created_ms BIGINT NOT NULL,
    retention_days INTEGER,
    flushed_seq BIGINT NOT NULL DEFAULT 0
);
CREATE TABLE IF NOT EXISTS log_streams (
    group_id BIGINT NOT NULL,
    name VARCHAR NOT NULL,
    created_ms BIGINT NOT NULL,
    PRIMARY KEY (group_id, name)
);
CREATE TABLE IF NOT EXISTS segments (
    path VARCHAR PRIMARY KEY,
    group_id BIGINT NOT NULL,
    hour_ms BIGINT NOT NULL,
    min_ts BIGINT NOT NULL,
    max_ts BIGINT NOT NULL,
    min_seq BIGINT NOT NULL,
    max_seq BIGINT NOT NULL,
    row_count BIGINT NOT NULL,
    size_bytes BIGINT NOT NULL,
    columns VARCHAR NOT NULL
);
"""

# An Idempotency-Key is scoped by the caller and the target stream; ``body_sha256`` is NULL for
# keys saved before it was recorded. Rows saved before the scope existed (a table keyed by
# ``key`` alone) are moved into the legacy scope, whose principal, group and stream are ''.
IDEMPOTENCY_DDL = """
CREATE TABLE IF NOT EXISTS idempotency_keys (
    principal VARCHAR NOT NULL,
    log_group VARCHAR NOT NULL,
    log_stream VARCHAR NOT NULL,
    key VARCHAR NOT NULL,
    body_sha256 VARCHAR,
    response VARCHAR NOT NULL,
    seen_ms BIGINT NOT NULL,
    PRIMARY KEY (principal, log_group, log_stream, key)
);
"""


@dataclass(slots=True)
class LogGroup:
    id: int
    name: str
    created_ms: int
    retention_days: int | None
    flushed_seq: int


@dataclass(frozen=True, slots=True)
class Segment:
    """One immutable Parquet file of one group and one hour (``path`` is data-dir relative)."""

    path: str
    group_id: int
    hour_ms: int
    min_ts: int
    max_ts: int
    min_seq: int
    max_seq: int
    row_count: int
    size_bytes: int
    columns: dict[str, str]


def _executemany(conn: duckdb.DuckDBPyConnection, sql: str, rows: list[list[object]]) -> None:
    if rows:  # DuckDB refuses an empty parameter list
        conn.executemany(sql, rows)


def ensure_schema(conn: duckdb.DuckDBPyConnection) -> None:
    conn.execute(DDL)
    _ensure_idempotency_table(conn)


def _ensure_idempotency_table(conn: duckdb.DuckDBPyConnection) -> None:
    columns = {
        row[0]
        for row in conn.execute(
            "SELECT column_name FROM duckdb_columns() "
            "WHERE database_name = current_database() AND schema_name = 'main' "
            "AND table_name = 'idempotency_keys'"
        ).fetchall()
    }
    if not columns or "principal" in columns:
        conn.execute(IDEMPOTENCY_DDL)
        return
    conn.begin()
    try:
        conn.execute("ALTER TABLE idempotency_keys RENAME TO idempotency_keys_unscoped")
        conn.execute(IDEMPOTENCY_DDL)
        conn.execute(
            "INSERT INTO idempotency_keys "
            "SELECT '', '', '', key, NULL, response, seen_ms FROM idempotency_keys_unscoped"
        )
        conn.execute("DROP TABLE idempotency_keys_unscoped")
        conn.commit()
    except BaseException:
        conn.rollback()
        raise


def load_groups(conn: duckdb.DuckDBPyConnection) -> list[LogGroup]:
    rows = conn.execute(
        "SELECT id, name, created_ms, retention_days, flushed_seq FROM log_groups ORDER BY name"
    ).fetchall()
    return [LogGroup(*row) for row in rows]


def insert_group(
    conn: duckdb.DuckDBPyConnection, name: str, created_ms: int, retention_days: int | None
) -> LogGroup:
    row = conn.execute(
        "INSERT INTO log_groups (id, name, created_ms, retention_days) "
        "VALUES (nextval('log_group_ids'), ?, ?, ?) RETURNING id",
        [name, created_ms, retention_days],
    ).fetchone()
    assert row is not None
    return LogGroup(row[0], name, created_ms, retention_days, 0)


def update_retention(conn: duckdb.DuckDBPyConnection, group_id: int, days: int | None) -> None:
    conn.execute("UPDATE log_groups SET retention_days = ? WHERE id = ?", [days, group_id])


def delete_group(conn: duckdb.DuckDBPyConnection, group_id: int) -> None:
    conn.execute("DELETE FROM segments WHERE group_id = ?", [group_id])
    conn.execute("DELETE FROM log_streams WHERE group_id = ?", [group_id])
    conn.execute("DELETE FROM log_groups WHERE id = ?", [group_id])


def load_streams(conn: duckdb.DuckDBPyConnection) -> list[tuple[int, str, int]]:
    return conn.execute("SELECT group_id, name, created_ms FROM log_streams").fetchall()


def insert_streams(
    conn: duckdb.DuckDBPyConnection, group_id: int, names: Iterable[str], created_ms: int
) -> None:
    _executemany(
        conn,
        "INSERT INTO log_streams VALUES (?, ?, ?) ON CONFLICT DO NOTHING",
        [[group_id, name, created_ms] for name in names],
    )


def load_segments(conn: duckdb.DuckDBPyConnection) -> list[Segment]:
    rows = conn.execute(
        "SELECT path, group_id, hour_ms, min_ts, max_ts, min_seq, max_seq, row_count, "
        "size_bytes, columns FROM segments ORDER BY group_id, hour_ms, min_seq"
    ).fetchall()
    return [
        Segment(
            path=row[0],
            group_id=row[1],
            hour_ms=row[2],
            min_ts=row[3],
            max_ts=row[4],
            min_seq=row[5],
            max_seq=row[6],
            row_count=row[7],
            size_bytes=row[8],
            columns=orjson.loads(row[9]),
        )
        for row in rows
    ]


def insert_segments(conn: duckdb.DuckDBPyConnection, segments: Iterable[Segment]) -> None:
    _executemany(
        conn,
        "INSERT INTO segments VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        [
            [
                s.path,
                s.group_id,
                s.hour_ms,
                s.min_ts,
                s.max_ts,
                s.min_seq,
                s.max_seq,
                s.row_count,
                s.size_bytes,
                orjson.dumps(s.columns).decode(),
            ]
            for s in segments
        ],
    )


def delete_segments(conn: duckdb.DuckDBPyConnection, paths: Iterable[str]) -> None:
    _executemany(conn, "DELETE FROM segments WHERE path = ?", [[p] for p in paths])


def set_flushed_seq(conn: duckdb.DuckDBPyConnection, group_id: int, seq: int) -> None:
    conn.execute(
        "UPDATE log_groups SET flushed_seq = greatest(flushed_seq, ?) WHERE id = ?",
        [seq, group_id],
    )


def save_idempotency_keys(
    conn: duckdb.DuckDBPyConnection, entries: Iterable[tuple[KeyRecord, int]]
) -> None:
    """Save (key record, seen_ms) pairs; a key already saved keeps its first answer."""
    _executemany(
        conn,
        "INSERT INTO idempotency_keys VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT DO NOTHING",
        [
            [
                r.scoped.principal,
                r.scoped.group,
                r.scoped.stream,
                r.scoped.key,
                r.body_sha256,
                r.response_json,
                seen_ms,
            ]
            for r, seen_ms in entries
        ],
    )


def load_idempotency_keys(
    conn: duckdb.DuckDBPyConnection, since_ms: int
) -> list[tuple[KeyRecord, int]]:
    rows = conn.execute(
        "SELECT principal, log_group, log_stream, key, body_sha256, response, seen_ms "
        "FROM idempotency_keys WHERE seen_ms >= ?",
        [since_ms],
    ).fetchall()
    return [(KeyRecord(ScopedKey(*row[:4]), row[4], row[5]), row[6]) for row in rows]


def prune_idempotency_keys(conn: duckdb.DuckDBPyConnection, before_ms: int) -> None:
    conn.execute("DELETE FROM idempotency_keys WHERE seen_ms < ?", [before_ms])
