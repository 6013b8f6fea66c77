"""Alarms in the DuckDB catalog: states, history, API-created alarms and API silences.

Plain methods over a cursor factory (``Store.cursor``): each call takes a fresh cursor, so the
scheduler thread and request threads never share one. History is kept 30 days, also for
deleted alarms (spec §5.9); ``DescribeAlarmHistory`` pages newest first by default.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import duckdb
import orjson
import pyarrow as pa

from alarms.state import AlarmStatus, Runtime, iso_ms
from core.errors import BadRequest

__all__ = [
    "HISTORY_TYPES",
    "AlarmStore",
    "HistoryItem",
    "HistoryPage",
    "HistoryQuery",
    "InvalidNextToken",
]

HISTORY_TYPES = ("ConfigurationUpdate", "StateUpdate", "Action")
HISTORY_RETENTION_MS = 30 * 86_400_000
MAX_SUMMARY = 255
MAX_DATA = 4_095

_DDL = (
    """
    CREATE TABLE IF NOT EXISTS alarm_state (
        name VARCHAR PRIMARY KEY,
        kind VARCHAR NOT NULL,
        state VARCHAR NOT NULL,
        reason VARCHAR NOT NULL,
        reason_data VARCHAR NOT NULL,  -- JSON
        updated_ms BIGINT NOT NULL,
        transitioned_ms BIGINT,
        evaluation_state VARCHAR,
        runtime VARCHAR NOT NULL       -- JSON of alarms.state.Runtime
    )
    """,
    "CREATE SEQUENCE IF NOT EXISTS alarm_history_seq",
    """
    CREATE TABLE IF NOT EXISTS alarm_history (
        seq BIGINT NOT NULL,
        alarm_name VARCHAR NOT NULL,
        alarm_type VARCHAR NOT NULL,
        ts_ms BIGINT NOT NULL,
        item_type VARCHAR NOT NULL,
        summary VARCHAR NOT NULL,
        data VARCHAR NOT NULL
    )
    """,
    """
    CREATE TABLE IF NOT EXISTS alarm_definitions (
        name VARCHAR PRIMARY KEY,
        document VARCHAR NOT NULL,  -- the alarm as in a rule file, as JSON
        updated_ms BIGINT NOT NULL
    )
    """,
    """
    CREATE TABLE IF NOT EXISTS alarm_silences (
        id VARCHAR PRIMARY KEY,
        document VARCHAR NOT NULL,
        created_ms BIGINT NOT NULL
    )
    """,
)

_STATE_SCHEMA = pa.schema(
    [
        ("name", pa.string()),
        ("kind", pa.string()),
        ("state", pa.string()),
        ("reason", pa.string()),
        ("reason_data", pa.string()),
        ("updated_ms", pa.int64()),
        ("transitioned_ms", pa.int64()),
        ("evaluation_state", pa.string()),
        ("runtime", pa.string()),
    ]
)


class InvalidNextToken(BadRequest):
    code = "InvalidNextToken"


@dataclass(frozen=True, slots=True)
class HistoryItem:
    alarm_name: str
    alarm_type: str  # MetricAlarm or CompositeAlarm
    ts_ms: int
    item_type: str  # one of HISTORY_TYPES
    summary: str
    data: dict[str, Any]

    def to_json(self) -> dict[str, Any]:
        return {
            "alarm_name": self.alarm_name,
            "alarm_type": self.alarm_type,
            "timestamp": iso_ms(self.ts_ms),
            "type": self.item_type,
            "summary": self.summary,
            "data": self.data,
        }


@dataclass(frozen=True, slots=True)
class HistoryQuery:
    """The filters of DescribeAlarmHistory."""

    name: str | None = None
    alarm_types: Sequence[str] = ()
    item_type: str | None = None
    start_ms: int | None = None
    end_ms: int | None = None
    max_records: int = 100
    next_token: str | None = None
    oldest_first: bool = False


@dataclass(frozen=True, slots=True)
class HistoryPage:
    items: list[HistoryItem]
    next_token: str | None


class AlarmStore:
    def __init__(self, cursor: Callable[[], duckdb.DuckDBPyConnection]) -> None:
        self._cursor = cursor

    def ensure_schema(self) -> None:
        with self._cursor() as conn:
            for statement in _DDL:
                conn.execute(statement)

    # ---- states

    def load_states(self) -> dict[str, AlarmStatus]:
        with self._cursor() as conn:
            rows = conn.execute(
                "SELECT name, kind, state, reason, reason_data, updated_ms, transitioned_ms, "
                "evaluation_state, runtime FROM alarm_state"
            ).fetchall()
        return {
            row[0]: AlarmStatus(
                name=row[0],
                kind=row[1],
                state=row[2],
                reason=row[3],
                reason_data=orjson.loads(row[4]),
                updated_ms=row[5],
                transitioned_ms=row[6],
                evaluation_state=row[7],
                runtime=Runtime.from_json(orjson.loads(row[8])),
            )
            for row in rows
        }

    def save_states(
        self, statuses: Iterable[AlarmStatus], conn: duckdb.DuckDBPyConnection | None = None
    ) -> None:
        """Upsert in one statement: an evaluation round writes thousands of rows at once.

        The batch is built column by column and the runtime serialised by orjson straight from
        the dataclass (``Runtime.from_json`` reads it back): per-row dicts and
        ``dataclasses.asdict`` cost more than the upsert itself at 10,000 rows.
        """
        saved = list(statuses)
        if not saved:
            return
        columns = {
            "name": [s.name for s in saved],
            "kind": [s.kind for s in saved],
            "state": [s.state for s in saved],
            "reason": [s.reason for s in saved],
            "reason_data": [orjson.dumps(s.reason_data).decode() for s in saved],
            "updated_ms": [s.updated_ms for s in saved],
            "transitioned_ms": [s.transitioned_ms for s in saved],
            "evaluation_state": [s.evaluation_state for s in saved],
            "runtime": [orjson.dumps(s.runtime).decode() for s in saved],
        }
        batch = pa.table(columns, schema=_STATE_SCHEMA)
        with self._using(conn) as cur:
            cur.register("alarm_state_batch", batch)
            cur.execute("INSERT OR REPLACE INTO alarm_state SELECT * FROM alarm_state_batch")
            cur.unregister("alarm_state_batch")

    def delete_states(self, names: Iterable[str]) -> None:
        gone = list(names)
        if gone:
            with self._cursor() as conn:
                conn.execute("DELETE FROM alarm_state WHERE list_contains(?, name)", [gone])

    # ---- history

    def append_history(
        self, items: Sequence[HistoryItem], conn: duckdb.DuckDBPyConnection | None = None
    ) -> None:
        if not items:
            return
        batch = pa.table(
            {
                "alarm_name": [item.alarm_name for item in items],
                "alarm_type": [item.alarm_type for item in items],
                "ts_ms": pa.array([item.ts_ms for item in items], pa.int64()),
                "item_type": [item.item_type for item in items],
                "summary": [item.summary[:MAX_SUMMARY] for item in items],
                "data": [_bounded_json(item.data) for item in items],
            }
        )
        with self._using(conn) as cur:
            cur.register("alarm_history_batch", batch)
            cur.execute(
                "INSERT INTO alarm_history SELECT nextval('alarm_history_seq'), * "
                "FROM alarm_history_batch"
            )
            cur.unregister("alarm_history_batch")

    def history(self, query: HistoryQuery) -> HistoryPage:
        where: list[str] = ["TRUE"]
        params: list[Any] = []
        if query.name is not None:
            where.append("alarm_name = ?")
            params.append(query.name)
        if query.alarm_types:
            where.append("list_contains(?, alarm_type)")
            params.append(list(query.alarm_types))
        if query.item_type is not None:
            where.append("item_type = ?")
            params.append(query.item_type)
        if query.start_ms is not None:
            where.append("ts_ms >= ?")
            params.append(query.start_ms)
        if query.end_ms is not None:
            where.append("ts_ms <= ?")
            params.append(query.end_ms)
        order = "ASC" if query.oldest_first else "DESC"
        if query.next_token is not None:
            ts, seq = _read_token(query.next_token)
            where.append("(ts_ms, seq) > (?, ?)" if query.oldest_first else "(ts_ms, seq) < (?, ?)")
            params += [ts, seq]
        limit = query.max_records
        with self._cursor() as conn:
            rows = conn.execute(
                "SELECT alarm_name, alarm_type, ts_ms, item_type, summary, data, seq "
                f"FROM alarm_history WHERE {' AND '.join(where)} "
                f"ORDER BY ts_ms {order}, seq {order} LIMIT ?",
                [*params, limit + 1],
            ).fetchall()
        items = [HistoryItem(r[0], r[1], r[2], r[3], r[4], orjson.loads(r[5])) for r in rows]
        token = None
        if len(rows) > limit:
            last = rows[limit - 1]
            token = _write_token(last[2], last[6])
            items = items[:limit]
        return HistoryPage(items, token)

    def purge_history(self, now_ms: int) -> int:
        with self._cursor() as conn:
            row = conn.execute(
                "DELETE FROM alarm_history WHERE ts_ms < ? RETURNING 1",
                [now_ms - HISTORY_RETENTION_MS],
            ).fetchall()
        return len(row)

    # ---- alarms and silences created through the API

    def definitions(self) -> dict[str, dict[str, Any]]:
        return self._documents("SELECT name, document FROM alarm_definitions ORDER BY name")

    def put_definition(self, name: str, document: dict[str, Any], now_ms: int) -> None:
        self._put("alarm_definitions", name, document, now_ms)

    def delete_definition(self, name: str) -> None:
        with self._cursor() as conn:
            conn.execute("DELETE FROM alarm_definitions WHERE name = ?", [name])

    def silences(self) -> dict[str, dict[str, Any]]:
        return self._documents("SELECT id, document FROM alarm_silences ORDER BY created_ms, id")

    def put_silence(self, silence_id: str, document: dict[str, Any], now_ms: int) -> None:
        self._put("alarm_silences", silence_id, document, now_ms)

    def delete_silence(self, silence_id: str) -> bool:
        with self._cursor() as conn:
            gone = conn.execute(
                "DELETE FROM alarm_silences WHERE id = ? RETURNING 1", [silence_id]
            ).fetchall()
        return bool(gone)

    @contextmanager
    def _using(self, conn: duckdb.DuckDBPyConnection | None) -> Iterator[duckdb.DuckDBPyConnection]:
        """The caller's cursor (inside its transaction), or a fresh one closed afterwards."""
        if conn is not None:
            yield conn
            return
        with self._cursor() as cur:
            yield cur

    def _documents(self, sql: str) -> dict[str, dict[str, Any]]:
        with self._cursor() as conn:
            return {key: orjson.loads(doc) for key, doc in conn.execute(sql).fetchall()}

    def _put(self, table: str, key: str, document: dict[str, Any], now_ms: int) -> None:
        with self._cursor() as conn:
            conn.execute(
                f"INSERT OR REPLACE INTO {table} VALUES (?, ?, ?)",
                [key, orjson.dumps(document).decode(), now_ms],
            )


