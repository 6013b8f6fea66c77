"""Query benchmark: compiled Logs Insights queries versus hand-written DuckDB SQL, same files.

Method (everything in ONE process and ONE run, so machine noise hits every side alike):

1. Generate ``--events`` events spread evenly over one UTC day (2026-01-01) into two log groups
   through the storage engine (``Store.submit_logs``, then ``flush`` and ``compact`` as the
   server's scheduler calls them, and a final forced flush): ``bench-app`` gets JSON events of
   about 10 fields (nested ``req.status``, ``req.ms``, ``user.id``, ``level``, ``host``...)
   decoded by the real NDJSON decoder (``ingest.decode.decode_events``); ``bench-web`` gets
   Apache/nginx "combined" access-log lines (their decoder tables are built directly: text/plain
   ingest would stamp a whole request with its arrival time). The data is deterministic (DuckDB
   ``hash`` of the row number), generated in time order in batches of 100,000 events per group,
   so the lake holds time-sorted hourly Parquet segments as ingest would leave them. With
   ``--data-dir`` the directory is kept and a later run with the same ``--events`` reuses it.
2. For each typical query, time (a) ``query.run.run_query`` end to end (the schema from the
   store's metadata, parse, compile, RE2 check, the one statement for rows and statistics, the
   store's scan totals, rendering), (b) the compiled SQL alone through ``Store.query_logs``
   (the ``logs`` relation over the pruned segments), and (c) the best hand-written DuckDB SQL
   for the same answer, on its own in-memory connection, over the same segment files
   (``read_parquet([...], hive_partitioning = false)``, newest file first, with the same
   time-range predicate). Each side runs once to warm up, then
   ``--repeat`` times in rotating order; the figure is the median. Where one round would take
   longer than ``--budget`` seconds, fewer rounds run (0: the warm-up run is the figure). (a)
   and (c) must give the same answer (the rows in order, or the aggregates per group key), else
   the run fails (exit status 1).
3. Pruning: the ``bin(5m)`` count over one hour (12:00-13:00) versus the whole day, via (a)
   and (b). The budget (DESIGN.md) is a cost in proportion to the hour: about 1/24.

Targets (DESIGN.md, issue 4): (a)/(c) and (b)/(c) <= 1.5 for every query.
"""

from __future__ import annotations

import argparse
import json
import math
import shutil
import statistics
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import duckdb
import pyarrow as pa
import pyarrow.compute as pc
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from ingest.decode import decode_events
from ingest.flatten import EVENTS_SCHEMA
from query.compile import CompileOptions
from query.render import render_value
from query.run import DEFAULT_ACCOUNT_ID, QueryResult, prepare_query, run_query
from query.values import Kind
from store import catalog
from store.config import StoreConfig
from store.engine import Store

T0 = 1_767_225_600_000  # 2026-01-01 00:00:00.000 UTC: the data spans this day
DAY_MS = 86_400_000
HOUR_MS = 3_600_000
APP, WEB = "bench-app", "bench-web"
BATCH = 100_000  # events per group and submit_logs call: the decoder's per-request maximum
STREAMS = 4
TARGET = 1.5
META = "watchkeep-query-bench.json"
FORMAT = 1  # bump when the generated data changes, so that cached directories are regenerated

