"""Run a Logs Insights query over a ``Store``: schema, compile, execute, render, statistics.

The synchronous core of StartQuery/GetQueryResults. ``query.service`` runs it in worker threads.
The store executes the SQL; this module only asks it for the schema and for the two results
(rows and statistics) and renders them per spec §2.4 and §13.
"""

from __future__ import annotations

import base64
import binascii
import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, replace
from typing import Any, Protocol

import duckdb
import pyarrow as pa

from query.compile import CompiledQuery, CompileOptions, compile_query
from query.errors import QueryError
from query.nodes import Query
from query.parse import parse
from query.render import render_table

__all__ = [
    "DEFAULT_ACCOUNT_ID",
    "Cancelled",
    "QueryResult",
    "check_regexes",
    "decode_ptr",
    "logs_schema",
    "prepare_query",
    "run_query",
    "validate_query",
]

DEFAULT_ACCOUNT_ID = "000000000000"
# What every ``logs`` relation has, whatever was ingested: enough to check a query's text.
BASE_SCHEMA = {
    "log_group": "string",
    "log_stream": "string",
    "ts_ms": "int64",
    "ingest_ms": "int64",
    "seq": "int64",
    "message": "string",
    "message_bytes": "int32",
    "fields": "map<string, string>",
}

CursorHook = Callable[[duckdb.DuckDBPyConnection], None]
# Runs the recordsMatched count of a query while its own thread finds and renders the rows.
_COUNTING = ThreadPoolExecutor(max_workers=8, thread_name_prefix="query-count")


class Cancelled(Exception):
    """Raised inside a worker when its query was stopped between two steps."""


class LogStore(Protocol):
    """The part of ``store.engine.Store`` a query uses."""

    def query_logs(
        self,
        groups: list[str],
        start_ms: int,
        end_ms: int,
        sql: str,
        params: list[Any],
        *,
        on_cursor: CursorHook | None = None,
    ) -> pa.Table: ...


@dataclass(frozen=True, slots=True)
class QueryResult:
    """Rendered rows (lists of ``{"field", "value"}``), statistics, and the column names."""

    rows: list[list[dict[str, str]]]
    statistics: dict[str, float]
    fields: tuple[str, ...]
    warnings: tuple[str, ...] = ()


def validate_query(text: str, options: CompileOptions | None = None) -> tuple[Query, CompiledQuery]:
    """Parse and compile against the base schema: every MalformedQuery but RE2's own."""
    query = parse(text)
    return query, compile_query(query, BASE_SCHEMA, options)


def logs_schema(store: LogStore, groups: list[str], start_ms: int, end_ms: int) -> dict[str, str]:
    """The columns of the ``logs`` relation for this scope, name -> Arrow type.

    A store that knows them from its metadata says so (``Store.logs_schema``, no query);
    otherwise an empty query answers.
    """
    from_metadata = getattr(store, "logs_schema", None)
    if from_metadata is not None:
        schema: dict[str, str] = from_metadata(groups, start_ms, end_ms)
        return schema
    table = store.query_logs(groups, start_ms, end_ms, "SELECT * FROM logs LIMIT 0", [])
    return {f.name: str(f.type) for f in table.schema}


def prepare_query(
    store: LogStore,
    text: str,
    groups: list[str],
    start_ms: int,
    end_ms: int,
    options: CompileOptions | None = None,
) -> CompiledQuery:
    """Parse, compile against this scope's schema, and have RE2 check every regex.

    A store that counts what a query scans (``Store.scan_totals``) is left to do so.
    """
    query = parse(text)
    options = replace(options or CompileOptions(), scanned_by_store=hasattr(store, "scan_totals"))
    compiled = compile_query(query, logs_schema(store, groups, start_ms, end_ms), options)
    check_regexes(store, groups, compiled.regexes)
    return compiled


