"""Metric read benchmark: GetMetricStatistics and GetMetricData versus hand-written DuckDB SQL.

Method (everything in ONE process and ONE run, so machine noise hits every side alike):

1. **Data.** ``--metrics`` metric names x ``--dims`` dimension sets (``Host=host-NN``) in one
   namespace, one raw value per series every ``--interval`` seconds for ``--hours`` hours from
   2026-01-01 00:00 UTC (defaults: 100 x 20 series, every 15 s, 24 h = 11.52 M raw values, one
   high-resolution datum of one value per row). The rows are made by DuckDB (deterministic
   ``hash`` of series and time step) in time order, written through ``MetricStore.put`` in
   batches of ``BATCH_STEPS`` time steps (the WAL without fsync), and the store is flushed and
   compacted after every batch as the server's scheduler does (a flush runs once the memtable
   passes ``flush_bytes``), then forced at the end. What is left is what ingest leaves: sorted
   zstd Parquet segments of the day. With ``--data-dir`` the directory is kept and reused by a
   later run with the same shape.
2. **Reads.** For each read: (a) the query function end to end (``get_metric_statistics`` or
   ``get_metric_data``, as the route calls it: validation, window, SQL, the store's snapshot
   and read, datapoints as JSON-ready dicts), (b) the generated SQL alone through
   ``MetricStore.query``, and (c) the best hand-written DuckDB SQL for the same answer, on its
   own in-memory connection, over the same segment files. Each side runs once to warm up (those
   answers are compared: (a) and (c) must agree, else exit status 1), then ``--repeat`` times in
   rotating order; the figure is the median (fewer rounds where one would take over
   ``--budget`` seconds).

Targets (issue 5): (a)/(c) <= 1.5 for every read.
"""

from __future__ import annotations

import argparse
import json
import math
import shutil
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import duckdb
import pyarrow.parquet as pq
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from benchmarks.query import median_times, runs_within, timed
from query.metrics.get_data import MetricDataBody, get_metric_data
from query.metrics.reads import MetricStatisticsBody, get_metric_statistics
from query.metrics.statistic import parse_statistic
from query.metrics.statistics import CompiledStatistics, StatisticsQuery, compile_statistics
from query.metrics.window import MAX_STATISTICS_DATAPOINTS, plan_window
from store.metric_model import canonical_dims
from store.metric_sql import METRIC_ROWS
from store.metrics import MetricStore, MetricStoreConfig

T0 = 1_767_225_600_000  # 2026-01-01 00:00:00 UTC: the data starts here
HOUR_MS = 3_600_000
NAMESPACE = "Bench/Service"
UNIT = "Milliseconds"
BATCH_STEPS = 48  # time steps per put: 96,000 rows at the default shape, ~16 MiB in Arrow
TARGET = 1.5
META = "watchkeep-metrics-bench.json"
FORMAT = 2  # bump when the generated data changes, so that cached directories are regenerated
ACCOUNT_ID = "000000000000"
PICK_METRIC, PICK_DIMS = 42, 7  # the series GetMetricStatistics reads

# One row per (time step i, metric m, dimension set d): a latency-like value in [10, 1000) ms,
# at a second of the step that depends on the series, so that series do not share timestamps.
_ROWS_SQL = """
SELECT $namespace AS namespace, printf('Metric%03d', m) AS metric_name,
       printf('Host=host-%02d', d) AS dims, map(['Host'], [printf('host-%02d', d)]) AS dimensions,
       $t0 + i * $step_ms + ((m * 7 + d) % $step_s) * 1000 AS ts_ms, $unit AS unit,
       1 AS storage_resolution, 1.0 AS sample_count, v AS "sum", v AS minimum, v AS maximum,
       [v] AS "values", [1.0] AS counts
FROM (
    SELECT i, m, d,
           round(10 + power((hash(i, m, d) % 1000000) / 1000000.0, 3) * 990, 2)::DOUBLE AS v
    FROM range($lo, $hi) t(i), range($metrics) a(m), range($dims) b(d)
)
ORDER BY i, m, d
"""


@dataclass(frozen=True)
class Shape:
    metrics: int
    dims: int
    hours: int
    interval_s: int

    @property
    def steps(self) -> int:
        return self.hours * 3600 // self.interval_s

    @property
    def values(self) -> int:
        return self.steps * self.metrics * self.dims

    @property
    def end_ms(self) -> int:
        return T0 + self.hours * HOUR_MS


def metric_name(m: int) -> str:
    return f"Metric{m:03d}"


