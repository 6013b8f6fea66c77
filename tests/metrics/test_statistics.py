"""Period statistics in DuckDB (spec §2.1-§2.3) against numbers worked out by hand and by plain
Python over the expanded samples."""

from __future__ import annotations

import math
from collections.abc import Iterator, Sequence
from typing import Any

import duckdb
import pyarrow as pa
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from core.errors import BadRequest
from core.metric_errors import InvalidParameterValue
from query.metrics.series import Series
from query.metrics.statistic import (
    Percentile,
    Simple,
    Trimmed,
    parse_statistic,
    parse_statistics_request,
)
from query.metrics.statistics import (
    Datapoint,
    StatisticsQuery,
    compile_statistics,
    datapoints_to_series,
)
from query.metrics.window import plan_window
from store.metric_model import METRIC_SCHEMA, canonical_dims, datum_row

T0 = 1_767_225_600_000  # 2026-01-01T00:00:00Z
NOW = T0 + 3_600_000
NS, NAME, DIMS = "Shop/API", "Latency", {"Service": "checkout"}


# ---- statistic names -----------------------------------------------------------------------

NAME_CASES = [
    ("Average", Simple("Average")),
    ("p99", Percentile("p99", 9_900)),
    ("p99.99", Percentile("p99.99", 9_999)),
    ("p0.0", Percentile("p0.0", 0)),
    ("p100", Percentile("p100", 10_000)),
    ("P50", Percentile("P50", 5_000)),
    ("tm90", Trimmed("tm90", "TM", True, 0, 9_000)),
    ("wm99.5", Trimmed("wm99.5", "WM", True, 0, 9_950)),
    ("tc10", Trimmed("tc10", "TC", True, 0, 1_000)),
    ("ts50", Trimmed("ts50", "TS", True, 0, 5_000)),
    ("IQM", Trimmed("IQM", "TM", True, 2_500, 7_500)),
    ("TM(10%:90%)", Trimmed("TM(10%:90%)", "TM", True, 1_000, 9_000)),
    ("TM(:95%)", Trimmed("TM(:95%)", "TM", True, 0, 9_500)),
    ("TM(10%:)", Trimmed("TM(10%:)", "TM", True, 1_000, 10_000)),
    ("TM(150:1000)", Trimmed("TM(150:1000)", "TM", False, 150.0, 1000.0)),
    ("WM(-5:2.5e1)", Trimmed("WM(-5:2.5e1)", "WM", False, -5.0, 25.0)),
    ("PR(:300)", Trimmed("PR(:300)", "PR", False, None, 300.0)),
    ("PR(100:2000)", Trimmed("PR(100:2000)", "PR", False, 100.0, 2000.0)),
    ("ts(5%:95%)", Trimmed("ts(5%:95%)", "TS", True, 500, 9_500)),
]


@pytest.mark.parametrize(("text", "expected"), NAME_CASES, ids=[c[0] for c in NAME_CASES])
def test_parse_statistic(text: str, expected: object) -> None:
    assert parse_statistic(text) == expected


BAD_NAMES = [
    ("unknown", "average", "unknown statistic"),
    ("p101", "p101", "unknown statistic"),
    ("three-decimals", "p99.999", "unknown statistic"),
    ("pr-percent", "PR(10%:20%)", "not percentages"),
    ("mixed-bounds", "TM(10%:500)", "both bounds as percentages"),
    ("reversed", "TM(90%:10%)", "lower bound is above"),
    ("reversed-values", "TC(5:1)", "lower bound is above"),
    ("percent-over-100", "TM(10%:101%)", "0% to 100%"),
    ("infinite", "TM(1e999:)", "finite"),
    ("empty", "", "unknown statistic"),
]


@pytest.mark.parametrize(
    ("text", "fragment"), [c[1:] for c in BAD_NAMES], ids=[c[0] for c in BAD_NAMES]
)
def test_bad_statistics(text: str, fragment: str) -> None:
    with pytest.raises(InvalidParameterValue, match=fragment.replace("(", r"\(")):
        parse_statistic(text)