# One JSON event per row number i; h2..h6 are deterministic pseudo-random numbers of the row.
_JSON_SQL = """
WITH r AS (
    SELECT i, $t0 + (i * $span) // $n AS ts, (hash(i, 1) % 100)::BIGINT AS s,
        (hash(i, 2) >> 2)::BIGINT AS h2, (hash(i, 3) >> 2)::BIGINT AS h3,
        (hash(i, 4) >> 2)::BIGINT AS h4, (hash(i, 5) >> 2)::BIGINT AS h5,
        (hash(i, 6) >> 2)::BIGINT AS h6
    FROM range($lo, $hi) t(i)
), e AS (
    SELECT *,
        CASE WHEN s < 70 THEN 200 WHEN s < 78 THEN 201 WHEN s < 85 THEN 304
             WHEN s < 93 THEN 404 WHEN s < 97 THEN 500 ELSE 503 END AS status,
        round(power((h3 % 100000) / 100000.0, 3) * 2500 + 0.5, 1) AS ms,
        ['GET', 'GET', 'GET', 'POST', 'PUT', 'DELETE'][1 + h4 % 6] AS method,
        ['orders', 'users', 'cart', 'search', 'login'][1 + (h4 // 6) % 5] AS resource
    FROM r
)
SELECT string_agg(json_object(
    'timestamp', ts,
    'level', CASE WHEN status >= 500 THEN 'error' WHEN status = 404 THEN 'warn'
                  WHEN h2 % 5 = 0 THEN 'debug' ELSE 'info' END,
    'service', ['api', 'auth', 'billing', 'search'][1 + h2 % 4],
    'host', 'web-' || (h5 % 16),
    'req', json_object('method', method, 'path', '/api/' || resource || '/' || (h6 % 10000),
                       'status', status, 'ms', ms),
    'user', json_object('id', h6 % 100000, 'tenant', 't' || (h5 // 16) % 50),
    'bytes', 100 + h3 % 100000,
    'trace_id', printf('%016x', hash(i, 7)),
    'region', ['eu-west-1', 'us-east-1', 'ap-south-1'][1 + h2 % 3],
    'msg', CASE WHEN status >= 500 AND h2 % 3 = 0 THEN 'upstream timeout after ' || ms || ' ms'
                WHEN status >= 500 THEN 'internal error: ' || resource || ' handler failed'
                ELSE 'handled ' || method || ' /api/' || resource || ' in ' || ms || ' ms' END
)::VARCHAR, chr(10) ORDER BY i) FROM e
"""

# One Apache/nginx "combined" access-log line (plus the request time) per row number i.
_WEB_SQL = """
WITH r AS (
    SELECT i, $t0 + (i * $span) // $n AS ts, (hash(i, 11) % 100)::BIGINT AS s,
        (hash(i, 12) >> 2)::BIGINT AS h2, (hash(i, 13) >> 2)::BIGINT AS h3,
        (hash(i, 14) >> 2)::BIGINT AS h4
    FROM range($lo, $hi) t(i)
)
SELECT ts AS ts_ms, printf('10.%d.%d.%d - - [%s] "%s /%s/%d HTTP/1.1" %d %d "-" "%s" %.3f',
    h2 % 4, (h2 // 4) % 256, (h2 // 1024) % 256,
    strftime(epoch_ms(ts), '%d/%b/%Y:%H:%M:%S +0000'),
    ['GET', 'GET', 'GET', 'GET', 'POST', 'HEAD'][1 + h3 % 6],
    ['index.html', 'static', 'api/orders', 'api/users', 'img', 'login'][1 + (h3 // 6) % 6],
    h4 % 5000,
    CASE WHEN s < 75 THEN 200 WHEN s < 85 THEN 304 WHEN s < 93 THEN 404 WHEN s < 95 THEN 403
         WHEN s < 98 THEN 500 ELSE 502 END,
    h3 % 50000,
    ['Mozilla/5.0 (X11; Linux x86_64) Firefox/128.0', 'curl/8.5.0',
     'Mozilla/5.0 (Macintosh) Safari/605.1.15', 'Googlebot/2.1'][1 + h4 % 4],
    power((h2 % 10000) / 10000.0, 4) * 3 + 0.001
) AS message
FROM r ORDER BY i
"""

# ---- the queries ---------------------------------------------------------------------------

# Hand-written SQL reads ``$files`` (the group's segment files) and the range [$start, $stop).
_SRC = "read_parquet($files, hive_partitioning = false) WHERE ts_ms >= $start AND ts_ms < $stop"
_PTR = "to_base64(encode(CAST(seq AS VARCHAR) || ':' || log_group))"
# The glob of the parse query, and the tightest regex a person would write for the same fields.
_GLOB = '* - - [*] "* * *" * * *'
_TIGHT = r'^[^ ]* - - \[[^]]*\] "([^ ]*) [^ ]* [^"]*" ([^ ]*) ([^ ]*) '
_LAZY = r'(?s)(.*?) - - \[(.*?)\] "(.*?) (.*?) (.*?)" (.*?) (.*?) (.*)'


