"""Alarm benchmark: CPU time of one evaluation round of 10,000 alarms, against the 60 s period.

Method (everything in ONE process and ONE run, so machine noise hits every side alike):

1. **Data.** A real ``MetricStore`` in a temporary directory (DuckDB catalog file, Parquet
   segments, WAL without fsync). ``--metrics`` metrics (4 namespaces x 5 names x a ``Host``
   dimension) get one datum of 5 raw values per minute for the ``HISTORY_MIN`` minutes before
   the first round, published minute by minute through ``MetricStore.put``; every
   ``FLUSH_EVERY_MIN`` minutes are flushed to Parquet (then compacted), the newest stay in the
   memtable. Before every round the minute that just ended is published, as agents would.
   Each metric's level follows a slow sine (period ``WAVE_MIN`` minutes, its own phase) plus
   noise, so alarms cross their thresholds now and then: a few % transition per round.
2. **Rules.** ``--alarms`` metric alarms in one rule file (Average, Sum, Maximum and p99; periods
   60 and 300 s; ``evaluation_periods`` 1-5, some with ``datapoints_to_alarm``; the four missing
   data treatments), every tenth with a webhook action (so transitions enqueue deliveries in a
   real ``Outbox`` on the same catalog; no notifier runs), plus ``COMPOSITES`` composites over
   them.
3. **Rounds.** ``AlarmEngine.tick(at)`` at ``--rounds`` consecutive minute instants (every alarm
   is due at each). Per round: process CPU time (``time.process_time``: every thread, DuckDB's
   included) and wall time, split into the batched metric read (``TickReport.read_s``, wall) and
   the rest. The first round creates nothing (states are created by ``open``) but is the first
   to read and write all 10,000 states, so it is reported apart as the cold round.
4. **Baseline**, same data, same instants: the least work the same answer needs, hand-written:
   one DuckDB statement computing the per-bucket aggregates (count, sum, min, max and the 99th
   percentile of the raw values) of every metric over the widest window, for 60 s and 300 s
   buckets anchored at the instant, over the same segment files and memtable; plus the pure
   ``alarms.evaluate.evaluate`` of every alarm over its already-read datapoints.

The budget (DESIGN.md, issue 6): tick CPU per round < 20 % of the 60 s period.
"""

from __future__ import annotations

import argparse
import cProfile
import io
import json
import math
import pstats
import shutil
import statistics
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import duckdb
import pyarrow as pa

import alarms.engine
from alarms.engine import AlarmEngine
from alarms.evaluate import evaluate
from alarms.outbox import Outbox
from alarms.reads import alarm_datapoints, read_buckets
from alarms.store import AlarmStore
from store.metric_model import METRIC_SCHEMA, datum_row
from store.metrics import MetricStore, MetricStoreConfig

T0 = 1_767_268_800_000  # 2026-01-01 12:00:00 UTC: the first round
MINUTE_MS = 60_000
HISTORY_MIN = 120  # minutes of data before the first round
FLUSH_EVERY_MIN = 30  # minutes of data per flush to Parquet
MEMTABLE_MIN = 15  # the newest minutes of the history stay in the memtable
WAVE_MIN = 60  # the period of each metric's level, in minutes
VALUES = 5  # raw values per datum
COMPOSITES = 20
BUDGET = 0.20  # of one core, per 60 s period
NAMESPACES = ("Bench/Web", "Bench/Api", "Bench/Db", "Bench/Queue")
NAMES = ("Latency", "Errors", "Cpu", "Depth", "Requests")
STATISTICS = ("Average", "Sum", "Maximum", "p99")
TREATMENTS = ("missing", "notBreaching", "breaching", "ignore")
OPERATORS = (">", ">=", "<", "<=")


@dataclass(frozen=True, slots=True)
class Metric:
    namespace: str
    name: str
    host: str
    phase: float  # of the sine, in radians


