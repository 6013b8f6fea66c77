"""Saved Logs Insights queries (PutQueryDefinition) in the DuckDB catalog.

Plain functions over a connection, like ``iam.keystore``: the caller picks the thread.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Any

import duckdb
import orjson

from core.errors import NotFound

SAVED_QUERIES_DDL = """
CREATE TABLE IF NOT EXISTS query_definitions (
    definition_id VARCHAR PRIMARY KEY,
    name VARCHAR UNIQUE NOT NULL,
    query_string VARCHAR NOT NULL,
    log_groups VARCHAR NOT NULL,  -- JSON list of group names
    updated_ms BIGINT NOT NULL
)
"""


@dataclass(frozen=True, slots=True)
class SavedQuery:
    definition_id: str
    name: str
    query_string: str
    log_groups: list[str]
    updated_ms: int

    def to_json(self) -> dict[str, Any]:
        return {
            "query_definition_id": self.definition_id,
            "name": self.name,
            "query": self.query_string,
            "log_groups": self.log_groups,
            "last_modified": self.updated_ms,
        }


def ensure_schema(conn: duckdb.DuckDBPyConnection) -> None:
    conn.execute(SAVED_QUERIES_DDL)


def put(
    conn: duckdb.DuckDBPyConnection, name: str, query: str, groups: list[str], now_ms: int
) -> tuple[SavedQuery, bool]:
    """Save (or replace) the query called ``name``; return it and whether it is new."""
    row = conn.execute("SELECT definition_id FROM query_definitions WHERE name = ?", [name])
    found = row.fetchone()
    definition_id = found[0] if found else str(uuid.uuid4())
    groups_json = orjson.dumps(groups).decode()
    if found:
        conn.execute(
            "UPDATE query_definitions SET query_string = ?, log_groups = ?, updated_ms = ? "
            "WHERE definition_id = ?",
            [query, groups_json, now_ms, definition_id],
        )
    else:
        conn.execute(
            "INSERT INTO query_definitions VALUES (?, ?, ?, ?, ?)",
            [definition_id, name, query, groups_json, now_ms],
        )
    return SavedQuery(definition_id, name, query, groups, now_ms), found is None


def list_all(conn: duckdb.DuckDBPyConnection, prefix: str = "") -> list[SavedQuery]:
    rows = conn.execute(
        "SELECT * FROM query_definitions WHERE starts_with(name, ?) ORDER BY name", [prefix]
    ).fetchall()
    return [SavedQuery(i, n, q, orjson.loads(g), ms) for i, n, q, g, ms in rows]


def delete(conn: duckdb.DuckDBPyConnection, name: str) -> None:
    row = conn.execute(
        "DELETE FROM query_definitions WHERE name = ? RETURNING name", [name]
    ).fetchone()
    if row is None:
        raise NotFound(f"no saved query named {name!r}", details={"name": name})