def host(d: int) -> str:
    return f"host-{d:02d}"


# ---- data ----------------------------------------------------------------------------------


def open_store(data_dir: Path) -> tuple[MetricStore, duckdb.DuckDBPyConnection]:
    catalog = duckdb.connect(str(data_dir / "catalog.duckdb"))
    store = MetricStore(MetricStoreConfig(data_dir, fsync=False), catalog.cursor)
    store.open()
    store.recover()
    return store, catalog


def prepare_data(data_dir: Path, shape: Shape, console: Console) -> dict[str, Any]:
    """Reuse ``data_dir`` if it holds this benchmark's complete data for ``shape``; else
    generate it there (the directory must be new, empty, or made by this benchmark)."""
    meta_path = data_dir / META
    wanted = {"format": FORMAT, **shape.__dict__}
    if meta_path.exists():
        found = json.loads(meta_path.read_text())
        if found.get("complete") and all(found.get(k) == v for k, v in wanted.items()):
            console.print(f"reusing the generated data in {data_dir}")
            return {**found, "cached": True}
        console.print(f"{data_dir} holds other or incomplete data: generating it again")
        shutil.rmtree(data_dir)
    elif data_dir.exists() and any(data_dir.iterdir()):
        raise SystemExit(f"{data_dir} is not empty and was not made by this benchmark")
    data_dir.mkdir(parents=True, exist_ok=True)
    meta: dict[str, Any] = {**wanted, "complete": False}
    meta_path.write_text(json.dumps(meta))
    meta.update(generate(data_dir, shape, console), complete=True)
    meta_path.write_text(json.dumps(meta))
    return {**meta, "cached": False}


def generate(data_dir: Path, shape: Shape, console: Console) -> dict[str, Any]:
    """Put the rows batch by batch in time order, flushing and compacting on the way."""
    gen = duckdb.connect()
    store, catalog = open_store(data_dir)
    started = time.perf_counter()
    columns = [TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn()]
    try:
        with Progress(*columns, TimeElapsedColumn(), console=console) as progress:
            task = progress.add_task("generating and putting raw values", total=shape.values)
            for lo in range(0, shape.steps, BATCH_STEPS):
                hi = min(shape.steps, lo + BATCH_STEPS)
                params = {
                    "namespace": NAMESPACE,
                    "unit": UNIT,
                    "t0": T0,
                    "step_ms": shape.interval_s * 1000,
                    "step_s": shape.interval_s,
                    "lo": lo,
                    "hi": hi,
                    "metrics": shape.metrics,
                    "dims": shape.dims,
                }
                rows = gen.sql(_ROWS_SQL, params=params).to_arrow_table()
                store.put(rows).result(300)
                store.flush()  # when the memtable is due, as the server's scheduler does
                store.compact()
                progress.advance(task, rows.num_rows)
            progress.update(task, description="flushing to Parquet")
            store.flush(force=True)
            store.compact()
        seconds = time.perf_counter() - started
    finally:
        store.close()
        catalog.close()
        gen.close()
    return {"generate_s": round(seconds, 1)}


def lake_figures(files: Sequence[str]) -> dict[str, Any]:
    metas = [pq.read_metadata(p) for p in files]
    return {
        "segments": len(files),
        "rows": sum(m.num_rows for m in metas),
        "row_groups": sum(m.num_row_groups for m in metas),
        "bytes": sum(Path(p).stat().st_size for p in files),
    }


# ---- reads ---------------------------------------------------------------------------------

# Hand-written SQL reads ``$files`` (the day's segment files) and the range [$start, $stop).
_SRC = (
    "read_parquet($files, hive_partitioning = false) "
    "WHERE namespace = $namespace AND ts_ms >= $start AND ts_ms < $stop"
)
_BUCKET = "$start + (ts_ms - $start) // $period * $period"


def _hand_statistics(extended: bool) -> str:
    """One series' buckets: Average, Sum, Maximum, or the 99th percentile (nearest rank).

    ``quantile_disc`` is nearest rank on this data (one value per row, every count 1).
    """
    if extended:
        return (
            f"SELECT {_BUCKET} AS t, quantile_disc(v, 0.99) FROM ("
            f'SELECT ts_ms, unnest("values") AS v FROM {_SRC} AND metric_name = $name '
            "AND dims = $dims) GROUP BY 1 ORDER BY 1"
        )
    return (
        f'SELECT {_BUCKET} AS t, sum("sum") / sum(sample_count), sum("sum"), max(maximum) '
        f"FROM {_SRC} AND metric_name = $name AND dims = $dims GROUP BY 1 ORDER BY 1"
    )


