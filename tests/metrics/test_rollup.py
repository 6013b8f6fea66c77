"""Roll-ups of the metric store (spec §1.8) on real DuckDB + Parquet, with an injected now."""

from __future__ import annotations

import math
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import duckdb
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from query.metrics.reads import MetricStatisticsBody, get_metric_statistics, run_statistics
from query.metrics.statistic import parse_statistic
from query.metrics.statistics import Datapoint, StatisticsQuery
from query.metrics.window import Window, plan_window
from store.metric_lake import DAY_MS, METRICS_TABLE_DIR
from store.metric_model import METRIC_SCHEMA, ROLLUP_COLUMNS, datum_row
from store.metrics import MetricStore, MetricStoreConfig

NOW_MS = 1_767_225_600_000  # 2026-01-01T00:00:00Z, on every tier's grid
MIN_MS = 60_000


class Crash(Exception):
    pass


class Catalog:
    def __init__(self, path: Path) -> None:
        self.db = duckdb.connect(str(path))

    def cursor(self) -> duckdb.DuckDBPyConnection:
        return self.db.cursor()


def open_store(data: Path) -> tuple[MetricStore, Catalog]:
    data.mkdir(parents=True, exist_ok=True)
    catalog = Catalog(data / "catalog.duckdb")
    store = MetricStore(MetricStoreConfig(data, fsync=False), catalog.cursor, clock=lambda: 0.0)
    store.open()
    store.recover()
    return store, catalog


def close(store: MetricStore, catalog: Catalog) -> None:
    store.close()
    catalog.db.close()


@pytest.fixture
def opened(tmp_path: Path) -> Iterator[MetricStore]:
    store, catalog = open_store(tmp_path / "data")
    yield store
    close(store, catalog)


def datum(ts_ms: int, name: str = "m", **kwargs: Any) -> dict[str, Any]:
    return datum_row(namespace="N", metric_name=name, dimensions={"H": "a"}, ts_ms=ts_ms, **kwargs)


def put(store: MetricStore, rows: list[dict[str, Any]]) -> None:
    store.put(pa.Table.from_pylist(rows, schema=METRIC_SCHEMA)).result(10)
    store.flush(force=True)


def rows_of(store: MetricStore, where: str = "true") -> list[dict[str, Any]]:
    sql = f"SELECT * FROM metrics WHERE {where} ORDER BY metric_name, unit, ts_ms, rollup_s NULLS FIRST"
    rows: list[dict[str, Any]] = store.query(0, 10**15, sql, []).to_pylist()
    return rows


def stats(
    store: MetricStore, window: Window, *names: str, name: str = "m", unit: str | None = None
) -> list[Datapoint]:
    statistics = tuple(parse_statistic(n) for n in names)
    query = StatisticsQuery("N", name, "H=a", window, statistics, unit)
    return run_statistics(store, [query])[0]


def expected(rows: list[dict[str, Any]], width_ms: int) -> dict[int, tuple[float, ...]]:
    """SampleCount, Sum, Minimum, Maximum per bucket, in plain Python."""
    out: dict[int, list[dict[str, Any]]] = {}
    for row in rows:
        out.setdefault(row["ts_ms"] - row["ts_ms"] % width_ms, []).append(row)
    return {
        bucket: (
            sum(r["sample_count"] for r in members),
            math.fsum(r["sum"] for r in members),
            min(r["minimum"] for r in members),
            max(r["maximum"] for r in members),
        )
        for bucket, members in out.items()
    }


def mixed_day(start_ms: int, minutes: int) -> list[dict[str, Any]]:
    """Values lists, single values and statistic sets, two units."""
    rows = []
    for i in range(minutes):
        ts = start_ms + i * MIN_MS
        rows.append(datum(ts, values=[i * 0.1, -i, 0.0, 3.3], counts=[1, 2, 1, 4]))
        rows.append(datum(ts, values=[1e-3 * (i + 1)], unit="Seconds"))
        if i % 3 == 0:
            stats_ = {"SampleCount": 4, "Sum": 10.0 + i, "Minimum": -1.0, "Maximum": 7.5 + i}
            rows.append(datum(ts, statistic_values=stats_))
    return rows