def test_simple_and_extended_lists_are_kept_apart() -> None:
    with pytest.raises(InvalidParameterValue, match="extended_statistics"):
        parse_statistic("p99", extended=False)
    with pytest.raises(InvalidParameterValue, match="simple statistic"):
        parse_statistic("Sum", extended=True)


# ---- a metric table in DuckDB -------------------------------------------------------------


@pytest.fixture
def table(duck: duckdb.DuckDBPyConnection) -> Iterator[list[dict[str, Any]]]:
    """Rows appended to the list are visible as ``metrics`` when ``run`` is called."""
    rows: list[dict[str, Any]] = []
    yield rows
    duck.execute("DROP VIEW IF EXISTS metrics")


def raw(
    ts_ms: int, values: Sequence[float], counts: Sequence[float] | None = None, **kw: Any
) -> dict[str, Any]:
    return datum_row(
        namespace=kw.pop("namespace", NS),
        metric_name=kw.pop("metric_name", NAME),
        dimensions=kw.pop("dimensions", DIMS),
        ts_ms=ts_ms,
        values=values,
        counts=counts,
        **kw,
    )


def stat_set(
    ts_ms: int, count: float, total: float, low: float, high: float, **kw: Any
) -> dict[str, Any]:
    return datum_row(
        namespace=NS,
        metric_name=NAME,
        dimensions=DIMS,
        ts_ms=ts_ms,
        statistic_values={"SampleCount": count, "Sum": total, "Minimum": low, "Maximum": high},
        **kw,
    )


def run(
    duck: duckdb.DuckDBPyConnection,
    rows: list[dict[str, Any]],
    statistics: Sequence[str],
    *,
    start_ms: int = T0,
    end_ms: int = T0 + 3_600_000,
    period_s: int = 60,
    now_ms: int = NOW,
    unit: str | None = None,
    dimensions: dict[str, str] = DIMS,
) -> list[Datapoint]:
    duck.register("metrics_arrow", pa.Table.from_pylist(rows, schema=METRIC_SCHEMA))
    duck.execute("CREATE OR REPLACE VIEW metrics AS SELECT * FROM metrics_arrow")
    window = plan_window(start_ms, end_ms, period_s, now_ms)
    query = StatisticsQuery(
        NS,
        NAME,
        canonical_dims(dimensions),
        window,
        tuple(parse_statistic(s) for s in statistics),
        unit,
    )
    compiled = compile_statistics([query])
    return compiled.datapoints(duck.execute(compiled.sql, compiled.params).fetchall())[0]


ONE_TO_TEN: list[tuple[str, float | None]] = [
    ("SampleCount", 10),
    ("Sum", 55),
    ("Average", 5.5),
    ("Minimum", 1),
    ("Maximum", 10),
    ("p0", 1),
    ("p7.5", 1),
    ("p15", 2),
    ("p50", 5),
    ("p90", 9),
    ("p99", 10),
    ("p100", 10),
    ("tm90", 5),
    ("TM(10%:90%)", 5.5),
    ("IQM", 5.5),
    ("TM(50%:50%)", None),
    ("wm90", 5.4),
    ("WM(10%:90%)", 5.5),
    ("tc90", 9),
    ("ts90", 45),
    ("TM(3:7)", 5.5),
    ("TC(3:7)", 4),
    ("TS(3:7)", 22),
    ("WM(3:7)", 5.5),
    ("TM(:2)", 1.5),
    ("TM(8:)", 9.5),
    ("TM(20:30)", None),
    ("TC(20:30)", 0),
    ("PR(:5)", 50),
    ("PR(2:4)", 20),
    ("PR(:)", 100),
]


@pytest.mark.parametrize(("statistic", "expected"), ONE_TO_TEN, ids=[c[0] for c in ONE_TO_TEN])
def test_one_to_ten_by_hand(
    duck: duckdb.DuckDBPyConnection,
    table: list[dict[str, Any]],
    statistic: str,
    expected: float | None,
) -> None:
    table += [raw(T0 + i * 1000, [float(i)]) for i in range(1, 11)]
    (point,) = run(duck, table, [statistic])
    assert point.timestamp_ms == T0
    assert point.values[statistic] == (None if expected is None else pytest.approx(expected))