def _hand_data(extended: bool) -> str:
    """Every metric's buckets for one dimension set, per metric name."""
    names = "metric_name IN (SELECT unnest($names))"
    if extended:
        return (
            f"SELECT metric_name, {_BUCKET} AS t, quantile_disc(v, 0.99) FROM ("
            f'SELECT metric_name, ts_ms, unnest("values") AS v FROM {_SRC} AND {names} '
            "AND dims = $dims) GROUP BY 1, 2 ORDER BY 1, 2"
        )
    return (
        f'SELECT metric_name, {_BUCKET} AS t, sum("sum") / sum(sample_count) '
        f"FROM {_SRC} AND {names} AND dims = $dims GROUP BY 1, 2 ORDER BY 1, 2"
    )


@dataclass(frozen=True)
class Read:
    key: str
    title: str
    period_s: int
    statistics: tuple[str, ...]
    metrics: int  # 1: GetMetricStatistics of one series; more: GetMetricData of that many

    @property
    def extended(self) -> bool:
        return self.statistics == ("p99",)


SIMPLE = ("Average", "Sum", "Maximum")
READS = [
    Read("gms_60", "GetMetricStatistics 1 metric, 60 s, Avg/Sum/Max", 60, SIMPLE, 1),
    Read("gms_60_p99", "GetMetricStatistics 1 metric, 60 s, p99", 60, ("p99",), 1),
    Read("gms_3600", "GetMetricStatistics 1 metric, 3600 s, Avg/Sum/Max", 3600, SIMPLE, 1),
    Read("gms_3600_p99", "GetMetricStatistics 1 metric, 3600 s, p99", 3600, ("p99",), 1),
    Read("gmd_300", "GetMetricData 100 metrics, 300 s, Average", 300, ("Average",), 100),
    Read("gmd_300_p99", "GetMetricData 100 metrics, 300 s, p99", 300, ("p99",), 100),
]


def _statistics_body(read: Read, shape: Shape) -> MetricStatisticsBody:
    simple = not read.extended
    return MetricStatisticsBody(
        namespace=NAMESPACE,
        metric_name=metric_name(PICK_METRIC),
        dimensions={"Host": host(PICK_DIMS)},
        start=T0 // 1000,
        end=shape.end_ms // 1000,
        period=read.period_s,
        statistics=list(read.statistics) if simple else None,
        extended_statistics=None if simple else list(read.statistics),
    )