def test_rollup_keeps_the_four_aggregates_exactly(opened: MetricStore) -> None:
    start = NOW_MS - 20 * DAY_MS
    source = mixed_day(start, 120)
    put(opened, source)
    tasks = opened.roll_up(now_ms=NOW_MS)
    assert [(t.day_ms, t.target_s) for t in tasks] == [(start, 300)]
    rolled = rows_of(opened)
    assert {r["rollup_s"] for r in rolled} == {300}
    assert all(r["values"] == [] and r["storage_resolution"] == 60 for r in rolled)
    for unit in ("None", "Seconds"):
        want = expected([r for r in source if r["unit"] == unit], 300_000)
        got = {
            r["ts_ms"]: (r["sample_count"], r["sum"], r["minimum"], r["maximum"])
            for r in rolled
            if r["unit"] == unit
        }
        assert got.keys() == want.keys()
        for bucket, (n, total, low, high) in want.items():
            assert got[bucket][0] == n and got[bucket][2:] == (low, high)
            assert got[bucket][1] == pytest.approx(total, rel=1e-12, abs=1e-12)


def test_running_twice_changes_nothing(opened: MetricStore, tmp_path: Path) -> None:
    put(opened, mixed_day(NOW_MS - 70 * DAY_MS, 30) + mixed_day(NOW_MS - 20 * DAY_MS, 30))
    assert len(opened.roll_up(now_ms=NOW_MS)) == 2
    before, files = rows_of(opened), sorted((tmp_path / "data").rglob("*.parquet"))
    assert {r["rollup_s"] for r in before} == {300, 3600}
    assert opened.roll_up(now_ms=NOW_MS) == []
    assert rows_of(opened) == before
    assert sorted((tmp_path / "data").rglob("*.parquet")) == files


@pytest.mark.parametrize("step", ["written", "inserted"])
def test_a_crash_between_the_steps_counts_nothing_twice(tmp_path: Path, step: str) -> None:
    data = tmp_path / "data"
    store, catalog = open_store(data)
    put(store, mixed_day(NOW_MS - 20 * DAY_MS, 60))
    before = rows_of(store)

    def crash(at: str) -> None:
        if at == step:
            raise Crash(at)

    with pytest.raises(Crash):
        store.roll_up(now_ms=NOW_MS, hook=crash)
    assert rows_of(store) == before, "the catalog and the published view are unchanged"
    store._commit.close()  # type: ignore[union-attr]  # like kill -9: no flush, no clean-up
    catalog.db.close()
    store, catalog = open_store(data)
    assert rows_of(store) == before
    window = Window(NOW_MS - 20 * DAY_MS, NOW_MS - 19 * DAY_MS, 3600, NOW_MS - 20 * DAY_MS)
    raw_points = stats(store, window, "SampleCount", "Sum")
    assert len(store.roll_up(now_ms=NOW_MS)) == 1
    rolled_points = stats(store, window, "SampleCount", "Sum")
    assert [p.sample_count for p in rolled_points] == [p.sample_count for p in raw_points]
    assert len(list((data / METRICS_TABLE_DIR).rglob("*.parquet"))) == 1 + 1  # new + doomed
    close(store, catalog)


