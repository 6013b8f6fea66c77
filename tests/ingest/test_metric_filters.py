"""Metric filters applied to a batch (spec metrics §4.2-4.3), in a real in-memory DuckDB, and
their catalog table in a real DuckDB file: what each event publishes, tables of cases."""

from __future__ import annotations

import json
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import duckdb
import pyarrow as pa
import pytest

from core.errors import BadRequest, NotFound
from ingest.filter_pattern import FilterPatternError
from ingest.metric_filters import (
    MetricFilterRegistry,
    build_filter,
    compile_filter,
    filter_metrics,
)
from store.metric_filters import MetricFilterLimitExceeded
from store.metric_model import parse_dims

NOW_MS = 1_700_000_000_000
MINUTE_MS = NOW_MS - NOW_MS % 60_000


def events(messages: list[str], ts_ms: list[int] | None = None) -> pa.Table:
    return pa.table(
        {
            "ts_ms": pa.array(ts_ms or [MINUTE_MS + i for i in range(len(messages))], pa.int64()),
            "message": pa.array(messages, pa.string()),
        }
    )


def samples(rows: pa.Table) -> Counter[tuple[str, float]]:
    """(dims, value) -> how many samples, summed over rows: what the statistics will see."""
    seen: Counter[tuple[str, float]] = Counter()
    for row in rows.to_pylist():
        for value, count in zip(row["values"], row["counts"], strict=True):
            seen[(row["dims"], value)] += int(count)
    return seen


def js(**fields: Any) -> str:
    return json.dumps(fields)


ACCESS = [
    "10.0.0.1 alice GET /index.html 200 512",
    "10.0.0.2 bob GET /big.iso 503 10000",
    "10.0.0.3 carol POST /api 500 20",
    '10.0.0.4 - GET "/with space" 404 7',
]
APP = [
    js(status="503", latency=120.5, service="api", level="ERROR"),
    js(status="200", latency=30, service="api", level="INFO"),
    js(status="500", latency="45", service="web", level="ERROR"),
    js(status="404", latency=None, service="web", level="WARN", user={"id": 7}),
    "not json at all ERROR",
    js(status="502", service="api", level="ERROR"),  # no latency
]

# id, pattern, metric value, dimensions, default value, messages, expected {(dims, value): n}
CASES: list[tuple[str, str, str, dict[str, str], float | None, list[str], dict[Any, int]]] = [
    ("json-wildcard-count", "{ $.status = 5* }", "1", {}, None, APP, {("", 1.0): 3}),
    ("json-value-from-field", "{ $.status = 5* }", "$.latency", {}, None, APP, {("", 120.5): 1, ("", 45.0): 1}),
    ("json-numeric-compare", "{ $.latency > 40 }", "$.latency", {}, None, APP, {("", 120.5): 1, ("", 45.0): 1}),
    ("json-and", '{ $.level = "ERROR" && $.service = "api" }', "1", {}, None, APP, {("", 1.0): 2}),
    ("json-or", "{ $.status = 404 || $.status = 200 }", "2", {}, None, APP, {("", 2.0): 2}),
    ("json-is-null", "{ $.latency IS NULL }", "1", {}, None, APP, {("", 1.0): 1}),
    ("json-not-exists", "{ $.latency NOT EXISTS }", "1", {}, None, APP, {("", 1.0): 1}),
    ("json-default-value", '{ $.level = "ERROR" }', "1", {}, 0.0, APP, {("", 1.0): 3, ("", 0.0): 3}),
    ("json-dimensions", "{ $.status = 5* }", "1", {"Service": "$.service"}, None, APP,
     {("Service=api", 1.0): 2, ("Service=web", 1.0): 1}),
    ("json-object-dimension-skipped", "{ $.status = 404 }", "1", {"User": "$.user"}, None, APP, {}),
    ("space-count", "[ip, user, verb, path, status=5*, size]", "1", {}, None, ACCESS, {("", 1.0): 2}),
    ("space-value-by-name", "[ip, user, ..., status=5*, size]", "$size", {}, None, ACCESS,
     {("", 10000.0): 1, ("", 20.0): 1}),
    ("space-value-by-position", "[ip, user, verb, path, status, size > 100]", "$6", {}, None, ACCESS,
     {("", 512.0): 1, ("", 10000.0): 1}),
    ("space-dimension", "[ip, user, ..., status = 5* || status = 404, size]", "1", {"Status": "$status"},
     None, ACCESS, {("Status=503", 1.0): 1, ("Status=500", 1.0): 1, ("Status=404", 1.0): 1}),
    ("space-quoted-field", "[ip, user, verb, path = \"/with space\", status, size]", "$size", {},
     None, ACCESS, {("", 7.0): 1}),
    ("text-term", "ERROR", "1", {}, None, [*APP, "an ERRORCODE"], {("", 1.0): 5}),
    ("text-quoted-and-excluded", '"GET /" -big', "1", {}, 0.0, ACCESS, {("", 1.0): 1, ("", 0.0): 3}),
    ("text-optional", "?WARN ?INFO", "3.5", {}, None, APP, {("", 3.5): 2}),
    ("empty-matches-all", "", "1", {}, None, ACCESS, {("", 1.0): 4}),
    ("value-not-a-number-skipped", "{ $.level = ERROR }", "$.service", {}, None, APP, {}),
]  # fmt: skip