def _parse_sql(regex: str, groups: tuple[int, int, int]) -> str:
    """Hand-written parse: method, status and bytes by ``regex``'s ``groups``."""
    method, status, size = (f"regexp_extract(message, '{regex}', {g})" for g in groups)
    return (
        "SELECT method, count(*), sum(TRY_CAST(bytes AS DOUBLE)) FROM ("
        f"SELECT {method} AS method, {status} AS status, {size} AS bytes FROM {_SRC}) "
        "WHERE TRY_CAST(status AS DOUBLE) >= 500 GROUP BY 1 ORDER BY 1"
    )


@dataclass(frozen=True)
class Case:
    key: str
    title: str
    group: str
    query: str  # Logs Insights
    sql: str  # the best hand-written DuckDB SQL for the same answer
    kinds: tuple[Kind, ...]  # of the hand-written columns, to render them like results
    ordered: bool = True  # compare rows in order; else as a set (stats rows keyed by group)
    # A second hand-written SQL timed in the same rounds, shown on a row of its own.
    alt_title: str = ""
    alt_sql: str = ""


CASES = [
    Case(
        "bin",
        "count by bin(5m)",
        APP,
        "stats count(*) by bin(5m)",
        f"SELECT ts_ms - ts_ms % 300000, count(*) FROM {_SRC} GROUP BY 1 ORDER BY 1",
        (Kind.TS, Kind.INT),
    ),
    Case(
        "json_filter",
        "filter on JSON fields (rows)",
        APP,
        "fields @timestamp, host, req.ms | filter req.status >= 500 and req.ms > 2000",
        f'SELECT ts_ms, host, "req.ms", {_PTR} FROM {_SRC} AND "req.status" >= 500 '
        'AND "req.ms" > 2000 ORDER BY ts_ms DESC, seq DESC LIMIT 10000',
        (Kind.TS, Kind.STR, Kind.NUM, Kind.STR),
    ),
    Case(
        "like",
        "like filter, count by service",
        APP,
        'filter @message like "timeout" | stats count(*) as n by service',
        f"SELECT service, count(*) FROM {_SRC} AND contains(message, 'timeout') "
        "GROUP BY 1 ORDER BY 1",
        (Kind.STR, Kind.INT),
        ordered=False,
    ),
    Case(
        "regex",
        "regex filter (alternation), count",
        WEB,
        'filter @message like /" (500|502) / | stats count(*)',
        f"SELECT count(*) FROM {_SRC} AND (contains(message, '\" 500 ') "
        "OR contains(message, '\" 502 '))",
        (Kind.INT,),
    ),
    Case(
        "stats",
        "stats pct, count_distinct by host",
        APP,
        "stats pct(req.ms, 99) as p99, count_distinct(user.id) as users, count(*) as n by host",
        'SELECT host, quantile_disc("req.ms", 0.99), count(DISTINCT "user.id"), count(*) '
        f"FROM {_SRC} GROUP BY 1 ORDER BY 1",
        (Kind.STR, Kind.NUM, Kind.INT, Kind.INT),
        ordered=False,
    ),
    Case(
        "newest",
        "newest 100 matching events",
        APP,
        'fields @timestamp, @message | filter level = "error" | sort @timestamp desc | limit 100',
        f"SELECT ts_ms, message, {_PTR} FROM {_SRC} AND level = 'error' "
        "ORDER BY ts_ms DESC, seq DESC LIMIT 100",
        (Kind.TS, Kind.STR, Kind.STR),
    ),
    Case(
        "parse",
        "parse access log, stats by method",
        WEB,
        f"parse @message '{_GLOB}' as ip, time, method, path, proto, status, bytes, rest "
        "| filter status >= 500 | stats count(*) as n, sum(bytes) as total by method",
        _parse_sql(_TIGHT, (1, 2, 3)),
        (Kind.STR, Kind.INT, Kind.NUM),
        ordered=False,
        alt_title="  same, hand-written with the glob's regex",
        alt_sql=_parse_sql(_LAZY, (3, 6, 7)),
    ),
]
PRUNING_QUERY = "stats count(*) by bin(5m)"
PRUNING_HOUR = 12