def run_query(
    store: LogStore,
    text: str,
    groups: Sequence[str],
    start_ms: int,
    end_ms: int,
    *,
    limit: int | None = None,
    account_id: str = DEFAULT_ACCOUNT_ID,
    now_ms: int | None = None,
    cancel: threading.Event | None = None,
    on_cursor: CursorHook | None = None,
    on_rows: Callable[[QueryResult], None] | None = None,
) -> QueryResult:
    """Run a query over ``groups`` for events with ``start_ms <= @timestamp <= end_ms``.

    Both ends are inclusive (spec §12.1): a request's seconds are ``start_s * 1000`` and
    ``end_s * 1000``. ``limit`` is StartQuery's optional cap on the rows. ``cancel`` is checked
    between steps; ``on_cursor`` receives each DuckDB cursor (to interrupt it) when the store
    supports that. Where recordsMatched needs a statement of its own, it runs in a worker
    thread: alongside the rows where it is always needed (a filter before ``limit`` or
    ``dedup``), else once the rows show it is (the cap cut them), while they render. Then
    ``on_rows`` receives the rows first, with statistics that are final but for recordsMatched
    (the number of rows so far), and the result follows once the count is in.
    """
    group_list = list(groups)
    stop_ms = end_ms + 1  # the store's range is half-open
    options = CompileOptions(
        account_id=account_id,
        limit=limit,
        now_ms=int(time.time() * 1000) if now_ms is None else now_ms,
        start_ms=start_ms,
        end_ms=end_ms,
        groups=len(group_list),
    )
    compiled = prepare_query(store, text, group_list, start_ms, stop_ms, options)

    def execute(sql: str, params: list[Any]) -> pa.Table:
        if cancel is not None and cancel.is_set():
            raise Cancelled
        return _query_logs(store, group_list, start_ms, stop_ms, sql, params, on_cursor)

    early = None
    if compiled.matched_after:  # always needed: count while the rows are found
        early = _COUNTING.submit(execute, compiled.statistics_sql, compiled.statistics_params)
    try:
        answer = execute(compiled.sql, compiled.params)
    except BaseException:
        if early is not None:
            early.cancel()
        raise
    first = compiled.hidden
    stats_row = answer.select(range(first + 1, answer.num_columns)).slice(0, 1).to_pylist()
    counts: dict[str, Any] = stats_row[0] if stats_row else {}
    if answer.column(first)[0].as_py() is None:  # the one row of an empty result
        answer = answer.slice(0, 0)
    if not compiled.scanned_in_sql:
        scanned, size = getattr(store, "scan_totals")(group_list, start_ms, stop_ms)  # noqa: B009
        counts.update(records_scanned=scanned, bytes_scanned=size)
    count_apart = False
    if compiled.matched_below is not None and answer.num_rows < compiled.matched_below:
        counts["records_matched"] = answer.num_rows
    elif compiled.matched_in_rows and answer.num_rows:
        counts["records_matched"] = answer.column(len(compiled.columns))[0].as_py()
    elif compiled.matched_below is not None or compiled.matched_in_rows or compiled.matched_after:
        # The cap cut the rows short, a filter after stats left none, or a filter before
        # limit/dedup: recordsMatched is a statement of its own, run while the rows render.
        count_apart = True
    elif not compiled.matched_in_stats:
        counts["records_matched"] = counts["records_scanned"]
    pending = early
    if count_apart and pending is None:
        pending = _COUNTING.submit(execute, compiled.statistics_sql, compiled.statistics_params)
    try:
        rows = render_table([(c.name, c.kind) for c in compiled.columns], answer)
    except BaseException:
        if pending is not None:
            pending.cancel()
        raise
    result = QueryResult(
        rows=rows,
        statistics=_statistics({"records_matched": len(rows), **counts}, len(group_list)),
        fields=tuple(c.name for c in compiled.columns),
        warnings=compiled.warnings,
    )
    if pending is None:
        return result
    if on_rows is not None:
        on_rows(result)  # the final rows; recordsMatched so far only a lower bound
    counts.update(pending.result().to_pylist()[0])
    return replace(result, statistics=_statistics(counts, len(group_list)))


def _statistics(row: dict[str, Any], groups: int) -> dict[str, float]:
    return {
        "recordsMatched": float(row["records_matched"] or 0),
        "recordsScanned": float(row["records_scanned"] or 0),
        "bytesScanned": float(row["bytes_scanned"] or 0),
        "estimatedRecordsSkipped": 0.0,
        "estimatedBytesSkipped": 0.0,
        "logGroupsScanned": float(groups),
    }


def _query_logs(
    store: LogStore,
    groups: list[str],
    start_ms: int,
    end_ms: int,
    sql: str,
    params: list[Any],
    on_cursor: CursorHook | None,
) -> pa.Table:
    return store.query_logs(groups, start_ms, end_ms, sql, params, on_cursor=on_cursor)


def check_regexes(store: LogStore, groups: list[str], regexes: Sequence[tuple[str, Any]]) -> None:
    """Let RE2 compile each regex on no data, so a bad one is a MalformedQuery with its place."""
    if not regexes:
        return
    seen: set[str] = set()
    for pattern, span in regexes:
        if pattern in seen:
            continue
        seen.add(pattern)
        try:
            store.query_logs(groups, 0, 0, "SELECT regexp_matches('', ?)", [pattern])
        except duckdb.Error as exc:
            reason = str(exc).split("\n", 1)[0].split(": ", 1)[-1]
            raise QueryError(
                f"The regex at line {span.line}, column {span.column} does not compile: {reason}.",
                span,
            ) from None


def decode_ptr(ptr: str) -> tuple[str, int]:
    """The (log group, seq) an ``@ptr`` value points at; ValueError if it is not one."""
    try:
        text = base64.b64decode(ptr.encode("ascii"), validate=True).decode()
        seq, _, group = text.partition(":")
        return group, int(seq)
    except (binascii.Error, UnicodeError, ValueError) as exc:
        raise ValueError(f"not a watchkeep @ptr: {ptr!r}") from exc