def _data_body(read: Read, shape: Shape) -> MetricDataBody:
    queries = [
        {
            "id": f"m{m}",
            "metric_stat": {
                "metric": {
                    "namespace": NAMESPACE,
                    "metric_name": metric_name(m),
                    "dimensions": {"Host": host(PICK_DIMS)},
                },
                "period": read.period_s,
                "stat": read.statistics[0],
            },
        }
        for m in range(min(read.metrics, shape.metrics))
    ]
    return MetricDataBody.model_validate(
        {"metric_data_queries": queries, "start": T0 // 1000, "end": shape.end_ms // 1000}
    )


def _compiled(read: Read, shape: Shape, now_ms: int) -> CompiledStatistics:
    """The statement the end-to-end side runs (and its all-plain variant, which the store
    picks when every row it reads is plain), for timing the SQL alone."""
    cap = MAX_STATISTICS_DATAPOINTS if read.metrics == 1 else None
    window = plan_window(T0, shape.end_ms, read.period_s, now_ms, max_datapoints=cap)
    statistics = tuple(parse_statistic(s) for s in read.statistics)
    names = [PICK_METRIC] if read.metrics == 1 else range(min(read.metrics, shape.metrics))
    dims = canonical_dims({"Host": host(PICK_DIMS)})
    queries = [StatisticsQuery(NAMESPACE, metric_name(m), dims, window, statistics) for m in names]
    return compile_statistics(queries, METRIC_ROWS)


Answer = dict[tuple[str, int], tuple[float, ...]]


def answer_of_statistics(result: dict[str, Any], read: Read) -> Answer:
    out: Answer = {}
    for point in result["datapoints"]:
        if read.extended:
            values: tuple[float, ...] = (point["extended_statistics"]["p99"],)
        else:
            values = (point["average"], point["sum"], point["maximum"])
        out[(metric_name(PICK_METRIC), point["timestamp"])] = values
    return out


def answer_of_data(result: dict[str, Any]) -> Answer:
    out: Answer = {}
    for series in result["metric_data_results"]:
        name = metric_name(int(series["id"][1:]))
        for t, v in zip(series["timestamps"], series["values"], strict=True):
            out[(name, t)] = (v,)
    return out


def answer_of_rows(rows: list[tuple[Any, ...]], read: Read) -> Answer:
    if read.metrics == 1:
        return {(metric_name(PICK_METRIC), int(r[0])): tuple(r[1:]) for r in rows}
    return {(r[0], int(r[1])): tuple(r[2:]) for r in rows}


def same_answer(a: Answer, c: Answer) -> bool:
    return a.keys() == c.keys() and all(
        all(math.isclose(x, y, rel_tol=1e-9) for x, y in zip(a[k], c[k], strict=True)) for k in a
    )


def read_sides(
    store: MetricStore,
    hand: duckdb.DuckDBPyConnection,
    read: Read,
    shape: Shape,
    files: list[str],
    now_ms: int,
) -> dict[str, Callable[[], Any]]:
    """The ways to answer a read: (a) end to end, (b) generated SQL, (c) hand-written."""
    compiled = _compiled(read, shape, now_ms)
    hand_params: dict[str, Any] = {
        "files": files,
        "namespace": NAMESPACE,
        "start": T0,
        "stop": shape.end_ms,
        "period": read.period_s * 1000,
        "dims": canonical_dims({"Host": host(PICK_DIMS)}),
    }
    if read.metrics == 1:
        end_to_end: Callable[[], Any] = lambda: get_metric_statistics(  # noqa: E731
            store, _statistics_body(read, shape), now_ms=now_ms
        )
        hand_sql = _hand_statistics(read.extended)
        hand_params["name"] = metric_name(PICK_METRIC)
    else:
        body = _data_body(read, shape)
        end_to_end = lambda: get_metric_data(  # noqa: E731
            store, body, now_ms=now_ms, account_id=ACCOUNT_ID
        )
        hand_sql = _hand_data(read.extended)
        hand_params["names"] = [metric_name(m) for m in range(min(read.metrics, shape.metrics))]
    return {
        "a": end_to_end,
        "b": lambda: store.query(
            T0, shape.end_ms, compiled.sql, compiled.params, all_plain=compiled.all_plain
        ),
        "c": lambda: hand.sql(hand_sql, params=hand_params).fetchall(),
    }


def run_reads(
    store: MetricStore,
    shape: Shape,
    files: list[str],
    repeat: int,
    budget_s: float,
    console: Console,
) -> list[dict[str, Any]]:
    now_ms = shape.end_ms + HOUR_MS  # an hour after the data: every read sees raw rows
    hand = duckdb.connect()
    out = []
    columns = [TextColumn("{task.description:<52}"), BarColumn(), MofNCompleteColumn()]
    try:
        with Progress(*columns, TimeElapsedColumn(), console=console) as progress:
            task = progress.add_task("reads", total=len(READS) * (repeat + 1))
            for read in READS:
                progress.update(task, description=read.title)
                sides = read_sides(store, hand, read, shape, files, now_ms)
                warm_s, warm = {}, {}  # the warm-up run also gives the answers
                for name, fn in sides.items():
                    warm_s[name], warm[name] = timed(fn)
                progress.advance(task)
                runs = runs_within(budget_s, repeat, sum(warm_s.values()))
                progress.advance(task, repeat - runs)
                seconds = warm_s
                if runs:
                    seconds = median_times(sides, runs, lambda: progress.advance(task))
                a_answer = (
                    answer_of_statistics(warm["a"], read)
                    if read.metrics == 1
                    else answer_of_data(warm["a"])
                )
                c_answer = answer_of_rows(warm["c"], read)
                out.append(
                    {
                        "key": read.key,
                        "title": read.title,
                        "hand_sql": _hand_data(read.extended)
                        if read.metrics > 1
                        else _hand_statistics(read.extended),
                        "datapoints": len(a_answer),
                        "runs": runs,
                        "a_s": seconds["a"],
                        "b_s": seconds["b"],
                        "c_s": seconds["c"],
                        "a_over_c": seconds["a"] / seconds["c"],
                        "b_over_c": seconds["b"] / seconds["c"],
                        "same_answer": warm["b"].num_rows == len(c_answer)
                        and same_answer(a_answer, c_answer),
                    }
                )
    finally:
        hand.close()
    return out


# ---- report --------------------------------------------------------------------------------


def _ms(seconds: float) -> str:
    return f"{seconds * 1000:,.0f}" if seconds >= 0.01 else f"{seconds * 1000:.1f}"


def _ratio(value: float) -> str:
    return f"{value:.2f}x" + (" !" if value > TARGET else "  ")


def print_report(f: dict[str, Any]) -> None:
    lake, shape = f["lake"], f["shape"]
    lines = [
        f"metric benchmark: {shape['metrics']} metrics x {shape['dims']} dimension sets, one "
        f"value every {shape['interval_s']} s for {shape['hours']} h = {f['values']:,} raw "
        f"values; DuckDB {duckdb.__version__}, {f['threads']} threads; median of --repeat "
        f"{f['repeat']} runs after a warm-up, fewer where they would take over "
        f"{f['budget_s']:g} s (runs 0: the warm-up run alone)",
        f"  lake: {lake['segments']} segments, {lake['rows']:,} rows, {lake['row_groups']} row "
        f"groups, {lake['bytes'] / 2**20:,.0f} MiB"
        + (
            " (cached)"
            if f["cached"]
            else f" (generated in {f['generate_s']:.0f} s, "
            f"{f['values'] / max(f['generate_s'], 1e-9):,.0f} values/s)"
        ),
        "  (a) query function end to end   (b) generated SQL via MetricStore.query   "
        f"(c) hand-written DuckDB SQL;  ! = over the {TARGET}x target",
        f"  {'read':<52}{'points':>7}{'runs':>5}{'(a) ms':>9}{'(b) ms':>9}{'(c) ms':>9}"
        f"{'(a)/(c)':>10}{'(b)/(c)':>10}  same answer",
    ]
    for r in f["reads"]:
        lines.append(
            f"  {r['title']:<52}{r['datapoints']:>7}{r['runs']:>5}{_ms(r['a_s']):>9}"
            f"{_ms(r['b_s']):>9}{_ms(r['c_s']):>9}{_ratio(r['a_over_c']):>10}"
            f"{_ratio(r['b_over_c']):>10}  {'yes' if r['same_answer'] else 'NO'}"
        )
    print("\n".join(lines))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--metrics", type=int, default=100, help="metric names")
    parser.add_argument("--dims", type=int, default=20, help="dimension sets per metric")
    parser.add_argument("--hours", type=int, default=24, help="hours of data (at most 24)")
    parser.add_argument("--interval", type=int, default=15, help="seconds between values")
    parser.add_argument("--repeat", type=int, default=5, help="timed runs per read and side")
    parser.add_argument(
        "--budget",
        type=float,
        default=60.0,
        help="seconds per read: fewer runs when --repeat rounds would take longer",
    )
    parser.add_argument("--data-dir", type=Path, help="keep the data here and reuse it next time")
    parser.add_argument("--json", action="store_true", help="also print the figures as JSON")
    args = parser.parse_args(argv)
    if not (1 <= args.hours <= 24 and args.interval >= 1 and args.repeat >= 1):
        parser.error("--hours must be 1 to 24, --interval and --repeat at least 1")
    if args.metrics <= PICK_METRIC or args.dims <= PICK_DIMS:
        parser.error(f"--metrics must exceed {PICK_METRIC} and --dims {PICK_DIMS}")
    shape = Shape(args.metrics, args.dims, args.hours, args.interval)
    console = Console(stderr=True)
    tmp = None
    if args.data_dir is None:
        tmp = Path(tempfile.mkdtemp(prefix="watchkeep-metrics-bench-"))
    data_dir = (args.data_dir or tmp / "data").resolve()  # type: ignore[operator]
    try:
        meta = prepare_data(data_dir, shape, console)
        store, catalog = open_store(data_dir)
        try:
            files = [str(p) for p in store.segment_files(T0, shape.end_ms)]
            threads = catalog.sql("SELECT current_setting('threads')").fetchall()[0][0]
            reads = run_reads(store, shape, files, args.repeat, args.budget, console)
        finally:
            store.close()
            catalog.close()
        figures: dict[str, Any] = {
            "shape": shape.__dict__,
            "values": shape.values,
            "repeat": args.repeat,
            "budget_s": args.budget,
            "cached": meta["cached"],
            "generate_s": meta.get("generate_s"),
            "duckdb": duckdb.__version__,
            "threads": threads,
            "target": TARGET,
            "lake": lake_figures(files),
            "reads": reads,
        }
        print_report(figures)
        if args.json:
            print(json.dumps(figures, indent=2))
        return 0 if all(r["same_answer"] for r in reads) else 1
    finally:
        if tmp is not None:
            shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    try:
        sys.exit(main())
    except KeyboardInterrupt:
        sys.exit(130)