# ---- data ----------------------------------------------------------------------------------


def group_sizes(events: int) -> dict[str, int]:
    half = events // 2
    return {APP: half, WEB: events - half}


def open_store(data_dir: Path) -> Store:
    store = Store(StoreConfig(data_dir, fsync=False))
    store.open()
    store.recover()
    return store


def prepare_data(data_dir: Path, events: int, console: Console) -> dict[str, Any]:
    """Reuse ``data_dir`` if it holds this benchmark's complete data for ``events``; else
    generate it there (the directory must be new, empty, or made by this benchmark)."""
    meta_path = data_dir / META
    if meta_path.exists():
        meta = json.loads(meta_path.read_text())
        if meta.get("format") == FORMAT and meta.get("events") == events and meta.get("complete"):
            console.print(f"reusing the generated data in {data_dir}")
            return {**meta, "cached": True}
        console.print(f"{data_dir} holds other or incomplete data: generating it again")
        shutil.rmtree(data_dir)
    elif data_dir.exists() and any(data_dir.iterdir()):
        raise SystemExit(f"{data_dir} is not empty and was not made by this benchmark")
    data_dir.mkdir(parents=True, exist_ok=True)
    meta = {"format": FORMAT, "events": events, "complete": False}
    meta_path.write_text(json.dumps(meta))
    meta.update(generate(data_dir, events, console), complete=True)
    meta_path.write_text(json.dumps(meta))
    return {**meta, "cached": False}