def _bounded_json(data: dict[str, Any]) -> str:
    """HistoryData is at most 4095 characters. A longer state update loses its reason data
    first (the values and reasons stay); anything else keeps its type and says so."""
    text = orjson.dumps(data).decode()
    if len(text) <= MAX_DATA:
        return text
    if "oldState" in data and "newState" in data:
        lean = {
            **data,
            "oldState": {k: v for k, v in data["oldState"].items() if k != "stateReasonData"},
            "newState": {k: v for k, v in data["newState"].items() if k != "stateReasonData"},
            "truncated": True,
        }
        text = orjson.dumps(lean).decode()
        if len(text) <= MAX_DATA:
            return text
    return orjson.dumps({"truncated": True, "type": data.get("type")}).decode()


def _write_token(ts_ms: int, seq: int) -> str:
    return base64.urlsafe_b64encode(orjson.dumps([ts_ms, seq])).decode()


def _read_token(token: str) -> tuple[int, int]:
    try:
        ts_ms, seq = orjson.loads(base64.urlsafe_b64decode(token.encode()))
        return int(ts_ms), int(seq)
    except (binascii.Error, orjson.JSONDecodeError, ValueError, TypeError):
        raise InvalidNextToken(
            "the next token is not one this server issued", details={"field": "next_token"}
        ) from None
