"""The ``plain_samples`` flag: how the store computes it, and that reads give the same answers
whether a row carries it (true or false), lacks it (segments and WAL records from before it),
or sits in a segment the catalog knows to be all plain. Checked against plain Python."""

from __future__ import annotations

import math
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import duckdb
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from query.metrics.reads import SNAKE, datapoints_json, run_statistics
from query.metrics.statistic import parse_statistic
from query.metrics.statistics import Datapoint, StatisticsQuery, compile_statistics
from query.metrics.window import plan_window
from store.metric_lake import METRICS_TABLE_DIR
from store.metric_model import METRIC_SCHEMA, canonical_dims, datum_row, mark_plain_samples
from store.metric_sql import EMPTY
from store.metrics import MetricStore, MetricStoreConfig

T0 = 1_767_225_600_000
NOW = T0 + 3_600_000
NS, NAME, DIMS = "Shop/API", "Latency", {"Service": "checkout"}
SIMPLE = ["SampleCount", "Sum", "Average", "Minimum", "Maximum"]
PERCENTILES = ["p0", "p10", "p50", "p66.67", "p90", "p99", "p100"]


def raw(ts_ms: int, values: list[float], counts: list[float] | None = None) -> dict[str, Any]:
    return datum_row(
        namespace=NS, metric_name=NAME, dimensions=DIMS, ts_ms=ts_ms, values=values, counts=counts
    )


def stat_set(ts_ms: int, count: float, low: float, high: float) -> dict[str, Any]:
    total = count * low if low == high else low + high + (count - 2) * low
    return datum_row(
        namespace=NS,
        metric_name=NAME,
        dimensions=DIMS,
        ts_ms=ts_ms,
        statistic_values={"SampleCount": count, "Sum": total, "Minimum": low, "Maximum": high},
    )


# ---- the flag ------------------------------------------------------------------------------

ROLLED = raw(T0, [2.0]) | {"values": [], "counts": [], "rollup_s": 60, "sketch_keys": [16400]}
FLAG_CASES: list[tuple[str, dict[str, Any], bool]] = [
    ("one-value", raw(T0, [3.5]), True),
    ("values-without-counts", raw(T0, [1.0, 2.0, 2.0]), True),
    ("counts-all-one", raw(T0, [1.0, 2.0], [1, 1]), True),
    ("a-count-of-two", raw(T0, [1.0, 2.0], [1, 2]), False),
    ("fractional-counts", raw(T0, [1.0, 2.0], [0.5, 1.5]), False),
    ("one-value-count-below-one", raw(T0, [4.0], [0.25]), False),
    ("statistic-set-of-one", stat_set(T0, 1, 4.0, 4.0), False),
    ("statistic-set", stat_set(T0, 3, 1.0, 2.0), False),
    ("rolled-up", ROLLED, False),
    ("null-count-is-one", raw(T0, [1.0, 2.0]) | {"counts": [1.0, None]}, True),
    ("writer-claims-plain", raw(T0, [1.0], [2]) | {"plain_samples": True}, False),
]


@pytest.mark.parametrize(
    ("row", "plain"), [c[1:] for c in FLAG_CASES], ids=[c[0] for c in FLAG_CASES]
)
def test_mark_plain_samples(row: dict[str, Any], plain: bool) -> None:
    rows = [raw(T0, [9.0], [3]), row, raw(T0, [8.0])]  # neighbours: offsets must line up
    table = pa.Table.from_pylist(rows, schema=METRIC_SCHEMA)
    for chunked in (table, pa.concat_tables([table.slice(0, 1), table.slice(1)])):
        marked, all_plain = mark_plain_samples(chunked)
        assert marked.column("plain_samples").to_pylist() == [False, plain, True]
        assert all_plain is False
    alone, all_plain = mark_plain_samples(pa.Table.from_pylist([row], schema=METRIC_SCHEMA))
    assert all_plain is plain is alone.column("plain_samples")[0].as_py()


def test_no_rows_are_all_plain() -> None:
    marked, all_plain = mark_plain_samples(METRIC_SCHEMA.empty_table())
    assert marked.num_rows == 0 and all_plain is True


# ---- the percentile plan over flagged, unflagged and mixed rows -----------------------------


