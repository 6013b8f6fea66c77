"""Recent Logs Insights queries (DescribeQueries) in the DuckDB catalog, so they outlive a
restart. Bounded: at most ``keep`` queries per account and none older than ``max_age_ms``.

Only the request and its last status are kept, never result rows. Plain functions over a
connection, like ``store.saved_queries``, plus ``QueryHistory``, which takes a cursor factory
(``Store.cursor``) and never lets a failure to record fail a query.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import duckdb
import orjson

__all__ = ["HistoryEntry", "QueryHistory", "ensure_schema", "load", "prune", "save", "set_status"]

log = logging.getLogger(__name__)

QUERY_HISTORY_DDL = """
CREATE TABLE IF NOT EXISTS query_history (
    query_id VARCHAR PRIMARY KEY,
    account_id VARCHAR NOT NULL,
    query_string VARCHAR NOT NULL,
    log_groups VARCHAR NOT NULL,  -- JSON list of group names
    status VARCHAR NOT NULL,
    create_ms BIGINT NOT NULL
)
"""
KEEP = 1000
MAX_AGE_MS = 7 * 86_400_000


@dataclass(frozen=True, slots=True)
class HistoryEntry:
    query_id: str
    query_string: str
    groups: tuple[str, ...]
    status: str
    create_ms: int


def ensure_schema(conn: duckdb.DuckDBPyConnection) -> None:
    conn.execute(QUERY_HISTORY_DDL)


def save(conn: duckdb.DuckDBPyConnection, account_id: str, entry: HistoryEntry) -> None:
    conn.execute(
        "INSERT OR REPLACE INTO query_history VALUES (?, ?, ?, ?, ?, ?)",
        [
            entry.query_id,
            account_id,
            entry.query_string,
            orjson.dumps(list(entry.groups)).decode(),
            entry.status,
            entry.create_ms,
        ],
    )


def set_status(conn: duckdb.DuckDBPyConnection, query_id: str, status: str) -> None:
    conn.execute("UPDATE query_history SET status = ? WHERE query_id = ?", [status, query_id])


def load(
    conn: duckdb.DuckDBPyConnection, account_id: str, since_ms: int, limit: int = KEEP
) -> list[HistoryEntry]:
    """The account's queries created since ``since_ms``, newest first."""
    rows = conn.execute(
        "SELECT query_id, query_string, log_groups, status, create_ms FROM query_history "
        "WHERE account_id = ? AND create_ms >= ? ORDER BY create_ms DESC, query_id LIMIT ?",
        [account_id, since_ms, limit],
    ).fetchall()
    return [HistoryEntry(i, q, tuple(orjson.loads(g)), s, ms) for i, q, g, s, ms in rows]


def prune(
    conn: duckdb.DuckDBPyConnection, account_id: str, horizon_ms: int, keep: int = KEEP
) -> None:
    """Forget the account's queries created before ``horizon_ms`` or beyond the newest ``keep``."""
    conn.execute(
        "DELETE FROM query_history WHERE account_id = ? AND (create_ms < ? OR query_id IN ("
        "SELECT query_id FROM query_history WHERE account_id = ? "
        "ORDER BY create_ms DESC, query_id OFFSET ?))",
        [account_id, horizon_ms, account_id, keep],
    )


class QueryHistory:
    """The query service's journal: records each query and its final status."""

    def __init__(
        self,
        cursor: Callable[[], duckdb.DuckDBPyConnection],
        *,
        account_id: str,
        keep: int = KEEP,
        max_age_ms: int = MAX_AGE_MS,
        prune_every: int = 100,
    ) -> None:
        self._cursor = cursor
        self._account_id = account_id
        self._keep = keep
        self._max_age_ms = max_age_ms
        self._prune_every = prune_every
        self._saved = 0

    def recent(self, now_ms: int) -> list[HistoryEntry]:
        """What was recorded within the bounds, newest first (after pruning the rest)."""
        with self._cursor() as conn:
            prune(conn, self._account_id, now_ms - self._max_age_ms, self._keep)
            return load(conn, self._account_id, now_ms - self._max_age_ms, self._keep)

    def record(self, entry: HistoryEntry) -> None:
        self._quietly(self._record, entry)

    def _record(self, entry: HistoryEntry) -> None:
        with self._cursor() as conn:
            save(conn, self._account_id, entry)
            self._saved += 1
            if self._saved % self._prune_every == 0:
                prune(conn, self._account_id, entry.create_ms - self._max_age_ms, self._keep)

    def finish(self, query_id: str, status: str) -> None:
        self._quietly(self._finish, query_id, status)

    def _finish(self, query_id: str, status: str) -> None:
        with self._cursor() as conn:
            set_status(conn, query_id, status)

    def _quietly(self, action: Callable[..., None], *args: Any) -> None:
        # The history is a convenience: a catalog hiccup must not fail or stall a query.
        try:
            action(*args)
        except duckdb.Error as exc:
            log.warning("could not record query history: %s", exc)