@pytest.fixture(scope="module")
def duck() -> Iterator[duckdb.DuckDBPyConnection]:
    connection = duckdb.connect()
    yield connection
    connection.close()


@pytest.mark.parametrize(
    ("pattern", "value", "dims", "default", "messages", "expected"),
    [case[1:] for case in CASES],
    ids=[case[0] for case in CASES],
)
def test_what_a_batch_publishes(
    duck: duckdb.DuckDBPyConnection,
    pattern: str,
    value: str,
    dims: dict[str, str],
    default: float | None,
    messages: list[str],
    expected: dict[tuple[str, float], int],
) -> None:
    spec = build_filter(
        log_group="g",
        filter_name="f",
        filter_pattern=pattern,
        metric_namespace="App",
        metric_name="M",
        metric_value=value,
        default_value=default,
        dimensions=dims,
        unit="Count",
        now_ms=NOW_MS,
    )
    (output,) = filter_metrics(events(messages), [compile_filter(spec)], now_ms=NOW_MS, conn=duck)
    rows = pa.Table.from_pylist(output.rows)
    assert samples(rows) == Counter(expected)
    for row in output.rows:
        assert (row["namespace"], row["metric_name"], row["unit"]) == ("App", "M", "Count")
        assert row["ts_ms"] == MINUTE_MS
        assert row["storage_resolution"] == 60
        assert parse_dims(row["dims"]) == row["dimensions"]


def test_samples_keep_their_events_minutes_and_the_window(duck: duckdb.DuckDBPyConnection) -> None:
    spec = build_filter(
        log_group="g", filter_name="f", filter_pattern="ERROR", metric_namespace="App",
        metric_name="Errors", metric_value="1", default_value=0, now_ms=NOW_MS,
    )  # fmt: skip
    ts = [
        MINUTE_MS - 60_000 + 5,  # previous minute
        MINUTE_MS + 1,
        MINUTE_MS + 59_999,
        NOW_MS - 15 * 86_400_000,  # older than the 14-day window: nothing
        NOW_MS + 3 * 3_600_000,  # more than 2 h ahead: nothing
    ]
    messages = ["ERROR a", "ERROR b", "ok", "ERROR old", "ERROR future"]
    (output,) = filter_metrics(
        events(messages, ts), [compile_filter(spec)], now_ms=NOW_MS, conn=duck
    )
    per_minute = {
        (row["ts_ms"], v): c
        for row in output.rows
        for v, c in zip(row["values"], row["counts"], strict=True)
    }
    assert per_minute == {
        (MINUTE_MS - 60_000, 1.0): 1,
        (MINUTE_MS, 1.0): 1,
        (MINUTE_MS, 0.0): 1,
    }


def test_many_distinct_values_are_split_into_rows_of_150(duck: duckdb.DuckDBPyConnection) -> None:
    spec = build_filter(
        log_group="g", filter_name="f", filter_pattern="{ $.v >= 0 }", metric_namespace="App",
        metric_name="V", metric_value="$.v", now_ms=NOW_MS,
    )  # fmt: skip
    messages = [js(v=i % 400) for i in range(1000)]
    (output,) = filter_metrics(events(messages), [compile_filter(spec)], now_ms=NOW_MS, conn=duck)
    assert [len(row["values"]) for row in output.rows] == [150, 150, 100]
    assert sum(row["sample_count"] for row in output.rows) == 1000
    assert sum(row["sum"] for row in output.rows) == sum(i % 400 for i in range(1000))


# id, arguments, error class, message fragment
INVALID: list[tuple[str, dict[str, Any], type[BadRequest], str]] = [
    ("bad-pattern", {"filter_pattern": "{ $.a = }"}, FilterPatternError, "column"),
    ("bad-unit", {"unit": "Furlongs"}, BadRequest, "unknown unit"),
    ("reserved-namespace", {"metric_namespace": "AWS/EC2"}, BadRequest, "reserved"),
    ("empty-metric-name", {"metric_name": ""}, BadRequest, "metric name"),
    ("bad-filter-name", {"filter_name": "a:b"}, BadRequest, "filter name"),
    ("default-with-dimensions", {"default_value": 0, "dimensions": {"S": "$.s"}}, BadRequest,
     "cannot be used together"),
    ("four-dimensions", {"dimensions": {f"D{i}": "$.s" for i in range(4)}}, BadRequest, "3 dimensions"),
    ("dimensions-on-text", {"filter_pattern": "ERROR", "dimensions": {"S": "$.s"}}, BadRequest,
     "dimensions need"),
    ("constant-dimension", {"dimensions": {"S": "api"}}, BadRequest, "must be a number"),
    ("value-not-in-space-pattern", {"filter_pattern": "[a, b]", "metric_value": "$c"}, BadRequest,
     "names no field"),
    ("infinite-value", {"metric_value": "1e999"}, BadRequest, "metric_value"),
    ("nan-default", {"default_value": float("nan")}, BadRequest, "default_value"),
]  # fmt: skip


