"""``statistics(source, requests, at)`` for alarms: sliding buckets anchored at ``at`` (spec §5.3),
the too-old rule measured from ``at``, one statement per batch, over a real MetricStore."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import duckdb
import pyarrow as pa
import pytest

from core.metric_errors import InvalidParameterValue
from query.metrics.alarm_reads import AlarmBucket, AlarmRead, compile_alarm_reads, statistics
from store.metric_model import METRIC_SCHEMA, datum_row
from store.metrics import MetricStore, MetricStoreConfig

T0 = 1_767_225_600_000  # 2026-01-01T00:00:00Z
MIN = 60_000
DIMS = {"Host": "a"}


class CountingSource:
    """The MetricStore, counting the statements it is asked to run."""

    def __init__(self, store: MetricStore) -> None:
        self.store = store
        self.calls = 0

    def query(
        self,
        start_ms: int,
        end_ms: int,
        sql: str,
        params: Sequence[Any],
        *,
        all_plain: tuple[str, Sequence[Any]] | None = None,
    ) -> pa.Table:
        self.calls += 1
        return self.store.query(start_ms, end_ms, sql, params, all_plain=all_plain)


@pytest.fixture
def store(tmp_path: Path) -> Iterator[MetricStore]:
    db = duckdb.connect(str(tmp_path / "catalog.duckdb"))
    metric_store = MetricStore(MetricStoreConfig(tmp_path), db.cursor, clock=lambda: T0 / 1000)
    metric_store.open()
    metric_store.recover()
    yield metric_store
    metric_store.close()
    db.close()


def put(
    store: MetricStore, points: list[tuple[int, float]], name: str = "Cpu", **extra: Any
) -> None:
    rows = [
        datum_row(namespace="App", metric_name=name, dimensions=DIMS, ts_ms=t, values=[v], **extra)
        for t, v in points
    ]
    store.put(pa.Table.from_pylist(rows, schema=METRIC_SCHEMA)).result(10)


def read(
    name: str = "Cpu",
    statistic: str = "Average",
    period_s: int = 60,
    buckets: int = 3,
    **extra: Any,
) -> AlarmRead:
    return AlarmRead("App", name, DIMS, statistic, period_s, buckets, **extra)


def expected(
    points: list[tuple[int, float]], at: int, period_s: int, buckets: int
) -> list[tuple[int, float]]:
    """Average per sliding bucket, worked out in plain Python: age k is [at-kP, at-(k-1)P)."""
    out = []
    for age in range(buckets, 0, -1):
        start, end = at - age * period_s * 1000, at - (age - 1) * period_s * 1000
        inside = [v for t, v in points if start <= t < end]
        if inside:
            out.append((start, sum(inside) / len(inside)))
    return out


def test_buckets_slide_with_the_evaluation_instant(store: MetricStore) -> None:
    points = [(T0 - 20 * MIN + m * MIN, float(m * m % 7)) for m in range(20)]
    put(store, points)
    for at in (T0, T0 - 2 * MIN, T0 - 3 * MIN):  # 5-minute buckets, never aligned to :00/:05
        (got,) = statistics(store, [read(period_s=300, buckets=3)], at)
        assert [(b.start_ms, b.value) for b in got] == expected(points, at, 300, 3), at
        assert all(b.sample_count == 5 and b.unit == "None" for b in got)


def test_sub_minute_periods_are_not_rounded(store: MetricStore) -> None:
    points = [(T0 - 60_000 + s * 1000, float(s)) for s in range(60)]
    put(store, points, storage_resolution=1)
    at = T0 - 5_000  # a 20-second bucket ending at :55, not at a multiple of 20 s
    (got,) = statistics(store, [read(period_s=20, buckets=2)], at)
    assert [(b.start_ms, b.value) for b in got] == expected(points, at, 20, 2)
    assert got[0].start_ms == T0 - 45_000


def test_missing_buckets_are_absent(store: MetricStore) -> None:
    put(store, [(T0 - 5 * MIN, 1.0), (T0 - MIN, 3.0)])
    (got,) = statistics(store, [read(buckets=5)], T0)
    assert got == [
        AlarmBucket(T0 - 5 * MIN, 1.0, 1.0, "None"),
        AlarmBucket(T0 - MIN, 3.0, 1.0, "None"),
    ]


def test_the_too_old_rule_is_measured_from_at(store: MetricStore) -> None:
    """Data 20 days older than the store's clock still answers an evaluation as of its time."""
    old = T0 - 20 * 86_400_000
    put(store, [(old - 2 * MIN, 4.0), (old - MIN, 6.0)])
    (got,) = statistics(store, [read(buckets=3)], old)
    assert [b.value for b in got] == [4.0, 6.0]
    # A 10-second alarm whose range reaches past the 3-hour tier of sub-minute data.
    put(store, [(T0 - 10_900_000, 1.0), (T0 - 100_000, 2.0)], name="Fast", storage_resolution=1)
    (fast,) = statistics(store, [read("Fast", period_s=10, buckets=1_100)], T0)
    assert [(b.start_ms, b.value) for b in fast] == [(T0 - 100_000, 2.0)]


def test_percentiles_units_and_opaque_buckets(store: MetricStore) -> None:
    put(store, [(T0 - 2 * MIN, float(v)) for v in range(1, 11)], unit="Milliseconds")
    put(store, [(T0 - MIN, 99.0)], unit="Seconds")
    rows = [
        datum_row(
            namespace="App",
            metric_name="Cpu",
            dimensions=DIMS,
            ts_ms=T0 - 3 * MIN,
            statistic_values={"SampleCount": 3, "Sum": 6, "Minimum": 1, "Maximum": 3},
        )
    ]
    store.put(pa.Table.from_pylist(rows, schema=METRIC_SCHEMA)).result(10)
    p90, only_ms, average = statistics(
        store,
        [read(statistic="p90"), read(statistic="Maximum", unit="Milliseconds"), read()],
        T0,
    )
    # The statistic set of several values has no p90: that bucket is missing, not None.
    assert [(b.start_ms, b.value) for b in p90] == [(T0 - 2 * MIN, 9.0), (T0 - MIN, 99.0)]
    assert [(b.value, b.unit) for b in only_ms] == [(10.0, "Milliseconds")]
    assert [(b.start_ms, b.value, b.sample_count) for b in average] == [
        (T0 - 3 * MIN, 2.0, 3.0),
        (T0 - 2 * MIN, 5.5, 10.0),
        (T0 - MIN, 99.0, 1.0),
    ]


def test_a_batch_is_one_statement(store: MetricStore) -> None:
    put(store, [(T0 - MIN, 1.0)], name="A")
    put(store, [(T0 - MIN, 2.0)], name="B")
    source = CountingSource(store)
    requests = [read("A"), read("B", statistic="Sum", period_s=120, buckets=1), read("Nothing")]
    got = statistics(source, requests, T0)
    assert source.calls == 1
    assert [[b.value for b in buckets] for buckets in got] == [[1.0], [2.0], []]
    assert statistics(source, [], T0) == [] and source.calls == 1


@pytest.mark.parametrize(
    ("request_", "fragment"),
    [
        (read(period_s=45), "period must be"),
        (read(buckets=0), "at least one bucket"),
        (read(statistic="Median"), "unknown statistic"),
        (read(unit="Furlongs"), "unknown unit"),
    ],
    ids=["period", "buckets", "statistic", "unit"],
)
def test_invalid_requests(request_: AlarmRead, fragment: str) -> None:
    with pytest.raises(InvalidParameterValue, match=fragment):
        compile_alarm_reads([request_], T0)
