"""The percentile-only plan of ``compile_statistics`` against the general plan (same answers),
on hypothesis-generated buckets of raw values with and without counts, statistic sets of one
value, of identical values and of several values (opaque), and against plain Python."""

from __future__ import annotations

from typing import Any

import duckdb
import pyarrow as pa
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from query.metrics.statistic import parse_statistic
from query.metrics.statistics import StatisticsQuery, compile_statistics
from query.metrics.window import plan_window
from store.metric_model import METRIC_SCHEMA, canonical_dims, datum_row

T0 = 1_767_225_600_000
NOW = T0 + 3_600_000
NS, NAME, DIMS = "Shop/API", "Latency", {"Service": "checkout"}
PERCENTILES = ["p0", "p1", "p7", "p25", "p50", "p66.67", "p90", "p99", "p99.99", "p100"]


def _raw(ts_ms: int, values: list[float], counts: list[float]) -> dict[str, Any]:
    return datum_row(
        namespace=NS, metric_name=NAME, dimensions=DIMS, ts_ms=ts_ms, values=values, counts=counts
    )


def _set(ts_ms: int, count: float, low: float, high: float) -> dict[str, Any]:
    total = count * low if low == high else low + high + (count - 2) * low
    return datum_row(
        namespace=NS,
        metric_name=NAME,
        dimensions=DIMS,
        ts_ms=ts_ms,
        statistic_values={"SampleCount": count, "Sum": total, "Minimum": low, "Maximum": high},
    )


def _points(duck: duckdb.DuckDBPyConnection, texts: list[str], *, fast: bool) -> Any:
    window = plan_window(T0, T0 + 600_000, 60, NOW)
    statistics = tuple(parse_statistic(t) for t in texts)
    queries = [StatisticsQuery(NS, NAME, canonical_dims(DIMS), window, statistics)]
    compiled = compile_statistics(queries, fast=fast)
    assert ("list_reduce" in compiled.sql) == fast
    return compiled.datapoints(duck.execute(compiled.sql, compiled.params).fetchall())[0]


_value = st.integers(-3, 9).map(float)
_raw_rows = st.lists(
    st.tuples(
        st.integers(0, 4),  # bucket (minute)
        st.lists(st.tuples(_value, st.sampled_from([1, 1, 1, 2, 3])), min_size=1, max_size=5),
    ),
    max_size=8,
)
_sets = st.lists(
    st.tuples(st.integers(0, 4), st.integers(1, 4), _value, st.sampled_from([0.0, 0.0, 2.5])),
    max_size=3,
)


@settings(
    max_examples=80, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(_raw_rows, _sets, st.lists(st.sampled_from(PERCENTILES), min_size=1, max_size=4))
def test_percentile_plan_matches_the_general_plan(
    duck: duckdb.DuckDBPyConnection,
    rows: list[tuple[int, list[tuple[float, int]]]],
    sets: list[tuple[int, int, float, float]],
    texts: list[str],
) -> None:
    table = [
        _raw(T0 + minute * 60_000 + i, [v for v, _ in row], [float(c) for _, c in row])
        for i, (minute, row) in enumerate(rows)
    ]
    table += [
        _set(T0 + minute * 60_000 + 30_000 + i, count, low, low + spread)
        for i, (minute, count, low, spread) in enumerate(sets)
    ]
    duck.register("metrics_arrow", pa.Table.from_pylist(table, schema=METRIC_SCHEMA))
    duck.execute("CREATE OR REPLACE VIEW metrics AS SELECT * FROM metrics_arrow")
    texts = list(dict.fromkeys(texts))
    fast, general = _points(duck, texts, fast=True), _points(duck, texts, fast=False)
    assert fast == general
    for point in fast:  # unit-count buckets, checked against nearest rank by hand as well
        minute = (point.timestamp_ms - T0) // 60_000
        mine = [row for m, row in rows if m == minute]
        if any(m == minute for m, *_ in sets) or any(c != 1 for row in mine for _, c in row):
            continue
        samples = sorted(v for row in mine for v, _ in row)
        for text in texts:
            bp = parse_statistic(text).basis_points  # type: ignore[union-attr]
            rank = max(1, -(-bp * len(samples) // 10_000))
            assert point.values[text] == samples[rank - 1]