def test_reads_span_the_tiers(opened: MetricStore) -> None:
    """Twenty days of one value a minute: the old part in 300 s rows, the rest raw."""
    start = NOW_MS - 20 * DAY_MS
    source = [datum(start + i * MIN_MS, values=[float(i % 7)]) for i in range(20 * 1440)]
    put(opened, source)
    opened.roll_up(now_ms=NOW_MS)
    tiers = {r["rollup_s"] for r in rows_of(opened, "ts_ms < " + str(NOW_MS - 15 * DAY_MS))}
    assert tiers == {300}
    window = plan_window(start, NOW_MS, 300, NOW_MS)
    points = stats(opened, window, "SampleCount", "Sum", "Maximum")
    want = expected(source, 300_000)
    assert len(points) == 20 * 288 == len(want)
    for point in points:
        n, total, _, high = want[point.timestamp_ms]
        assert (point.sample_count, point.values["Sum"], point.values["Maximum"]) == (
            n,
            total,
            high,
        )
    body = MetricStatisticsBody(
        namespace="N",
        metric_name="m",
        dimensions={"H": "a"},
        start=(start + 7 * MIN_MS) // 1000,  # rounds down to 5 minutes: 15-63 days old
        end=NOW_MS // 1000,
        period=1200,
        statistics=["SampleCount", "Sum"],
    )
    answer = get_metric_statistics(opened, body, now_ms=NOW_MS)
    assert len(answer["datapoints"]) == 1440
    first = answer["datapoints"][0]
    assert first["timestamp"] == start + 5 * MIN_MS
    assert first["sample_count"] == 20 and first["sum"] == sum(i % 7 for i in range(5, 25))


def test_a_period_that_is_not_a_multiple_of_the_tier_returns_nothing_there(
    opened: MetricStore,
) -> None:
    start = NOW_MS - 20 * DAY_MS
    put(opened, [datum(start + i * 2 * 3_600_000, values=[1.0]) for i in range(240)])
    opened.roll_up(now_ms=NOW_MS)
    points = stats(opened, plan_window(start, NOW_MS, 60, NOW_MS), "SampleCount")
    assert points and min(p.timestamp_ms for p in points) >= NOW_MS - 15 * DAY_MS
    points = stats(opened, plan_window(start, NOW_MS, 120, NOW_MS), "SampleCount")
    assert min(p.timestamp_ms for p in points) >= NOW_MS - 15 * DAY_MS
    # A bucket grid off the 300 s grid (an alarm's sliding range) cannot split rolled rows.
    shifted = Window(start + MIN_MS, start + DAY_MS, 300, start + MIN_MS)
    assert stats(opened, shifted, "SampleCount") == []
    aligned = Window(start, start + DAY_MS, 300, start)
    assert sum(p.sample_count for p in stats(opened, aligned, "SampleCount")) == 12


def test_statistic_sets_only_keep_the_simple_statistics(opened: MetricStore) -> None:
    start = NOW_MS - 20 * DAY_MS
    several = {"SampleCount": 5, "Sum": 20.0, "Minimum": 1.0, "Maximum": 9.0}
    constant = {"SampleCount": 3, "Sum": 6.0, "Minimum": 2.0, "Maximum": 2.0}
    put(
        opened,
        [datum(start + i * MIN_MS, statistic_values=several) for i in range(5)]
        + [datum(start + i * MIN_MS, name="c", statistic_values=constant) for i in range(5)],
    )
    opened.roll_up(now_ms=NOW_MS)
    window = Window(start, start + 3_600_000, 3600, start)
    (point,) = stats(opened, window, "SampleCount", "Sum", "Minimum", "Maximum", "p50")
    assert point.values == {
        "SampleCount": 25.0,
        "Sum": 100.0,
        "Minimum": 1.0,
        "Maximum": 9.0,
        "p50": None,
    }
    (point,) = stats(opened, window, "p50", "Sum", name="c")
    assert point.values == {"p50": 2.0, "Sum": 30.0}


