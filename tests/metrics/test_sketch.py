"""The log-bucket histogram (store.metric_sketch): keys, representatives, merging, in DuckDB."""

from __future__ import annotations

import math

import duckdb
import pyarrow as pa
from hypothesis import given, settings
from hypothesis import strategies as st

from query.metrics.statistic import parse_statistic
from query.metrics.statistics import StatisticsQuery, compile_statistics
from query.metrics.window import Window
from store.metric_model import METRIC_SCHEMA, datum_row
from store.metric_rollup import SOURCE, rollup_sql
from store.metric_sketch import ALPHA, BIAS, key_of, key_sql, value_of, value_sql

# Spec §1.4: accepted magnitudes are 0 or within [2^-360, 2^360].
magnitudes = st.floats(min_value=2.0**-360, max_value=2.0**360)
samples = st.one_of(magnitudes, magnitudes.map(lambda v: -v), st.just(0.0))
T0 = 1_767_225_600_000  # on every tier's grid


def test_keys_are_ordered_like_values_and_zero_is_exact() -> None:
    values = [-1e6, -2.0, -1.0, -1e-6, 0.0, 1e-6, 1.0, 2.0, 1e6]
    keys = [key_of(v) for v in values]
    assert keys == sorted(keys) and len(set(keys)) == len(keys)
    assert key_of(0.0) == 0 and value_of(0) == 0.0
    assert key_of(1.0) == BIAS  # ln(1) = 0: bucket k = 0


@given(samples)
def test_the_representative_is_within_one_percent(value: float) -> None:
    assert abs(value_of(key_of(value)) - value) <= ALPHA * abs(value) * (1 + 1e-9)


@given(st.lists(samples, min_size=1, max_size=50))
@settings(max_examples=50, deadline=None)
def test_sql_and_python_agree(duck: duckdb.DuckDBPyConnection, values: list[float]) -> None:
    rows = duck.execute(
        f"SELECT {key_sql('v')}, {value_sql(key_sql('v'))} FROM unnest(?::DOUBLE[]) AS t(v)",
        [values],
    ).fetchall()
    for value, (key, representative) in zip(values, rows, strict=True):
        assert key == key_of(value)
        assert math.isclose(representative, value_of(key), rel_tol=1e-12)


def _rows(values: list[float], split: int) -> pa.Table:
    """Two raw datums of one minute each, holding ``values`` between them."""
    parts = [values[:split], values[split:]]
    return pa.Table.from_pylist(
        [
            datum_row(
                namespace="N",
                metric_name="m",
                dimensions={},
                ts_ms=T0 + 60_000 * i,
                values=part,
            )
            for i, part in enumerate(parts)
            if part
        ],
        schema=METRIC_SCHEMA,
    )


def _nearest_rank(values: list[float], basis_points: int) -> float:
    ordered = sorted(values)
    rank = max(1, math.ceil(basis_points * len(ordered) / 10_000))
    return ordered[rank - 1]


PERCENTILES = ["p0", "p1", "p10", "p25", "p50", "p75", "p90", "p99", "p99.9", "p100"]


@given(st.lists(samples, min_size=1, max_size=150), st.data())
@settings(max_examples=40, deadline=None)
def test_percentiles_of_a_rolled_up_bucket_are_within_one_percent(
    duck: duckdb.DuckDBPyConnection, values: list[float], data: st.DataObject
) -> None:
    """Raw rows -> 300 s roll-up (SQL) -> 3600 s roll-up of that (merge) -> percentiles."""
    split = data.draw(st.integers(0, len(values)))
    duck.register(SOURCE, _rows(values, split))
    five = duck.sql(rollup_sql(300)).to_arrow_table()
    duck.register(SOURCE, five)
    hour = duck.sql(rollup_sql(3600)).to_arrow_table()
    duck.register("metrics", hour)
    window = Window(T0, T0 + 3_600_000, 3600, T0)
    stats = tuple(parse_statistic(p) for p in PERCENTILES)
    compiled = compile_statistics([StatisticsQuery("N", "m", "", window, stats)])
    ((point,),) = compiled.datapoints(duck.execute(compiled.sql, compiled.params).fetchall())
    assert point.sample_count == len(values)
    for statistic in stats:
        exact = _nearest_rank(values, statistic.basis_points)  # type: ignore[union-attr]
        got = point.values[statistic.text]
        assert got is not None
        assert abs(got - exact) <= ALPHA * abs(exact) * (1 + 1e-9), statistic.text
    duck.unregister("metrics")