@pytest.mark.parametrize(
    ("overrides", "error", "fragment"), [c[1:] for c in INVALID], ids=[c[0] for c in INVALID]
)
def test_invalid_filters_are_refused(
    overrides: dict[str, Any], error: type[BadRequest], fragment: str
) -> None:
    arguments: dict[str, Any] = {
        "log_group": "g",
        "filter_name": "f",
        "filter_pattern": "{ $.s = * }",
        "metric_namespace": "App",
        "metric_name": "M",
        "metric_value": "1",
        "now_ms": NOW_MS,
    } | overrides
    with pytest.raises(error) as caught:
        build_filter(**arguments)
    assert fragment in caught.value.message
    assert caught.value.status == 400


def test_pattern_errors_carry_the_column() -> None:
    with pytest.raises(FilterPatternError) as caught:
        build_filter(
            log_group="g", filter_name="f", filter_pattern="{ $.a = 1 && }",
            metric_namespace="App", metric_name="M", metric_value="1", now_ms=NOW_MS,
        )  # fmt: skip
    assert caught.value.details["column"] == 14


@pytest.fixture
def registry(tmp_path: Path) -> Iterator[MetricFilterRegistry]:
    db = duckdb.connect(str(tmp_path / "catalog.duckdb"))
    reg = MetricFilterRegistry(db.cursor, max_filters_per_group=3, max_dimension_sets_per_hour=5)
    reg.open()
    yield reg
    reg.close()
    db.close()


def spec(name: str, group: str = "g", **overrides: Any) -> Any:
    arguments: dict[str, Any] = {
        "log_group": group,
        "filter_name": name,
        "filter_pattern": "ERROR",
        "metric_namespace": "App",
        "metric_name": "Errors",
        "metric_value": "1",
        "now_ms": NOW_MS,
    } | overrides
    return build_filter(**arguments)


def test_registry_crud_keeps_the_cache_in_step(registry: MetricFilterRegistry) -> None:
    assert registry.filters_for("g") == ()
    stored, created = registry.put(spec("a"))
    assert created and stored.created_ms == NOW_MS
    assert [f.spec.filter_name for f in registry.filters_for("g")] == ["a"]
    again, created = registry.put(spec("a", filter_pattern="WARN", now_ms=NOW_MS + 5))
    assert not created and again.created_ms == NOW_MS  # replacing keeps the creation time
    assert registry.filters_for("g")[0].spec.filter_pattern == "WARN"
    registry.put(spec("b"))
    registry.put(spec("c"))
    with pytest.raises(MetricFilterLimitExceeded) as caught:
        registry.put(spec("d"))
    assert caught.value.code == "LimitExceededException"
    registry.put(spec("d", group="other"))  # the limit is per group
    assert [f.filter_name for f in registry.describe(log_group="g", name_prefix="b")] == ["b"]
    by_metric = registry.describe(metric_namespace="App", metric_name="Errors")
    assert [(f.log_group, f.filter_name) for f in by_metric] == [
        ("g", "a"), ("g", "b"), ("g", "c"), ("other", "d")
    ]  # fmt: skip
    registry.delete("g", "a")
    assert [f.spec.filter_name for f in registry.filters_for("g")] == ["b", "c"]
    with pytest.raises(NotFound):
        registry.delete("g", "a")
    assert registry.delete_group("g") == 2
    assert registry.filters_for("g") == ()


def test_filters_survive_a_reopen(tmp_path: Path) -> None:
    db = duckdb.connect(str(tmp_path / "catalog.duckdb"))
    first = MetricFilterRegistry(db.cursor)
    first.open()
    first.put(spec("a", filter_pattern="{ $.s = 5* }", dimensions={"S": "$.s"}, metric_value="1"))
    second = MetricFilterRegistry(db.cursor)
    second.open()
    (compiled,) = second.filters_for("g")
    assert compiled.spec.dimensions == {"S": "$.s"}
    first.close()
    second.close()
    db.close()


def test_too_many_dimension_sets_disable_the_filter(registry: MetricFilterRegistry) -> None:
    registry.put(spec("by-user", filter_pattern="{ $.u = * }", dimensions={"User": "$.u"}))
    now_ms = int(time.time() * 1000)
    ok = registry.metric_rows(
        "g", events([js(u=f"u{i}") for i in range(5)], [now_ms] * 5), now_ms=now_ms
    )
    assert ok.num_rows == 5
    too_many = events([js(u=f"v{i}") for i in range(3)], [now_ms] * 3)
    assert registry.metric_rows("g", too_many, now_ms=now_ms).num_rows == 0
    assert registry.filters_for("g") == ()
    (stored,) = registry.describe(log_group="g")
    assert stored.disabled_reason is not None and "5 distinct dimension" in stored.disabled_reason
    registry.put(spec("by-user", filter_pattern="{ $.u = * }", dimensions={"User": "$.u"}))
    assert registry.describe(log_group="g")[0].disabled_reason is None  # putting re-enables
    assert registry.metric_rows("g", too_many, now_ms=now_ms).num_rows == 3
