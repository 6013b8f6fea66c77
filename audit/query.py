"""Audit queries (spec audit §3.3, StartAuditQuery): SQL over a read-only ``events`` view.

The records of the requested time range are loaded into Arrow first; the SQL then runs on a
fresh in-memory DuckDB connection that can reach no file, no extension, no Python variable and
no setting (``enable_external_access=false``, no replacement scans, locked configuration), so
``read_csv('/etc/passwd')`` and the like fail, and nothing can change the trail.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import duckdb
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from audit.segments import SEGMENT_SCHEMA, entries_table, segment_sealed_at
from audit.trail import AuditTrail
from core.errors import BadRequest

MAX_ROWS = 10_000
MAX_SQL_CHARS = 20_000
TIMEOUT_S = 30.0


class AuditQueryError(BadRequest):
    code = "InvalidQueryStatementException"


@dataclass(frozen=True, slots=True)
class AuditQueryResult:
    columns: list[str]
    rows: list[list[Any]]
    truncated: bool
    records_scanned: int


def run_audit_query(
    trail: AuditTrail,
    sql: str,
    start: datetime,
    end: datetime,
    *,
    max_rows: int = MAX_ROWS,
    timeout_s: float = TIMEOUT_S,
) -> AuditQueryResult:
    """Run ``sql`` (which reads ``events``) over the records with start <= eventTime <= end."""
    if not sql.strip():
        raise AuditQueryError("the query is empty: write SQL over the view events")
    if len(sql) > MAX_SQL_CHARS:
        raise AuditQueryError(f"the query is longer than {MAX_SQL_CHARS} characters")
    events = _events(trail, start, end)
    con = duckdb.connect(
        ":memory:",
        config={"enable_external_access": False, "python_enable_replacements": False},
    )
    timer = threading.Timer(timeout_s, con.interrupt)
    try:
        con.register("wk_events", events)
        con.execute("CREATE VIEW events AS SELECT * FROM wk_events")
        con.execute("SET lock_configuration = true")
        timer.start()
        try:
            result = con.execute(sql)
            if result.description is None:
                raise AuditQueryError("the statement returns no rows: write a SELECT over events")
            columns = [d[0] for d in result.description]
            rows = result.fetchmany(max_rows + 1)
        except duckdb.InterruptException:
            raise AuditQueryError(
                f"the query ran longer than {timeout_s:g} s and was stopped"
            ) from None
        except duckdb.Error as exc:
            raise AuditQueryError(f"the query failed: {_first_line(exc)}") from None
    finally:
        timer.cancel()
        con.close()
    truncated = len(rows) > max_rows
    return AuditQueryResult(
        columns=columns,
        rows=[[_json_value(v) for v in row] for row in rows[:max_rows]],
        truncated=truncated,
        records_scanned=events.num_rows,
    )


def _events(trail: AuditTrail, start: datetime, end: datetime) -> pa.Table:
    segments, unsealed = trail.snapshot()
    parts = [
        pq.read_table(path, schema=SEGMENT_SCHEMA)
        for path in segments
        if segment_sealed_at(path) >= start - timedelta(seconds=1)
    ]
    parts.append(entries_table(unsealed))
    table = pa.concat_tables(parts)
    times = table.column("event_time")
    keep = pc.and_(
        pc.greater_equal(times, pa.scalar(start, pa.timestamp("us", tz="UTC"))),
        pc.less_equal(times, pa.scalar(end, pa.timestamp("us", tz="UTC"))),
    )
    return table.filter(keep)


def _json_value(value: Any) -> Any:
    if isinstance(value, bytes):
        return value.hex()
    if isinstance(value, datetime):
        return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    if isinstance(value, list):
        return [_json_value(v) for v in value]
    if isinstance(value, dict):
        return {str(k): _json_value(v) for k, v in value.items()}
    if isinstance(value, int | float | str | bool) or value is None:
        return value
    return str(value)


def _first_line(exc: Exception) -> str:
    return str(exc).strip().splitlines()[0][:500]