def generate(data_dir: Path, events: int, console: Console) -> dict[str, Any]:
    """Ingest the events batch by batch in time order, flushing and compacting on the way."""
    gen = duckdb.connect()
    store = open_store(data_dir)
    sizes = group_sizes(events)
    batches = max(1, -(-max(sizes.values()) // BATCH))
    started = time.perf_counter()
    pending: list[tuple[int, Any]] = []
    columns = [TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn()]
    try:
        with Progress(*columns, TimeElapsedColumn(), console=console) as progress:
            task = progress.add_task("generating and ingesting events", total=events)
            for k in range(batches):
                submitted = []
                for group, n in sizes.items():
                    lo, hi = min(n, k * BATCH), min(n, (k + 1) * BATCH)
                    if lo < hi:
                        params = {"t0": T0, "span": DAY_MS, "n": n, "lo": lo, "hi": hi}
                        ev, fields = _batch(gen, group, params)
                        stream = f"{group}-{k % STREAMS}"
                        future = store.submit_logs(group, stream, ev, fields, {})
                        submitted.append((hi - lo, future))
                # The previous batch's WAL write overlapped with generating this one.
                for count, future in pending:
                    future.result(300)
                    progress.advance(task, count)
                pending = submitted
                store.flush()  # when the memtable is due, as the server's scheduler does
                store.compact()
            for count, future in pending:
                future.result(300)
                progress.advance(task, count)
            progress.update(task, description="flushing to Parquet")
            store.flush(force=True)
            store.compact()
        seconds = time.perf_counter() - started
    finally:
        store.close()
        gen.close()
    return {"generate_s": round(seconds, 1)}


def _batch(
    gen: duckdb.DuckDBPyConnection, group: str, params: dict[str, int]
) -> tuple[pa.Table, pa.Table]:
    """(events, fields) of one batch, as the decoder gives them to the store."""
    if group == APP:
        body = gen.sql(_JSON_SQL, params=params).fetchall()[0][0].encode()
        decoded = decode_events(body, "application/x-ndjson", now_ms=T0 + DAY_MS)
        if decoded.rejected:
            raise RuntimeError(f"the decoder rejected generated events: {decoded.rejected[:3]}")
        return decoded.events, decoded.fields
    # Access-log lines: text/plain ingest stamps every line of a request with the arrival
    # time, so build the decoder's tables directly to spread the lines over the day.
    table = gen.sql(_WEB_SQL, params=params).to_arrow_table()
    message = table.column("message")
    columns = [table.column("ts_ms"), message, pc.binary_length(message)]
    events = pa.table(columns, schema=EVENTS_SCHEMA)
    no_fields = pa.table({"_": pa.nulls(events.num_rows)}).drop(["_"])
    return events, no_fields


def segment_files(store: Store, data_dir: Path) -> dict[str, list[str]]:
    """Each group's segment files (from the catalog), oldest first."""
    cursor = store.cursor()
    try:
        names = {g.id: g.name for g in catalog.load_groups(cursor)}
        files: dict[str, list[str]] = {name: [] for name in names.values()}
        for segment in catalog.load_segments(cursor):
            files[names[segment.group_id]].append(str(data_dir / segment.path))
    finally:
        cursor.close()
    return files


def lake_figures(data_dir: Path, files: dict[str, list[str]]) -> dict[str, Any]:
    import pyarrow.parquet as pq

    out: dict[str, Any] = {}
    for group, paths in files.items():
        metas = [pq.read_metadata(p) for p in paths]
        out[group] = {
            "segments": len(paths),
            "rows": sum(m.num_rows for m in metas),
            "row_groups": sum(m.num_row_groups for m in metas),
            "bytes": sum(Path(p).stat().st_size for p in paths),
        }
    return out


# ---- timing --------------------------------------------------------------------------------


def timed(fn: Callable[[], Any]) -> tuple[float, Any]:
    started = time.perf_counter()
    result = fn()
    return time.perf_counter() - started, result


def runs_within(budget_s: float, repeat: int, one_round_s: float) -> int:
    """``repeat``, or as many rounds as fit in ``budget_s``: 0 when the warm-up round alone
    took longer, and then the warm-up times are the figures."""
    return min(repeat, int(budget_s / max(one_round_s, 1e-9)))


def median_times(
    sides: dict[str, Callable[[], Any]], runs: int, tick: Callable[[], None]
) -> dict[str, float]:
    """Median seconds of each side over ``runs`` rounds, in rotating order (after a warm-up)."""
    names = list(sides)
    times: dict[str, list[float]] = {name: [] for name in names}
    for r in range(runs):
        for name in names[r % len(names) :] + names[: r % len(names)]:
            times[name].append(timed(sides[name])[0])
        tick()
    return {name: statistics.median(values) for name, values in times.items()}


def options_for(start_ms: int, end_ms: int) -> CompileOptions:
    """What ``run_query`` compiles with (end inclusive), for timing the SQL alone."""
    return CompileOptions(
        account_id=DEFAULT_ACCOUNT_ID,
        limit=None,
        now_ms=int(time.time() * 1000),
        start_ms=start_ms,
        end_ms=end_ms,
        groups=1,
    )


def answer_of_result(result: QueryResult) -> list[tuple[str | None, ...]]:
    rows = []
    for row in result.rows:
        values = {pair["field"]: pair["value"] for pair in row}
        rows.append(tuple(values.get(name) for name in result.fields))
    return rows


def answer_of_table(table: pa.Table, kinds: Sequence[Kind]) -> list[tuple[str | None, ...]]:
    columns = [table.column(i).to_pylist() for i in range(table.num_columns)]
    return [
        tuple(render_value(v, k) for v, k in zip(row, kinds, strict=True))
        for row in zip(*columns, strict=True)
    ]


def same_answer(
    a: list[tuple[str | None, ...]], c: list[tuple[str | None, ...]], ordered: bool
) -> bool:
    if not ordered:
        a, c = sorted(a, key=repr), sorted(c, key=repr)
    if len(a) != len(c):
        return False
    return all(
        len(x) == len(y) and all(_same_value(u, v) for u, v in zip(x, y, strict=True))
        for x, y in zip(a, c, strict=True)
    )


def _same_value(u: str | None, v: str | None) -> bool:
    if u == v:
        return True
    try:  # sums of doubles may differ in the last bits with the order of addition
        return math.isclose(float(u or "x"), float(v or "x"), rel_tol=1e-9)
    except ValueError:
        return False


def case_sides(
    store: Store,
    hand: duckdb.DuckDBPyConnection,
    case: Case,
    files: list[str],
    start: int,
    end: int,
    rows_at: list[float],
) -> dict[str, Callable[[], Any]]:
    """The ways to answer a case: (a) end to end, (b) compiled SQL, (c) hand-written.

    (a) also appends to ``rows_at`` the seconds until its rows were out (``on_rows``, while
    recordsMatched is still being counted; the whole run where there is no such count).
    """
    groups = [case.group]
    compiled = prepare_query(store, case.query, groups, start, end + 1, options_for(start, end))
    # Newest file first: DuckDB reads the files in list order, so a top-N by time descending
    # finds its rows in the first row groups and its dynamic filter skips the older ones.
    params = {"files": files[::-1], "start": start, "stop": end + 1}
    sides: dict[str, Callable[[], Any]] = {
        "a": lambda: _end_to_end(store, case.query, groups, start, end, rows_at),
        "b": lambda: store.query_logs(groups, start, end + 1, compiled.sql, compiled.params),
        "c": lambda: hand.sql(case.sql, params=params).to_arrow_table(),
    }
    if case.alt_sql:
        sides["c_alt"] = lambda: hand.sql(case.alt_sql, params=params).to_arrow_table()
    return sides


def _end_to_end(
    store: Store, text: str, groups: list[str], start: int, end: int, rows_at: list[float]
) -> QueryResult:
    started = time.perf_counter()
    out: list[float] = []
    result = run_query(
        store, text, groups, start, end, on_rows=lambda _: out.append(time.perf_counter())
    )
    rows_at.append((out[0] if out else time.perf_counter()) - started)
    return result


def run_cases(
    store: Store,
    files: dict[str, list[str]],
    cases: Sequence[Case],
    repeat: int,
    budget_s: float,
    console: Console,
) -> list[dict[str, Any]]:
    start, end = T0, T0 + DAY_MS - 1  # run_query's range is inclusive, the store's half-open
    hand = duckdb.connect()
    out = []
    columns = [TextColumn("{task.description:<40}"), BarColumn(), MofNCompleteColumn()]
    try:
        with Progress(*columns, TimeElapsedColumn(), console=console) as progress:
            task = progress.add_task("queries", total=len(cases) * (repeat + 1))
            for case in cases:
                progress.update(task, description=case.title.strip())
                rows_at: list[float] = []
                sides = case_sides(store, hand, case, files[case.group], start, end, rows_at)
                warm_s, warm = {}, {}  # the warm-up run also gives the answers
                for name, fn in sides.items():
                    warm_s[name], warm[name] = timed(fn)
                progress.advance(task)
                runs = runs_within(budget_s, repeat, sum(warm_s.values()))
                progress.advance(task, repeat - runs)  # the rounds skipped
                seconds = warm_s
                if runs:
                    seconds = median_times(sides, runs, lambda: progress.advance(task))
                rows_s = statistics.median(rows_at[1:] if runs else rows_at)
                a_answer = answer_of_result(warm["a"])
                same_rows = warm["b"].num_rows == len(a_answer)
                variants = [("c", case.title, case.sql)]
                if case.alt_sql:
                    variants.append(("c_alt", case.alt_title, case.alt_sql))
                for side, title, sql in variants:
                    c_answer = answer_of_table(warm[side], case.kinds)
                    out.append(
                        {
                            "key": case.key + ("" if side == "c" else "_alt"),
                            "title": title,
                            "group": case.group,
                            "query": case.query,
                            "hand_sql": sql,
                            "rows": len(a_answer),
                            "records_matched": warm["a"].statistics["recordsMatched"],
                            "runs": runs,
                            "a_s": seconds["a"],
                            "a_rows_s": rows_s,
                            "a_rows_over_c": rows_s / seconds[side],
                            "b_s": seconds["b"],
                            "c_s": seconds[side],
                            "a_over_c": seconds["a"] / seconds[side],
                            "b_over_c": seconds["b"] / seconds[side],
                            "same_answer": same_rows
                            and same_answer(a_answer, c_answer, case.ordered),
                        }
                    )
    finally:
        hand.close()
    return out


def run_pruning(store: Store, repeat: int, budget_s: float) -> dict[str, Any]:
    """The bin(5m) count over one hour versus the whole day, end to end and SQL alone."""
    groups = [APP]
    ranges = {
        "hour": (T0 + PRUNING_HOUR * HOUR_MS, T0 + (PRUNING_HOUR + 1) * HOUR_MS - 1),
        "day": (T0, T0 + DAY_MS - 1),
    }
    sides: dict[str, Callable[[], Any]] = {}
    scanned: dict[str, float] = {}
    warm_s: dict[str, float] = {}
    for name, (start, end) in ranges.items():
        compiled = prepare_query(
            store, PRUNING_QUERY, groups, start, end + 1, options_for(start, end)
        )

        def end_to_end(start: int = start, end: int = end) -> QueryResult:
            return run_query(store, PRUNING_QUERY, groups, start, end)

        def sql_alone(start: int = start, end: int = end, compiled: Any = compiled) -> Any:
            return store.query_logs(groups, start, end + 1, compiled.sql, compiled.params)

        warm_s[f"a_{name}"], result = timed(end_to_end)
        warm_s[f"b_{name}"] = timed(sql_alone)[0]
        scanned[name] = result.statistics["recordsScanned"]
        sides[f"a_{name}"] = end_to_end
        sides[f"b_{name}"] = sql_alone
    runs = runs_within(budget_s, repeat, sum(warm_s.values()))
    seconds = median_times(sides, runs, lambda: None) if runs else warm_s
    return {
        "query": PRUNING_QUERY,
        "hour_utc": PRUNING_HOUR,
        "runs": runs,
        **{f"{k}_s": v for k, v in seconds.items()},
        "a_ratio": seconds["a_hour"] / seconds["a_day"],
        "b_ratio": seconds["b_hour"] / seconds["b_day"],
        "scanned_hour": scanned["hour"],
        "scanned_day": scanned["day"],
        "target_ratio": 1 / 24,
    }


# ---- report --------------------------------------------------------------------------------


def _ms(seconds: float) -> str:
    return f"{seconds * 1000:,.0f}" if seconds >= 0.01 else f"{seconds * 1000:.1f}"


def _ratio(value: float) -> str:
    return f"{value:.2f}x" + (" !" if value > TARGET else "  ")


def print_report(f: dict[str, Any]) -> None:
    lake = f["lake"]
    lines = [
        f"query benchmark: {f['events']:,} events over 24 h "
        f"({lake[APP]['rows']:,} JSON in {APP}, {lake[WEB]['rows']:,} access-log lines in "
        f"{WEB}), DuckDB {duckdb.__version__}, {f['threads']} threads; median of --repeat "
        f"{f['repeat']} runs after a warm-up, fewer where they would take over "
        f"{f['budget_s']:g} s (runs 0: the warm-up run alone)",
        "  lake: "
        + "; ".join(
            f"{g} {v['segments']} segments, {v['row_groups']} row groups, "
            f"{v['bytes'] / 2**20:,.0f} MiB"
            for g, v in lake.items()
        )
        + (
            " (cached)"
            if f["cached"]
            else f" (generated in {f['generate_s']:.0f} s, "
            f"{f['events'] / max(f['generate_s'], 1e-9):,.0f} events/s)"
        ),
        "  (a) run_query end to end   (b) compiled SQL via Store.query_logs   "
        f"(c) hand-written DuckDB SQL;  ! = over the {TARGET}x target;  rows: (a) until its "
        "rows were out (on_rows), while recordsMatched was still being counted",
        f"  {'query':<44}{'group':<11}{'rows':>6}{'runs':>5}{'(a) ms':>9}{'rows ms':>9}"
        f"{'(b) ms':>9}{'(c) ms':>9}{'(a)/(c)':>10}{'rows/(c)':>10}{'(b)/(c)':>10}  same answer",
    ]
    for r in f["queries"]:
        lines.append(
            f"  {r['title']:<44}{r['group']:<11}{r['rows']:>6}{r['runs']:>5}{_ms(r['a_s']):>9}"
            f"{_ms(r['a_rows_s']):>9}{_ms(r['b_s']):>9}{_ms(r['c_s']):>9}"
            f"{_ratio(r['a_over_c']):>10}{_ratio(r['a_rows_over_c']):>10}"
            f"{_ratio(r['b_over_c']):>10}  {'yes' if r['same_answer'] else 'NO'}"
        )
    p = f["pruning"]
    lines += [
        f"  pruning ({p['query']!r}, {APP}): 1 hour ({p['hour_utc']:02d}:00-"
        f"{p['hour_utc'] + 1:02d}:00) vs 24 hours, target about 1/24 = {p['target_ratio']:.3f}"
        f" ({p['runs']} runs)",
        f"    (a) end to end   {_ms(p['a_hour_s'])} ms vs {_ms(p['a_day_s'])} ms = "
        f"{p['a_ratio']:.3f} (1/{1 / p['a_ratio']:.1f})",
        f"    (b) SQL alone    {_ms(p['b_hour_s'])} ms vs {_ms(p['b_day_s'])} ms = "
        f"{p['b_ratio']:.3f} (1/{1 / p['b_ratio']:.1f})",
        f"    records scanned  {p['scanned_hour']:,.0f} vs {p['scanned_day']:,.0f}",
    ]
    print("\n".join(lines))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--events", type=int, default=10_000_000, help="events to generate")
    parser.add_argument("--repeat", type=int, default=5, help="timed runs per query and side")
    parser.add_argument(
        "--budget",
        type=float,
        default=120.0,
        help="seconds per query: fewer runs (at least 1) when --repeat rounds would take longer",
    )
    parser.add_argument("--data-dir", type=Path, help="keep the data here and reuse it next time")
    parser.add_argument("--json", action="store_true", help="also print the figures as JSON")
    parser.add_argument(
        "--only", action="append", metavar="KEY", help="run only these cases (repeatable)"
    )
    args = parser.parse_args(argv)
    if args.events < 2 or args.repeat < 1:
        parser.error("--events must be at least 2 and --repeat at least 1")
    console = Console(stderr=True)
    tmp = None
    if args.data_dir is None:
        tmp = Path(tempfile.mkdtemp(prefix="watchkeep-query-bench-"))
    data_dir = args.data_dir or tmp / "data"  # type: ignore[operator]
    try:
        meta = prepare_data(data_dir.resolve(), args.events, console)
        store = open_store(data_dir.resolve())
        try:
            files = segment_files(store, data_dir.resolve())
            threads = store.cursor().sql("SELECT current_setting('threads')").fetchall()[0][0]
            cases = [c for c in CASES if not args.only or c.key in args.only]
            queries = run_cases(store, files, cases, args.repeat, args.budget, console)
            console.print("timing pruning (1 hour vs 24 hours)")
            pruning = run_pruning(store, args.repeat, args.budget)
        finally:
            store.close()
        figures: dict[str, Any] = {
            "events": args.events,
            "repeat": args.repeat,
            "budget_s": args.budget,
            "cached": meta["cached"],
            "generate_s": meta.get("generate_s"),
            "duckdb": duckdb.__version__,
            "threads": threads,
            "target": TARGET,
            "lake": lake_figures(data_dir.resolve(), files),
            "queries": queries,
            "pruning": pruning,
        }
        print_report(figures)
        if args.json:
            print(json.dumps(figures, indent=2))
        return 0 if all(q["same_answer"] for q in queries) else 1
    finally:
        if tmp is not None:
            shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    try:
        sys.exit(main())
    except KeyboardInterrupt:
        sys.exit(130)