def _points(duck: duckdb.DuckDBPyConnection, *, fast: bool) -> list[list[Datapoint]]:
    """p-values, and simple statistics in a second query of the same statement."""
    window = plan_window(T0, T0 + 600_000, 60, NOW)
    dims = canonical_dims(DIMS)
    order = tuple(parse_statistic(t) for t in PERCENTILES)
    queries = [StatisticsQuery(NS, NAME, dims, window, order)]
    queries.append(StatisticsQuery(NS, NAME, dims, window, tuple(map(parse_statistic, SIMPLE))))
    compiled = compile_statistics(queries, fast=fast)
    return compiled.datapoints(duck.execute(compiled.sql, compiled.params).fetchall())


def _expected(samples: list[float]) -> dict[str, float]:
    x, n = sorted(samples), len(samples)
    out = {"SampleCount": n, "Sum": math.fsum(x), "Minimum": x[0], "Maximum": x[-1]}
    out["Average"] = out["Sum"] / n
    for text in PERCENTILES:
        bp = parse_statistic(text).basis_points  # type: ignore[union-attr]
        out[text] = x[max(1, -(-bp * n // 10_000)) - 1]
    return out


_value = st.integers(-3, 9).map(float)
_rows = st.lists(
    st.tuples(
        st.integers(0, 4),  # bucket (minute)
        st.lists(st.tuples(_value, st.sampled_from([1, 1, 1, 1, 2, 3])), min_size=1, max_size=4),
        st.sampled_from(["marked", "marked", "old"]),  # old: written before the flag (NULL)
    ),
    max_size=10,
)
_sets = st.lists(st.tuples(st.integers(0, 4), st.integers(1, 3), _value), max_size=2)


@settings(
    max_examples=80, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(_rows, _sets)
def test_flagged_rows_give_the_answers_of_plain_python(
    duck: duckdb.DuckDBPyConnection,
    rows: list[tuple[int, list[tuple[float, int]], str]],
    sets: list[tuple[int, int, float]],
) -> None:
    marked, old = [], []
    samples: dict[int, list[float]] = {}
    for i, (minute, row, kind) in enumerate(rows):
        datum = raw(T0 + minute * 60_000 + i, [v for v, _ in row], [float(c) for _, c in row])
        (marked if kind == "marked" else old).append(datum)
        samples.setdefault(minute, []).extend(v for v, c in row for _ in range(c))
    for i, (minute, count, value) in enumerate(sets):  # constant sets keep their percentiles
        marked.append(stat_set(T0 + minute * 60_000 + 30_000 + i, count, value, value))
        samples.setdefault(minute, []).extend([value] * count)
    table = pa.concat_tables(
        [
            mark_plain_samples(pa.Table.from_pylist(marked, schema=METRIC_SCHEMA))[0],
            pa.Table.from_pylist(old, schema=METRIC_SCHEMA),
        ]
    )
    duck.register("metrics_arrow", table)
    duck.execute("CREATE OR REPLACE VIEW metrics AS SELECT * FROM metrics_arrow")
    fast, general = _points(duck, fast=True), _points(duck, fast=False)
    assert fast == general
    order, simple = fast
    assert [p.timestamp_ms for p in order] == [T0 + m * 60_000 for m in sorted(samples)]
    for p, q in zip(order, simple, strict=True):
        expected = _expected(samples[(p.timestamp_ms - T0) // 60_000])
        assert p.values == {t: expected[t] for t in PERCENTILES}
        assert q.values == pytest.approx({t: expected[t] for t in SIMPLE})
        assert p.sample_count == q.sample_count == expected["SampleCount"]


# ---- the store: all-plain segments, mixed segments, segments from before the flag ----------


class Catalog:
    def __init__(self, path: Path) -> None:
        self.db = duckdb.connect(str(path))

    def cursor(self) -> duckdb.DuckDBPyConnection:
        return self.db.cursor()


@pytest.fixture
def data(tmp_path: Path) -> Path:
    return tmp_path / "data"


def open_store(data: Path, **config: Any) -> tuple[MetricStore, Catalog]:
    data.mkdir(parents=True, exist_ok=True)
    catalog = Catalog(data / "catalog.duckdb")
    store = MetricStore(
        MetricStoreConfig(data, fsync=False, **config), catalog.cursor, clock=lambda: 0.0
    )
    store.open()
    store.recover()
    return store, catalog


@pytest.fixture
def opened(data: Path) -> Iterator[tuple[MetricStore, Catalog]]:
    store, catalog = open_store(data)
    yield store, catalog
    store.close()
    catalog.db.close()


def _put(store: MetricStore, rows: list[dict[str, Any]], *, flush: bool = True) -> None:
    store.put(pa.Table.from_pylist(rows, schema=METRIC_SCHEMA)).result(10)
    if flush:
        store.flush(force=True)


def _read(store: MetricStore, texts: list[str]) -> dict[int, dict[str, float | None]]:
    window = plan_window(T0, T0 + 600_000, 60, NOW)
    statistics = tuple(parse_statistic(t) for t in texts)
    query = StatisticsQuery(NS, NAME, canonical_dims(DIMS), window, statistics)
    return {p.timestamp_ms: p.values for p in run_statistics(store, [query])[0]}


def _check(store: MetricStore, samples: dict[int, list[float]]) -> None:
    for texts in (PERCENTILES, SIMPLE, ["Average"], ["Minimum", "p50"]):
        got = _read(store, texts)
        assert sorted(got) == [T0 + m * 60_000 for m in sorted(samples)]
        for ts, values in got.items():
            expected = _expected(samples[(ts - T0) // 60_000])
            assert values == pytest.approx({t: expected[t] for t in texts}), texts


def test_segments_of_every_kind_read_alike(opened: tuple[MetricStore, Catalog]) -> None:
    store, catalog = opened
    plain = [raw(T0 + m * 60_000 + i, [float(m + i), float(i)]) for m in range(3) for i in range(4)]
    weighted = [raw(T0 + m * 60_000 + 50, [float(-m), 7.0], [2, 1]) for m in range(1, 4)]
    sets = [stat_set(T0 + 2 * 60_000 + 55, 3, 5.0, 5.0)]
    _put(store, plain)  # an all-plain segment
    _put(store, weighted + sets)  # a segment of other rows
    _put(store, [raw(T0 + 4 * 60_000, [1.5, 2.5])], flush=False)  # the memtable
    flags = catalog.db.sql("SELECT plain FROM metric_segments").fetchall()
    assert sorted(r[0] for r in flags) == [False, True]
    samples: dict[int, list[float]] = {}
    for row in plain + weighted + sets + [raw(T0 + 4 * 60_000, [1.5, 2.5])]:
        minute = (row["ts_ms"] - T0) // 60_000
        if row["values"]:
            weights = [int(c) for c in row["counts"]]
            samples.setdefault(minute, []).extend(
                v for v, c in zip(row["values"], weights, strict=True) for _ in range(c)
            )
        else:
            samples.setdefault(minute, []).extend([row["minimum"]] * int(row["sample_count"]))
    _check(store, samples)


def test_segments_from_before_the_flag_stay_readable(data: Path) -> None:
    rows = [
        raw(T0 + m * 60_000 + i, [float(m * i), 2.0], [1, 1 + i % 2])
        for m in range(3)
        for i in range(3)
    ]
    rows += [raw(T0 + m * 60_000 + 40, [float(10 - m)]) for m in range(3)]
    store, catalog = open_store(data)
    _put(store, rows)
    store.close()
    # As an older version wrote it: no plain_samples column, and a catalog without the flag.
    (segment,) = (data / METRICS_TABLE_DIR).rglob("*.parquet")
    pq.write_table(pq.read_table(segment).drop_columns(["plain_samples"]), segment)
    catalog.db.execute("UPDATE metric_segments SET plain = NULL")
    catalog.db.close()
    store, catalog = open_store(data)
    try:
        samples: dict[int, list[float]] = {}
        for row in rows:
            weights = [int(c) for c in row["counts"]]
            samples.setdefault((row["ts_ms"] - T0) // 60_000, []).extend(
                v for v, c in zip(row["values"], weights, strict=True) for _ in range(c)
            )
        _check(store, samples)
    finally:
        store.close()
        catalog.db.close()


# ---- every segment carries a correct flag, whichever job wrote it --------------------------

MIXED = [
    raw(T0, [1.0, 2.0]),
    raw(T0 + 1, [1.0, 2.0], [1, 2]),
    raw(T0 + 2, [3.0]) | {"plain_samples": False},  # a writer's flag is not the store's
    raw(T0 + 3, [1.0], [2]) | {"plain_samples": True},
    stat_set(T0 + 4, 2, 1.0, 3.0),
]
ALL_PLAIN = [raw(T0 + 5, [4.0]), raw(T0 + 6, [5.0, 6.0])]


def _is_plain(row: dict[str, Any]) -> bool:
    return (
        bool(row["values"])
        and all(c is None or c == 1 for c in row["counts"] or [])
        and row["rollup_s"] is None
        and row["sketch_keys"] is None
    )


def _strip_flags(data: Path) -> None:
    """Make the closed store's segments look as a version before the flag wrote them."""
    catalog = Catalog(data / "catalog.duckdb")
    for segment in (data / METRICS_TABLE_DIR).rglob("*.parquet"):
        pq.write_table(pq.read_table(segment).drop_columns(["plain_samples"]), segment)
    catalog.db.execute("UPDATE metric_segments SET plain = NULL")
    catalog.db.close()


def _crash(store: MetricStore, catalog: Catalog) -> None:
    """Stop without flushing, like kill -9 after the last fsync."""
    assert store._commit is not None
    store._commit.close()
    catalog.db.close()


def _by_flush(data: Path) -> tuple[MetricStore, Catalog]:
    store, catalog = open_store(data)
    _put(store, MIXED)
    _put(store, ALL_PLAIN)
    return store, catalog


def _by_wal_replay(data: Path) -> tuple[MetricStore, Catalog]:
    for batch, plain in ((MIXED, False), (ALL_PLAIN, True)):
        store, catalog = open_store(data)
        _put(store, batch, flush=False)
        _crash(store, catalog)
        store, catalog = open_store(data)
        assert [b.plain for b in store._memtable.snapshot()] == [plain]
        store.flush(force=True)
        if batch is MIXED:
            store.close()
            catalog.db.close()
    return store, catalog


def _by_compaction(data: Path) -> tuple[MetricStore, Catalog]:
    store, catalog = _by_flush(data)
    store.close()
    catalog.db.close()
    _strip_flags(data)
    store, catalog = open_store(data, compact_min_segments=1)
    assert store.compact() == 2
    return store, catalog


def _by_roll_up(data: Path) -> tuple[MetricStore, Catalog]:
    store, catalog = _by_flush(data)
    store.close()
    catalog.db.close()
    _strip_flags(data)
    store, catalog = open_store(data)
    assert [t.target_s for t in store.roll_up(now_ms=T0 + 20 * 86_400_000)] == [300]
    return store, catalog


WRITER_CASES = [
    ("flush", _by_flush, [False, True]),
    ("wal-replay", _by_wal_replay, [False, True]),
    ("compaction-of-segments-from-before-the-flag", _by_compaction, [False]),
    ("roll-up", _by_roll_up, [False]),
]


@pytest.mark.parametrize(
    ("write", "catalog_plain"), [c[1:] for c in WRITER_CASES], ids=[c[0] for c in WRITER_CASES]
)
def test_every_segment_written_carries_a_correct_flag(
    data: Path, write: Any, catalog_plain: list[bool]
) -> None:
    store, catalog = write(data)
    try:
        segments = catalog.db.sql("SELECT path, plain FROM metric_segments").fetchall()
        assert sorted(plain for _, plain in segments) == catalog_plain
        for path, plain in segments:
            rows = pq.read_table(data / path, partitioning=None).to_pylist()
            flags = [row["plain_samples"] for row in rows]
            assert flags == [_is_plain(row) for row in rows], path
            assert plain is all(flags), path
    finally:
        store.close()
        catalog.db.close()


# ---- the all-plain statement ---------------------------------------------------------------


@settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    st.lists(
        st.tuples(st.integers(0, 4), st.lists(_value, min_size=1, max_size=4)),
        min_size=1,
        max_size=10,
    ),
    st.lists(st.sampled_from(PERCENTILES), min_size=1, max_size=3),
    st.lists(st.sampled_from(SIMPLE), max_size=2),
)
def test_the_all_plain_statement_gives_the_same_rows(
    duck: duckdb.DuckDBPyConnection,
    rows: list[tuple[int, list[float]]],
    texts: list[str],
    simple: list[str],
) -> None:
    table = [raw(T0 + minute * 60_000 + i, values) for i, (minute, values) in enumerate(rows)]
    duck.register(
        "metrics_arrow", mark_plain_samples(pa.Table.from_pylist(table, METRIC_SCHEMA))[0]
    )
    duck.execute("CREATE OR REPLACE VIEW metrics AS SELECT * FROM metrics_arrow")
    window = plan_window(T0, T0 + 600_000, 60, NOW)
    dims = canonical_dims(DIMS)
    queries = [StatisticsQuery(NS, NAME, dims, window, tuple(map(parse_statistic, texts)))]
    if simple:  # a second read in the same statement, as GetMetricData and alarms make
        queries.append(StatisticsQuery(NS, NAME, dims, window, tuple(map(parse_statistic, simple))))
    compiled = compile_statistics(queries)
    assert compiled.all_plain is not None
    general = compiled.datapoints(duck.execute(compiled.sql, compiled.params).fetchall())
    plain_sql, plain_params = compiled.all_plain
    plain = compiled.datapoints(duck.execute(plain_sql, plain_params).fetchall())
    assert plain == general
    samples: dict[int, list[float]] = {}
    for minute, values in rows:
        samples.setdefault(minute, []).extend(values)
    for point in plain[0]:
        expected = _expected(samples[(point.timestamp_ms - T0) // 60_000])
        assert point.values == {t: expected[t] for t in dict.fromkeys(texts)}


WHICH_CASES: list[tuple[str, list[str], bool]] = [
    # name, what the range holds, whether the all-plain statement runs
    ("all-plain-segments", ["plain segment", "plain segment"], True),
    ("plain-memtable", ["plain segment", "plain memtable"], True),
    ("nothing", [], True),
    ("weighted-segment", ["plain segment", "weighted segment"], False),
    ("weighted-memtable", ["plain segment", "weighted memtable"], False),
    ("statistic-set-segment", ["set segment"], False),
]


@pytest.mark.parametrize(
    ("holds", "plain"), [c[1:] for c in WHICH_CASES], ids=[c[0] for c in WHICH_CASES]
)
def test_the_store_runs_the_all_plain_statement_only_over_plain_rows(
    opened: tuple[MetricStore, Catalog], holds: list[str], plain: bool
) -> None:
    store, _ = opened
    made = {
        "plain": raw(T0, [1.0, 2.0]),
        "weighted": raw(T0 + 1, [1.0, 2.0], [1, 2]),
        "set": stat_set(T0 + 2, 2, 1.0, 3.0),
    }
    for item in holds:
        kind, where = item.split()
        _put(store, [made[kind]], flush=where == "segment")
    answer = store.query(T0, T0 + 60_000, "SELECT 'general'", [], all_plain=("SELECT 'plain'", []))
    assert answer.column(0).to_pylist() == ["plain" if plain else "general"]


def test_the_empty_part_has_the_metric_table_columns(duck: duckdb.DuckDBPyConnection) -> None:
    duck.register("metrics_arrow", METRIC_SCHEMA.empty_table())
    arrow = duck.sql("DESCRIBE SELECT * FROM metrics_arrow").fetchall()
    assert duck.sql(f"DESCRIBE {EMPTY}").fetchall() == arrow


# ---- GetMetricStatistics JSON straight from the columns ------------------------------------

JSON_CASES: list[tuple[str, list[str]]] = [
    ("simple", ["Average", "Sum", "Maximum", "Minimum", "SampleCount"]),
    ("percentiles", ["p99", "p50", "p0"]),
    ("general", ["tm90", "p50", "IQM", "PR(:3)"]),
    ("repeated", ["p90", "p90"]),
]


@pytest.mark.parametrize("texts", [c[1] for c in JSON_CASES], ids=[c[0] for c in JSON_CASES])
def test_datapoints_json_matches_the_datapoints(
    duck: duckdb.DuckDBPyConnection, texts: list[str]
) -> None:
    rows = [
        raw(T0, [1.0, 2.0, 3.0]),
        raw(T0 + 60_000, [4.0, 5.0], [2, 1]),
        stat_set(T0 + 120_000, 3, 1.0, 5.0),  # opaque: no order statistic in minute 2
        stat_set(T0 + 180_000, 2, 6.0, 6.0),
        raw(T0 + 180_000, [-1.5]),
    ]
    duck.register("metrics_arrow", mark_plain_samples(pa.Table.from_pylist(rows, METRIC_SCHEMA))[0])
    duck.execute("CREATE OR REPLACE VIEW metrics AS SELECT * FROM metrics_arrow")
    statistics = tuple(parse_statistic(t) for t in texts)
    window = plan_window(T0, T0 + 600_000, 60, NOW)
    compiled = compile_statistics(
        [StatisticsQuery(NS, NAME, canonical_dims(DIMS), window, statistics)]
    )
    table = duck.sql(compiled.sql, params=compiled.params).to_arrow_table()
    (points,) = compiled.datapoints(zip(*(c.to_pylist() for c in table.columns), strict=True))
    simple = {"SampleCount", "Sum", "Average", "Minimum", "Maximum"}
    expected = []
    for p in points:
        point: dict[str, Any] = {"timestamp": p.timestamp_ms}
        point |= {SNAKE[t]: p.values[t] for t in texts if t in simple}
        if any(t not in simple for t in texts):
            point["extended_statistics"] = {t: p.values[t] for t in texts if t not in simple}
        expected.append(point | {"unit": p.unit})
    assert datapoints_json(table, statistics) == expected
    assert len(expected) == 4