def metrics_of(count: int) -> list[Metric]:
    per = len(NAMESPACES) * len(NAMES)
    return [
        Metric(
            NAMESPACES[i % len(NAMESPACES)],
            NAMES[(i // len(NAMESPACES)) % len(NAMES)],
            f"host-{i // per:04d}",
            2 * math.pi * _unit(i, 1),
        )
        for i in range(count)
    ]


def _unit(i: int, salt: int) -> float:
    """A deterministic pseudo-random number in [0, 1) for (i, salt)."""
    x = (i * 2_654_435_761 + salt * 40_503 + 12_345) & 0xFFFFFFFF
    x ^= x >> 15
    x = (x * 2_246_822_519) & 0xFFFFFFFF
    x ^= x >> 13
    return x / 2**32


def level(metric: Metric, ts_ms: int) -> float:
    """The metric's level at a minute: 50 +- 30 on its sine."""
    return 50 + 30 * math.sin(2 * math.pi * ts_ms / (WAVE_MIN * MINUTE_MS) + metric.phase)


def minute_rows(metrics: list[Metric], ts_ms: int) -> pa.Table:
    """One datum of ``VALUES`` raw values per metric for the minute starting at ``ts_ms``."""
    rows = []
    for i, metric in enumerate(metrics):
        center = level(metric, ts_ms)
        minute = ts_ms // MINUTE_MS
        values = [center + 10 * (_unit(i * 7 + j, minute) - 0.5) for j in range(VALUES)]
        rows.append(
            datum_row(
                namespace=metric.namespace,
                metric_name=metric.name,
                dimensions={"Host": metric.host},
                ts_ms=ts_ms + 1_000 * (i % 50),  # spread within the minute
                values=values,
            )
        )
    return pa.Table.from_pylist(rows, schema=METRIC_SCHEMA)


def rules_yaml(metrics: list[Metric], alarms: int) -> str:
    """The rule file: ``alarms`` metric alarms over ``metrics`` and ``COMPOSITES`` composites."""
    lines = [
        "targets:",
        "  oncall:",
        "    type: webhook",
        "    url: http://127.0.0.1:9/hook",
        "    secret: {env: WK_BENCH_SECRET}",
        "alarms:",
    ]
    for a in range(alarms):
        i = a % len(metrics)
        metric = metrics[i]
        statistic = STATISTICS[a % len(STATISTICS)]
        period = 300 if _unit(a, 2) < 0.3 else 60
        n = 1 + int(_unit(a, 3) * 5)
        m = 1 + int(_unit(a, 4) * n) if n > 1 and _unit(a, 5) < 0.4 else None
        operator = OPERATORS[a % len(OPERATORS)]
        # Thresholds within the sine's range, so the level crosses them twice per wave.
        threshold = round(50 + 50 * (_unit(a, 6) - 0.5), 1)
        if statistic == "Sum":
            threshold = round(threshold * VALUES * (period // 60), 1)
        elif statistic == "Maximum":
            threshold += 5
        lines += [
            f"  - name: a{a:05d}",
            f"    metric: {{namespace: {metric.namespace}, name: {metric.name}, "
            f"dimensions: {{Host: {metric.host}}}}}",
            f"    statistic: {statistic}",
            f"    period: {period}s",
            f"    evaluation_periods: {n}",
            *([f"    datapoints_to_alarm: {m}"] if m is not None else []),
            f'    comparison: "{operator}"',
            f"    threshold: {threshold}",
            f"    treat_missing_data: {TREATMENTS[a % len(TREATMENTS)]}",
            *(["    actions: {alarm: [oncall], ok: [oncall]}"] if a % 10 == 0 else []),
        ]
    lines.append("composites:")
    for c in range(min(COMPOSITES, alarms // 5)):
        children = " OR ".join(f"ALARM(a{(c * 5 + k) * 7 % alarms:05d})" for k in range(4))
        lines += [f"  - name: c{c:03d}", f'    rule: "{children}"']
    return "\n".join(lines) + "\n"


# ---- the setup


@dataclass
class Bench:
    catalog: duckdb.DuckDBPyConnection
    metrics: MetricStore
    engine: AlarmEngine
    series: list[Metric]
    clock: list[float]  # seconds; the engine's and the store's clock

    def publish(self, ts_ms: int) -> None:
        self.metrics.put(minute_rows(self.series, ts_ms)).result()


@contextmanager
def open_bench(root: Path, metric_count: int, alarm_count: int) -> Iterator[Bench]:
    clock = [T0 / 1_000]
    catalog = duckdb.connect(str(root / "catalog.duckdb"))
    config = MetricStoreConfig(data_dir=root, fsync=False, flush_interval_s=1e9)
    metrics = MetricStore(config, catalog.cursor, clock=lambda: clock[0])
    metrics.open()
    metrics.recover()
    series = metrics_of(metric_count)
    rules = root / "rules"
    rules.mkdir()
    (rules / "bench.yaml").write_text(rules_yaml(series, alarm_count), encoding="utf-8")
    outbox = Outbox(catalog.cursor)
    outbox.ensure_schema()
    engine = AlarmEngine(
        AlarmStore(catalog.cursor),
        metrics,
        outbox,
        rules_dir=rules,
        audit=None,
        clock=lambda: clock[0],
    )
    bench = Bench(catalog, metrics, engine, series, clock)
    try:
        yield bench
    finally:
        metrics.close()
        catalog.close()


def load_history(bench: Bench) -> dict[str, Any]:
    """``HISTORY_MIN`` minutes before ``T0``: flushed every ``FLUSH_EVERY_MIN``, the newest
    ``MEMTABLE_MIN`` in the memtable."""
    started = time.perf_counter()
    first = T0 - HISTORY_MIN * MINUTE_MS
    for minute in range(HISTORY_MIN):
        bench.clock[0] = (first + minute * MINUTE_MS) / 1_000
        bench.publish(first + minute * MINUTE_MS)
        published = minute + 1
        flushed_upto = HISTORY_MIN - MEMTABLE_MIN
        if published == flushed_upto or (
            published < flushed_upto and not published % FLUSH_EVERY_MIN
        ):
            bench.metrics.flush(force=True)
    bench.metrics.compact()
    return {"load_s": time.perf_counter() - started, **bench.metrics.stats()}


# ---- measuring


@dataclass(frozen=True, slots=True)
class Round:
    at_ms: int
    cpu_s: float
    wall_s: float
    read_s: float  # wall, the batched read (TickReport.read_s)
    read_cpu_s: float  # the batched read: compile, DuckDB, buckets
    sql_cpu_s: float  # of which the statement in DuckDB (MetricStore.query)
    evaluated: int
    transitions: int


def timed_tick(bench: Bench, at_ms: int, profile: cProfile.Profile | None = None) -> Round:
    """One round at ``at_ms``: the minute before it is published first (not timed)."""
    bench.clock[0] = (at_ms - MINUTE_MS) / 1_000
    bench.publish(at_ms - MINUTE_MS)
    bench.clock[0] = at_ms / 1_000
    engine = bench.engine
    read_cpu: list[float] = []
    sql_cpu: list[float] = []
    # The CPU of the read, around the very calls the tick makes (TickReport has wall time only).
    # The engine's own reference to read_buckets is swapped (it imported the name).
    engine_module: Any = alarms.engine
    original_source, original_read = engine._metrics, engine_module.read_buckets
    engine._metrics = _CpuMeter(original_source, sql_cpu)
    engine_module.read_buckets = _cpu_metered(original_read, read_cpu)
    try:
        cpu, wall = time.process_time(), time.perf_counter()
        if profile is not None:
            profile.enable()
        report = engine.tick(at_ms)
        if profile is not None:
            profile.disable()
        cpu, wall = time.process_time() - cpu, time.perf_counter() - wall
    finally:
        engine._metrics = original_source
        engine_module.read_buckets = original_read
    return Round(
        at_ms,
        cpu,
        wall,
        report.read_s,
        sum(read_cpu),
        sum(sql_cpu),
        report.evaluated,
        report.transitions,
    )


def _cpu_metered(fn: Any, spent: list[float]) -> Any:
    """``fn``, adding the process CPU time of every call to ``spent``."""

    def metered(*args: Any, **kwargs: Any) -> Any:
        started = time.process_time()
        try:
            return fn(*args, **kwargs)
        finally:
            spent.append(time.process_time() - started)

    return metered


class _CpuMeter:
    """A metric source whose ``query`` adds its process CPU time to ``spent``."""

    def __init__(self, source: Any, spent: list[float]) -> None:
        self.query = _cpu_metered(source.query, spent)


_HAND_SQL = """
WITH metrics AS (
    SELECT namespace, metric_name, dims, ts_ms, sample_count, "sum", minimum, maximum, "values"
    FROM {segments}
    WHERE ts_ms >= $start AND ts_ms < $end
    UNION ALL
    SELECT namespace, metric_name, dims, ts_ms, sample_count, "sum", minimum, maximum, "values"
    FROM mem
    WHERE ts_ms >= $start AND ts_ms < $end
), periods(period_ms) AS (VALUES (60000), (300000))
SELECT p.period_ms, namespace, metric_name, dims, $end - (($end - ts_ms - 1) // p.period_ms + 1)
           * p.period_ms AS bucket_ms,
       sum(sample_count) AS n, sum("sum") AS total, min(minimum) AS low, max(maximum) AS high,
       quantile_disc(v, 0.99) AS p99
FROM metrics, periods AS p, unnest("values") AS u(v)
GROUP BY ALL
"""


def baseline(bench: Bench, at_ms: int) -> dict[str, float]:
    """The hand-written minimum of the same work at ``at_ms`` (see the module docstring)."""
    store = bench.metrics
    rules = list(bench.engine.rules.alarms.values())
    start = at_ms - max(a.range_length * a.period_s * 1_000 for a in rules)
    files = [str(store.config.data_dir / s.path) for s in store._lake_().select(start, at_ms)]
    memory = pa.concat_tables([b.table for b in store._memtable.snapshot()])
    conn = duckdb.connect()
    try:
        conn.register("mem", memory)
        cpu = time.process_time()
        # Without segments in the window (a short --rounds), the memtable alone.
        parquet = "read_parquet($files, hive_partitioning = false)"
        text = _HAND_SQL.replace("{segments}", parquet if files else "(FROM mem LIMIT 0)")
        params: dict[str, Any] = {"start": start, "end": at_ms} | (
            {"files": files} if files else {}
        )
        rows = conn.execute(text, params).fetchall()
        sql_cpu = time.process_time() - cpu
    finally:
        conn.close()
    buckets = read_buckets(store, rules, at_ms)
    states = {name: status.state for name, status in bench.engine._statuses.items()}
    prepared = [
        (a, alarm_datapoints(a, b, at_ms))
        for a in rules
        if not isinstance(b := buckets[a.name], Exception)
    ]
    cpu = time.process_time()
    for alarm, points in prepared:
        evaluate(alarm, points, states[alarm.name], at_ms)
    evaluate_cpu = time.process_time() - cpu
    return {
        "sql_cpu_s": sql_cpu,
        "evaluate_cpu_s": evaluate_cpu,
        "cpu_s": sql_cpu + evaluate_cpu,
        "rows": float(len(rows)),
    }


def run(metric_count: int, alarm_count: int, rounds: int, profile_top: int) -> dict[str, Any]:
    root = Path(tempfile.mkdtemp(prefix="watchkeep-alarm-bench-"))
    try:
        with open_bench(root, metric_count, alarm_count) as bench:
            data = load_history(bench)
            started = time.perf_counter()
            bench.engine.open()
            open_s = time.perf_counter() - started
            first = timed_tick(bench, T0)
            warm = [timed_tick(bench, T0 + r * MINUTE_MS) for r in range(1, rounds)]
            base = [baseline(bench, T0 + (rounds - 1) * MINUTE_MS)]
            profile = None
            if profile_top:
                profiler = cProfile.Profile()
                timed_tick(bench, T0 + rounds * MINUTE_MS, profiler)
                out = io.StringIO()
                pstats.Stats(profiler, stream=out).sort_stats("cumulative").print_stats(profile_top)
                profile = out.getvalue()
            base.append(baseline(bench, T0 + (rounds if profile_top else rounds - 1) * MINUTE_MS))
        return figures(metric_count, alarm_count, data, open_s, first, warm, base, profile)
    finally:
        shutil.rmtree(root, ignore_errors=True)


def figures(
    metric_count: int,
    alarm_count: int,
    data: dict[str, Any],
    open_s: float,
    first: Round,
    warm: list[Round],
    base: list[dict[str, float]],
    profile: str | None,
) -> dict[str, Any]:
    def median(values: list[float]) -> float:
        return statistics.median(values) if values else math.nan

    cpu = median([r.cpu_s for r in warm])
    base_cpu = median([b["cpu_s"] for b in base])
    return {
        "alarms": alarm_count,
        "metrics": metric_count,
        "rounds": 1 + len(warm),
        "duckdb": duckdb.__version__,
        "data": data,
        "open_s": open_s,
        "first": _round_json(first),
        "rounds_detail": [_round_json(r) for r in warm],
        "cpu_s": cpu,
        "wall_s": median([r.wall_s for r in warm]),
        "read_s": median([r.read_s for r in warm]),
        "read_cpu_s": median([r.read_cpu_s for r in warm]),
        "sql_cpu_s": median([r.sql_cpu_s for r in warm]),
        "rest_cpu_s": median([r.cpu_s - r.read_cpu_s for r in warm]),
        "cpu_fraction": cpu / 60,
        "budget": BUDGET,
        "transitions": median([float(r.transitions) for r in warm]),
        "baseline": {
            "sql_cpu_s": median([b["sql_cpu_s"] for b in base]),
            "evaluate_cpu_s": median([b["evaluate_cpu_s"] for b in base]),
            "cpu_s": base_cpu,
        },
        "ratio": cpu / base_cpu if base_cpu else math.nan,
        "profile": profile,
    }


def _round_json(r: Round) -> dict[str, Any]:
    return {
        "at_ms": r.at_ms,
        "cpu_s": r.cpu_s,
        "wall_s": r.wall_s,
        "read_s": r.read_s,
        "read_cpu_s": r.read_cpu_s,
        "sql_cpu_s": r.sql_cpu_s,
        "rest_cpu_s": r.cpu_s - r.read_cpu_s,
        "evaluated": r.evaluated,
        "transitions": r.transitions,
    }


def print_report(f: dict[str, Any]) -> None:
    b, first = f["baseline"], f["first"]
    ok = f["cpu_fraction"] < f["budget"]
    lines = [
        f"alarm benchmark: {f['alarms']:,} alarms over {f['metrics']:,} metrics, "
        f"{f['rounds']} rounds (DuckDB {f['duckdb']})",
        f"  data: {HISTORY_MIN} min loaded in {f['data']['load_s']:.1f} s, "
        f"{f['data']['metric_segments']} segments + memtable; engine.open {f['open_s']:.2f} s",
        "  per round (median of the warm rounds)       CPU s   wall s",
        f"    tick                                   {f['cpu_s']:>8.3f} {f['wall_s']:>8.3f}",
        f"      batched metric read                  {f['read_cpu_s']:>8.3f} {f['read_s']:>8.3f}",
        f"        of which the SQL in DuckDB         {f['sql_cpu_s']:>8.3f}",
        f"      the rest (evaluate, settle, commit)  {f['rest_cpu_s']:>8.3f} "
        f"{f['wall_s'] - f['read_s']:>8.3f}",
        f"    first round (cold)                     {first['cpu_s']:>8.3f} {first['wall_s']:>8.3f}"
        f"   (read {first['read_cpu_s']:.3f} CPU s)",
        f"  transitions per round: {f['transitions']:.0f} "
        f"({f['transitions'] / f['alarms']:.1%}); first round {first['transitions']:,}",
        f"  CPU fraction of the 60 s period: {f['cpu_fraction']:.1%} "
        f"(budget < {f['budget']:.0%}: {'met' if ok else 'MISSED'}); "
        f"first round {first['cpu_s'] / 60:.1%}",
        f"  baseline: hand-written SQL {b['sql_cpu_s']:.3f} CPU s + evaluate() alone "
        f"{b['evaluate_cpu_s']:.3f} CPU s = {b['cpu_s']:.3f} CPU s",
        f"  ratio tick / baseline: {f['ratio']:.2f}x",
    ]
    print("\n".join(lines))
    if f["profile"]:
        print(f["profile"])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--alarms", type=int, default=10_000, help="metric alarms")
    parser.add_argument("--metrics", type=int, default=1_000, help="metrics they watch")
    parser.add_argument("--rounds", type=int, default=6, help="ticks, the first one cold")
    parser.add_argument(
        "--profile", type=int, default=0, metavar="N", help="cProfile one more round, top N"
    )
    parser.add_argument("--json", action="store_true", help="also print the figures as JSON")
    args = parser.parse_args(argv)
    if args.alarms < 1 or args.metrics < 1 or args.rounds < 2:
        parser.error("--alarms and --metrics must be at least 1, --rounds at least 2")
    f = run(args.metrics, args.alarms, args.rounds, args.profile)
    print_report(f)
    if args.json:
        print(json.dumps({k: v for k, v in f.items() if k != "profile"}, indent=2))
    return 0 if f["cpu_fraction"] < f["budget"] else 1


if __name__ == "__main__":
    try:
        sys.exit(main())
    except KeyboardInterrupt:
        sys.exit(130)