def test_percentiles_are_exact_while_raw_and_within_one_percent_after(tmp_path: Path) -> None:
    values = [float(v) for v in range(1, 151)]
    start = NOW_MS - 20 * DAY_MS
    store, catalog = open_store(tmp_path / "data")
    put(store, [datum(start, values=values[:75]), datum(start + MIN_MS, values=values[75:])])
    window = Window(start, start + 3_600_000, 3600, start)
    (raw,) = stats(store, window, "p99", "p50", "IQM")
    assert raw.values == {"p99": 149.0, "p50": 75.0, "IQM": sum(values[37:113]) / 76}
    store.roll_up(now_ms=NOW_MS)
    (rolled,) = stats(store, window, "p99", "p50", "IQM")
    for text, exact in raw.values.items():
        got = rolled.values[text]
        assert got is not None and exact is not None
        assert got != exact and abs(got - exact) <= 0.01 * exact
    close(store, catalog)


def test_high_resolution_rows_roll_into_minutes_after_three_hours(opened: MetricStore) -> None:
    start = NOW_MS - 2 * DAY_MS
    high = [datum(start + i * 1_000, values=[1.0], storage_resolution=1) for i in range(120)]
    put(opened, high + [datum(start, values=[5.0])])
    assert [t.target_s for t in opened.roll_up(now_ms=NOW_MS)] == [60]
    rows = rows_of(opened)
    assert [(r["rollup_s"], r["sample_count"]) for r in rows] == [(None, 1), (60, 60), (60, 60)]
    window = Window(start, start + 3_600_000, 60, start)
    points = stats(opened, window, "SampleCount", "Sum")
    assert [(p.timestamp_ms, p.sample_count) for p in points] == [
        (start, 61.0),
        (start + MIN_MS, 60.0),
    ]
    assert opened.roll_up(now_ms=NOW_MS) == []


def test_retention_drops_days_past_the_last_horizon(opened: MetricStore) -> None:
    put(
        opened,
        [
            datum(NOW_MS - 456 * DAY_MS, name="gone", values=[1.0]),
            datum(NOW_MS - 100 * DAY_MS, name="kept", values=[2.0]),
        ],
    )
    opened.roll_up(now_ms=NOW_MS)
    day = NOW_MS - 456 * DAY_MS  # NOW is midnight: the datum starts its day
    assert opened.apply_retention(dry_run=True, now_ms=NOW_MS) == [day]
    assert opened.apply_retention(now_ms=NOW_MS) == [day]
    assert [(r["metric_name"], r["rollup_s"]) for r in rows_of(opened)] == [("kept", 3600)]
    window = plan_window(NOW_MS - 101 * DAY_MS, NOW_MS - 99 * DAY_MS, 3600, NOW_MS)
    assert [p.values["Sum"] for p in stats(opened, window, "Sum", name="kept")] == [2.0]


def test_segments_without_the_rollup_columns_stay_readable(tmp_path: Path) -> None:
    start = NOW_MS - 20 * DAY_MS
    store, catalog = open_store(tmp_path / "data")
    put(store, [datum(start + i * MIN_MS, values=[float(i)]) for i in range(10)])
    close(store, catalog)
    # As a version before roll-ups wrote it: without those columns, nor the later plain flag.
    (segment,) = (tmp_path / "data" / METRICS_TABLE_DIR).rglob("*.parquet")
    old_columns = [*ROLLUP_COLUMNS, "plain_samples"]
    pq.write_table(pq.read_table(segment).drop_columns(old_columns), segment)
    with duckdb.connect(str(tmp_path / "data" / "catalog.duckdb")) as db:
        db.execute("UPDATE metric_segments SET plain = false")
    store, catalog = open_store(tmp_path / "data")
    try:
        window = Window(start, start + 3_600_000, 3600, start)
        for statistic in ("Sum", "p50"):
            assert [p.values[statistic] for p in stats(store, window, statistic)] == [
                45.0 if statistic == "Sum" else 4.0
            ]
        store.roll_up(now_ms=NOW_MS)
        assert stats(store, window, "Sum")[0].values["Sum"] == 45.0
    finally:
        close(store, catalog)