WEIGHTED: list[tuple[str, float | None]] = [
    # values 1, 2, 3 with counts 5, 3, 2: the samples 1 1 1 1 1 2 2 2 3 3
    ("SampleCount", 10),
    ("Sum", 17),
    ("Average", 1.7),
    ("p50", 1),
    ("p60", 2),
    ("p80", 2),
    ("p81", 3),
    ("tm50", 1),
    ("TM(20%:70%)", 1.4),
    ("TC(20%:70%)", 5),
    ("TS(20%:70%)", 7),
    ("WM(20%:70%)", 1.5),
    ("PR(1:2)", 30),
    ("TM(1:)", 2.4),
]


@pytest.mark.parametrize(("statistic", "expected"), WEIGHTED, ids=[c[0] for c in WEIGHTED])
def test_values_with_counts_by_hand(
    duck: duckdb.DuckDBPyConnection,
    table: list[dict[str, Any]],
    statistic: str,
    expected: float | None,
) -> None:
    table += [raw(T0 + 5_000, [3.0, 1.0], [2, 4]), raw(T0 + 9_000, [2.0, 1.0], [3, 1])]
    (point,) = run(duck, table, [statistic])
    assert point.values[statistic] == pytest.approx(expected)


def test_mixed_raw_values_and_statistic_sets(
    duck: duckdb.DuckDBPyConnection, table: list[dict[str, Any]]
) -> None:
    table += [
        # bucket 0: raw 4 and 8, a constant set (2 x 5), a single-valued set (7): samples 4 5 5 7 8
        raw(T0, [4.0, 8.0]),
        stat_set(T0 + 1000, 2, 10, 5, 5),
        stat_set(T0 + 2000, 1, 7, 7, 7),
        # bucket 1: raw 2 and a set of three different values: order statistics are unknowable
        raw(T0 + 60_000, [2.0]),
        stat_set(T0 + 61_000, 3, 9, 1, 5),
        # bucket 2: statistic sets only
        stat_set(T0 + 120_000, 4, 10, 1, 4),
        stat_set(T0 + 130_000, 2, 2, 1, 1),
    ]
    points = run(
        duck,
        table,
        ["SampleCount", "Sum", "Average", "Minimum", "Maximum", "p50", "p100", "tm80", "PR(:5)"],
    )
    assert [p.timestamp_ms for p in points] == [T0, T0 + 60_000, T0 + 120_000]
    assert points[0].values == {
        "SampleCount": 5,
        "Sum": 29,
        "Average": 5.8,
        "Minimum": 4,
        "Maximum": 8,
        "p50": 5,
        "p100": 8,
        "tm80": 5.25,
        "PR(:5)": 60,
    }
    assert points[1].values == {
        "SampleCount": 4,
        "Sum": 11,
        "Average": 2.75,
        "Minimum": 1,
        "Maximum": 5,
        "p50": None,
        "p100": None,
        "tm80": None,
        "PR(:5)": None,
    }
    assert points[2].values == {
        "SampleCount": 6,
        "Sum": 12,
        "Average": 2,
        "Minimum": 1,
        "Maximum": 4,
        "p50": None,
        "p100": None,
        "tm80": None,
        "PR(:5)": None,
    }


def test_buckets_are_sparse_ascending_and_start_at_the_rounded_start(
    duck: duckdb.DuckDBPyConnection, table: list[dict[str, Any]]
) -> None:
    start = T0 + 12 * 60_000 + 34_000  # 00:12:34 rounds down to 00:12:00
    table += [
        raw(T0 + 11 * 60_000 + 59_000, [100.0]),  # before the rounded start
        raw(T0 + 12 * 60_000, [1.0]),  # first bucket [00:12, 00:17)
        raw(T0 + 16 * 60_000 + 59_000, [2.0]),
        raw(
            T0 + 27 * 60_000, [3.0]
        ),  # third bucket [00:22, 00:27) is empty; [00:27, 00:30) cut at end
        raw(T0 + 30 * 60_000, [4.0]),  # at the end: excluded
    ]
    points = run(duck, table, ["Sum"], start_ms=start, end_ms=T0 + 30 * 60_000, period_s=300)
    assert [(p.timestamp_ms - T0) // 60_000 for p in points] == [12, 27]
    assert [p.values["Sum"] for p in points] == [3, 3]


def test_standard_data_is_stored_on_the_minute(
    duck: duckdb.DuckDBPyConnection, table: list[dict[str, Any]]
) -> None:
    table += [raw(T0 + 59_999, [1.0]), raw(T0 + 59_999, [2.0], storage_resolution=1)]
    points = run(
        duck,
        table,
        ["SampleCount"],
        start_ms=T0,
        end_ms=T0 + 120_000,
        period_s=1,
        now_ms=T0 + 120_000,
    )
    # Sub-minute periods read only high-resolution data, truncated to its second.
    assert [(p.timestamp_ms - T0, p.values["SampleCount"]) for p in points] == [(59_000, 1)]
    minute = run(
        duck,
        table,
        ["SampleCount"],
        start_ms=T0,
        end_ms=T0 + 120_000,
        period_s=60,
        now_ms=T0 + 120_000,
    )
    assert [(p.timestamp_ms - T0, p.values["SampleCount"]) for p in minute] == [(0, 2)]


def test_ten_second_period_on_high_resolution_data(
    duck: duckdb.DuckDBPyConnection, table: list[dict[str, Any]]
) -> None:
    table += [raw(T0 + s * 1000, [float(s)], storage_resolution=1) for s in range(0, 60, 7)]
    points = run(
        duck,
        table,
        ["Maximum", "SampleCount"],
        start_ms=T0 + 23_000,
        end_ms=T0 + 60_000,
        period_s=10,
        now_ms=T0 + 60_000,
    )
    # Start 00:00:23 rounds to 00:00:20; samples at 21, 28, 35, 42, 49, 56.
    assert [(p.timestamp_ms - T0, p.values) for p in points] == [
        (20_000, {"Maximum": 28, "SampleCount": 2}),
        (30_000, {"Maximum": 35, "SampleCount": 1}),
        (40_000, {"Maximum": 49, "SampleCount": 2}),
        (50_000, {"Maximum": 56, "SampleCount": 1}),
    ]


def test_units(duck: duckdb.DuckDBPyConnection, table: list[dict[str, Any]]) -> None:
    table += [
        raw(T0, [1.0], unit="Milliseconds"),
        raw(T0 + 1000, [2.0], unit="Seconds"),
        raw(T0 + 60_000, [3.0], unit="Seconds"),
    ]
    mixed = run(duck, table, ["Sum"])
    assert [(p.unit, p.values["Sum"]) for p in mixed] == [("None", 3), ("Seconds", 3)]
    seconds = run(duck, table, ["Sum"], unit="Seconds")
    assert [(p.timestamp_ms, p.unit, p.values["Sum"]) for p in seconds] == [
        (T0, "Seconds", 2),
        (T0 + 60_000, "Seconds", 3),
    ]
    assert run(duck, table, ["Sum"], unit="Bytes") == []
    with pytest.raises(InvalidParameterValue, match="unknown unit"):
        run(duck, table, ["Sum"], unit="Parsecs")


def test_dimensions_must_match_exactly(
    duck: duckdb.DuckDBPyConnection, table: list[dict[str, Any]]
) -> None:
    table += [raw(T0, [1.0], dimensions={"Service": "checkout", "Host": "a"}), raw(T0, [5.0])]
    assert [p.values["Sum"] for p in run(duck, table, ["Sum"])] == [5]
    assert [
        p.values["Sum"]
        for p in run(duck, table, ["Sum"], dimensions={"Host": "a", "Service": "checkout"})
    ] == [1]
    assert run(duck, table, ["Sum"], dimensions={"Host": "a"}) == []


def test_too_old_buckets_return_nothing(
    duck: duckdb.DuckDBPyConnection, table: list[dict[str, Any]]
) -> None:
    now = T0 + 4 * 3_600_000
    table += [raw(T0 + s * 1000, [1.0], storage_resolution=1) for s in range(0, 4 * 3600, 600)]
    points = run(duck, table, ["SampleCount"], start_ms=T0, end_ms=now, period_s=30, now_ms=now)
    # Sub-minute data is readable for 3 hours: the first hour gives nothing (spec §1.8).
    assert [p.timestamp_ms for p in points] == [T0 + s * 1000 for s in range(3600, 4 * 3600, 600)]


def test_many_queries_in_one_statement(
    duck: duckdb.DuckDBPyConnection, table: list[dict[str, Any]]
) -> None:
    table += [raw(T0 + i * 30_000, [float(i)]) for i in range(10)]
    table += [raw(T0 + i * 30_000, [float(10 * i)], metric_name="Errors") for i in range(10)]
    duck.register("metrics_arrow", pa.Table.from_pylist(table, schema=METRIC_SCHEMA))
    duck.execute("CREATE OR REPLACE VIEW metrics AS SELECT * FROM metrics_arrow")
    dims = canonical_dims(DIMS)
    queries = [
        StatisticsQuery(
            NS,
            "Latency",
            dims,
            plan_window(T0, T0 + 300_000, 120, NOW),
            (parse_statistic("Maximum"), parse_statistic("p50")),
        ),
        StatisticsQuery(
            NS, "Errors", dims, plan_window(T0, T0 + 300_000, 300, NOW), (parse_statistic("Sum"),)
        ),
        StatisticsQuery(
            NS, "Nothing", dims, plan_window(T0, T0 + 300_000, 60, NOW), (parse_statistic("Sum"),)
        ),
    ]
    compiled = compile_statistics(queries)
    latency, errors, nothing = compiled.datapoints(
        duck.execute(compiled.sql, compiled.params).fetchall()
    )
    assert [(p.timestamp_ms - T0, p.values) for p in latency] == [
        (0, {"Maximum": 3, "p50": 1}),
        (120_000, {"Maximum": 7, "p50": 5}),
        (240_000, {"Maximum": 9, "p50": 8}),
    ]
    assert [(p.timestamp_ms - T0, p.values) for p in errors] == [(0, {"Sum": 450})]
    assert nothing == []


# ---- against plain Python over the expanded samples ----------------------------------------


def expected_statistic(text: str, samples: list[float]) -> float | None:
    """Spec §2.3 written the obvious way: sort the samples, count ranks from 1."""
    x, n = sorted(samples), len(samples)
    statistic = parse_statistic(text)
    if isinstance(statistic, Simple):
        return {
            "SampleCount": n,
            "Sum": math.fsum(x),
            "Average": math.fsum(x) / n,
            "Minimum": x[0],
            "Maximum": x[-1],
        }[text]
    if isinstance(statistic, Percentile):
        return x[max(1, -(-statistic.basis_points * n // 10_000)) - 1]
    assert isinstance(statistic, Trimmed)
    if statistic.percent:
        low, high = (
            int(statistic.lower or 0) * n // 10_000,
            -(-int(statistic.upper or 0) * n // 10_000),
        )
        below, kept, above = x[:low], x[low:high], x[high:]
    else:
        lo = -math.inf if statistic.lower is None else statistic.lower
        hi = math.inf if statistic.upper is None else statistic.upper
        below, kept, above = (
            [v for v in x if v <= lo],
            [v for v in x if lo < v <= hi],
            [v for v in x if v > hi],
        )
    if statistic.kind == "PR":
        return 100 * len(kept) / n
    if statistic.kind == "TC":
        return len(kept)
    if statistic.kind == "TS":
        return math.fsum(kept)
    if not kept:
        return None
    if statistic.kind == "TM":
        return math.fsum(kept) / len(kept)
    return math.fsum([kept[0]] * len(below) + kept + [kept[-1]] * len(above)) / n


ORACLE_STATISTICS = [
    "SampleCount",
    "Sum",
    "Average",
    "Minimum",
    "Maximum",
    "p0",
    "p1",
    "p25",
    "p50",
    "p66.67",
    "p90",
    "p99.9",
    "p100",
    "tm10",
    "tm99",
    "TM(5%:95%)",
    "IQM",
    "TM(33.33%:)",
    "wm90",
    "WM(10%:90%)",
    "tc75",
    "TC(25%:75%)",
    "ts90",
    "TS(1%:99%)",
    "TM(2:6)",
    "WM(-1:3)",
    "TC(:0)",
    "TS(4:)",
    "PR(:3)",
    "PR(-2:2.5)",
]

_raw_rows = st.lists(
    st.lists(st.tuples(st.integers(-3, 9).map(float), st.integers(1, 4)), min_size=1, max_size=5),
    min_size=1,
    max_size=6,
)
_constant_sets = st.lists(st.tuples(st.integers(1, 4), st.integers(-3, 9).map(float)), max_size=2)


@settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(_raw_rows, _constant_sets)
def test_every_statistic_matches_plain_python(
    duck: duckdb.DuckDBPyConnection,
    rows: list[list[tuple[float, int]]],
    sets: list[tuple[int, float]],
) -> None:
    table = [
        raw(T0 + i * 1000, [v for v, _ in row], [c for _, c in row]) for i, row in enumerate(rows)
    ]
    table += [
        stat_set(T0 + 30_000 + i, count, count * value, value, value)
        for i, (count, value) in enumerate(sets)
    ]
    samples = [v for row in rows for v, c in row for _ in range(c)] + [
        v for c, v in sets for _ in range(c)
    ]
    (point,) = run(duck, table, ORACLE_STATISTICS)
    for text in ORACLE_STATISTICS:
        expected = expected_statistic(text, samples)
        assert point.values[text] == (None if expected is None else pytest.approx(expected)), text


REQUEST_CASES: list[tuple[str, list[str] | None, list[str] | None, str | None]] = [
    # name, statistics, extended_statistics, error code (None: accepted)
    ("simple", ["Average", "Maximum"], None, None),
    ("extended", None, ["p99", "tm90", "IQM"], None),
    ("both", ["Average"], ["p99"], "InvalidParameterCombinationException"),
    ("neither", None, [], "InvalidParameterCombinationException"),
    ("six-simple", ["Average"] * 6, None, "InvalidParameterValueException"),
    ("eleven-extended", None, ["p99"] * 11, "InvalidParameterValueException"),
    ("extended-in-simple-list", ["p99"], None, "InvalidParameterValueException"),
]


@pytest.mark.parametrize(
    ("statistics", "extended", "code"),
    [c[1:] for c in REQUEST_CASES],
    ids=[c[0] for c in REQUEST_CASES],
)
def test_statistics_request(
    statistics: list[str] | None, extended: list[str] | None, code: str | None
) -> None:
    if code is None:
        assert [s.text for s in parse_statistics_request(statistics, extended)] == (
            statistics or extended
        )
        return
    with pytest.raises(BadRequest) as caught:
        parse_statistics_request(statistics, extended)
    assert caught.value.code == code


def test_datapoints_to_series_feeds_metric_math(
    duck: duckdb.DuckDBPyConnection, table: list[dict[str, Any]]
) -> None:
    table += [raw(T0, [1.0]), raw(T0 + 120_000, [3.0]), stat_set(T0 + 180_000, 2, 6, 1, 5)]
    points = run(duck, table, ["Sum", "p50"])
    assert datapoints_to_series(points, "Sum", 60, "Latency") == Series(
        (T0, T0 + 120_000, T0 + 180_000), (1.0, 3.0, 6.0), 60, "Latency"
    )
    # A bucket without a value for the statistic is a missing point.
    assert datapoints_to_series(points, "p50", 60).timestamps == (T0, T0 + 120_000)
