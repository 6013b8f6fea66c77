"""The metric API against a real server: PutMetricData (raw values, values with counts,
statistic sets, high resolution, validation, partial success, authorization by namespace),
GetMetricStatistics, GetMetricData with math and pagination, ListMetrics, and readback after
the metric store restarts. Expected numbers are worked out in plain Python in the test."""

from __future__ import annotations

import gzip
import json
import math
import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from ingest.metric_routes import router as metric_ingest_router
from query.metric_routes import router as metric_query_router
from server.app import DEFAULT_ROUTERS
from store.metrics import MetricStore, MetricStoreConfig
from tests.conftest import ADMIN_KEY, RunningServer, make_settings

NOW_MS = int(time.time() * 1000)
# An hour boundary 1-2 hours ago: sub-minute data stays readable for 3 hours (spec §1.8),
# with an hour of margin for a slow run.
BASE_MS = NOW_MS - NOW_MS % 3_600_000 - 3_600_000
BASE_S = BASE_MS // 1000
MIN = 60_000


def open_metrics(server: RunningServer) -> MetricStore:
    """Open a MetricStore on the server's catalog, as the app's lifespan does once wired."""
    config = MetricStoreConfig.from_store_config(server.settings.store_config())
    store = MetricStore(config, server.store.cursor)
    store.open()
    store.recover()
    server.app.state.metrics = store
    return store


# Until server/app.py includes the metric routers and opens the MetricStore in its lifespan,
# the fixture adds both itself (white-box, but every request goes through real HTTP).
WIRED = metric_ingest_router in DEFAULT_ROUTERS


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningServer]:
    settings = make_settings(tmp_path_factory.mktemp("metrics") / "data", audit_lookup_rate=0)
    routers = (
        DEFAULT_ROUTERS if WIRED else (*DEFAULT_ROUTERS, metric_ingest_router, metric_query_router)
    )
    running = RunningServer(settings, routers=routers).start()
    opened_here = getattr(running.app.state, "metrics", None) is None
    if opened_here:
        open_metrics(running)
    yield running
    if opened_here:
        running.app.state.metrics.close()
    running.stop()


@pytest.fixture
def client(server: RunningServer) -> Iterator[httpx.Client]:
    with httpx.Client(
        base_url=server.url, headers={"Authorization": f"Bearer {ADMIN_KEY}"}, timeout=30
    ) as c:
        yield c


def put(
    client: httpx.Client, namespace: str, data: list[dict[str, Any]], **kw: Any
) -> httpx.Response:
    return client.post(
        "/api/v1/metrics/data", json={"namespace": namespace, "metric_data": data}, **kw
    )


def put_ok(client: httpx.Client, namespace: str, data: list[dict[str, Any]]) -> None:
    response = put(client, namespace, data)
    assert response.status_code == 200, response.text
    assert response.json() == {"accepted": len(data), "rejected": []}


def statistics(
    client: httpx.Client, namespace: str, name: str, **body: Any
) -> list[dict[str, Any]]:
    request = {
        "namespace": namespace,
        "metric_name": name,
        "start": BASE_S,
        "end": BASE_S + 600,
        "period": 60,
        **body,
    }
    response = client.post("/api/v1/metrics/statistics", json=request)
    assert response.status_code == 200, response.text
    answer = response.json()
    assert answer["label"] == name
    return list(answer["datapoints"])


def nearest_rank(samples: list[float], q: float) -> float:
    ordered = sorted(samples)
    return ordered[max(1, math.ceil(q * len(ordered))) - 1]


# ---- PutMetricData + GetMetricStatistics ----------------------------------------------------


def test_raw_values_simple_statistics_by_period(client: httpx.Client) -> None:
    # 30 values, 20 s apart: stored on the minute, 3 per minute.
    samples = {i: float(i) for i in range(30)}
    put_ok(
        client,
        "App/Raw",
        [
            {
                "metric_name": "Latency",
                "dimensions": {"Host": "a"},
                "timestamp": BASE_MS + i * 20_000,
                "value": v,
                "unit": "Milliseconds",
            }
            for i, v in samples.items()
        ],
    )
    every = ["SampleCount", "Average", "Sum", "Minimum", "Maximum"]
    points = statistics(client, "App/Raw", "Latency", dimensions={"Host": "a"}, statistics=every)
    expected = []
    for minute in range(10):
        values = [v for i, v in samples.items() if i // 3 == minute]
        expected.append(
            {
                "timestamp": BASE_MS + minute * MIN,
                "sample_count": 3.0,
                "average": sum(values) / 3,
                "sum": sum(values),
                "minimum": min(values),
                "maximum": max(values),
                "unit": "Milliseconds",
            }
        )
    assert points == expected
    five = statistics(
        client,
        "App/Raw",
        "Latency",
        dimensions={"Host": "a"},
        period=300,
        statistics=["Sum", "SampleCount"],
    )
    assert [(p["timestamp"], p["sum"], p["sample_count"]) for p in five] == [
        (BASE_MS, float(sum(range(15))), 15.0),
        (BASE_MS + 5 * MIN, float(sum(range(15, 30))), 15.0),
    ]
    # Dimensions must match the full set: a subset (or none) finds nothing.
    assert statistics(client, "App/Raw", "Latency", statistics=["Sum"]) == []


def test_extended_statistics_and_start_rounding(client: httpx.Client) -> None:
    values = [float(v) for v in (12, 5, 40, 7, 7, 19, 3, 88, 21, 1)]
    put_ok(
        client, "App/Ext", [{"metric_name": "Size", "timestamp": BASE_MS + 5_000, "values": values}]
    )
    (point,) = statistics(
        client,
        "App/Ext",
        "Size",
        start=BASE_S + 30,
        extended_statistics=["p50", "p90", "p10", "p100"],
    )
    # The start 30 s into the minute is rounded down to the minute (spec §2.1).
    assert point["timestamp"] == BASE_MS
    assert point["extended_statistics"] == {
        "p50": nearest_rank(values, 0.5),
        "p90": nearest_rank(values, 0.9),
        "p10": nearest_rank(values, 0.1),
        "p100": max(values),
    }
    assert point["unit"] == "None" and "sum" not in point


def test_values_with_counts(client: httpx.Client) -> None:
    put_ok(
        client,
        "App/Counts",
        [{"metric_name": "M", "values": [1, 2, 3], "counts": [1, 1, 8], "timestamp": BASE_MS}],
    )
    (point,) = statistics(client, "App/Counts", "M", statistics=["SampleCount", "Sum", "Average"])
    assert (point["sample_count"], point["sum"], point["average"]) == (10.0, 27.0, 2.7)
    (point,) = statistics(client, "App/Counts", "M", extended_statistics=["p10", "p20", "p50"])
    samples = [1.0, 2.0] + [3.0] * 8
    assert point["extended_statistics"] == {
        f"p{q}": nearest_rank(samples, q / 100) for q in (10, 20, 50)
    }


def test_statistic_sets_are_exact_and_percentiles_only_when_constant(client: httpx.Client) -> None:
    put_ok(
        client,
        "App/Sets",
        [
            {
                "metric_name": "S",
                "timestamp": BASE_MS,
                "statistic_values": {"sample_count": 4, "sum": 10, "minimum": 1, "maximum": 4},
            },
            {
                "metric_name": "S",
                "timestamp": BASE_MS + MIN,
                "statistic_values": {"sample_count": 2, "sum": 6, "minimum": 3, "maximum": 3},
            },
            {"metric_name": "S", "timestamp": BASE_MS + MIN, "value": 9},
        ],
    )
    simple = statistics(
        client, "App/Sets", "S", statistics=["SampleCount", "Sum", "Minimum", "Maximum", "Average"]
    )
    assert [
        (p["sample_count"], p["sum"], p["minimum"], p["maximum"], p["average"]) for p in simple
    ] == [
        (4.0, 10.0, 1.0, 4.0, 2.5),
        (3.0, 15.0, 3.0, 9.0, 5.0),
    ]
    extended = statistics(client, "App/Sets", "S", extended_statistics=["p50", "p100"])
    # A set of several different values hides them: no order statistic for its bucket (null).
    assert [p["extended_statistics"] for p in extended] == [
        {"p50": None, "p100": None},
        {"p50": 3.0, "p100": 9.0},
    ]


def test_high_resolution_data_and_sub_minute_periods(client: httpx.Client) -> None:
    data = [
        {
            "metric_name": "Hits",
            "timestamp": BASE_MS + s * 1000 + 250,
            "value": s,
            "storage_resolution": 1,
        }
        for s in range(60)
    ]
    data.append({"metric_name": "Hits", "timestamp": BASE_MS + 30_000, "value": 1000})  # standard
    put_ok(client, "App/HighRes", data)
    tens = statistics(
        client, "App/HighRes", "Hits", end=BASE_S + 60, period=10, statistics=["Sum", "SampleCount"]
    )
    assert [(p["timestamp"], p["sum"], p["sample_count"]) for p in tens] == [
        (BASE_MS + k * 10_000, float(sum(range(10 * k, 10 * k + 10))), 10.0) for k in range(6)
    ]
    (minute,) = statistics(client, "App/HighRes", "Hits", statistics=["Sum", "SampleCount"])
    assert (minute["sum"], minute["sample_count"]) == (float(sum(range(60)) + 1000), 61.0)


def test_unit_filter_and_mixed_units(client: httpx.Client) -> None:
    put_ok(
        client,
        "App/Units",
        [
            {"metric_name": "T", "timestamp": BASE_MS, "value": 5, "unit": "Milliseconds"},
            {"metric_name": "T", "timestamp": BASE_MS, "value": 2, "unit": "Seconds"},
            {"metric_name": "T", "timestamp": BASE_MS + MIN, "value": 7, "unit": "Milliseconds"},
        ],
    )
    only_ms = statistics(client, "App/Units", "T", statistics=["Sum"], unit="Milliseconds")
    assert [(p["sum"], p["unit"]) for p in only_ms] == [
        (5.0, "Milliseconds"),
        (7.0, "Milliseconds"),
    ]
    every = statistics(client, "App/Units", "T", statistics=["Sum"])
    assert [(p["sum"], p["unit"]) for p in every] == [(7.0, "None"), (7.0, "Milliseconds")]
    assert statistics(client, "App/Units", "T", statistics=["Sum"], unit="Count") == []


@pytest.mark.parametrize(
    ("body", "code", "fragment"),
    [
        ({"statistics": ["Sum"], "period": 45}, "InvalidParameterValueException", "period must be"),
        (
            {"statistics": ["Sum"], "extended_statistics": ["p9"]},
            "InvalidParameterCombinationException",
            "exactly one",
        ),
        ({"statistics": ["Median"]}, "InvalidParameterValueException", "unknown statistic"),
        (
            {"statistics": ["Sum"], "unit": "Furlongs"},
            "InvalidParameterValueException",
            "is not a unit",
        ),
        (
            {"statistics": ["Sum"], "period": 1, "end": BASE_S + 3600},
            "InvalidParameterValueException",
            "1440",
        ),
        (
            {"statistics": ["Sum"], "end": BASE_S},
            "InvalidParameterValueException",
            "before the end",
        ),
        (
            {"statistics": ["Sum"], "start": "yesterday"},
            "InvalidParameterException",
            "invalid time",
        ),
    ],
    ids=["period", "both-lists", "statistic", "unit", "too-many-points", "empty-window", "time"],
)
def test_statistics_request_errors(
    client: httpx.Client, body: dict[str, Any], code: str, fragment: str
) -> None:
    request = {
        "namespace": "App/Raw",
        "metric_name": "Latency",
        "start": BASE_S,
        "end": BASE_S + 600,
        "period": 60,
    }
    response = client.post("/api/v1/metrics/statistics", json=request | body)
    assert response.status_code == 400, response.text
    error = response.json()["error"]
    assert error["code"] == code and fragment in error["message"], error


# ---- GetMetricData ----------------------------------------------------------------------------


def metric_stat(name: str, stat: str = "Sum", period: int = 60, **dims: str) -> dict[str, Any]:
    return {
        "metric": {"namespace": "App/Data", "metric_name": name, "dimensions": dims},
        "period": period,
        "stat": stat,
    }


@pytest.fixture(scope="module")
def data_metrics(server: RunningServer) -> dict[str, dict[int, float]]:
    """Requests (value per minute) and Errors (every other minute), 6 minutes."""
    series = {
        "Requests": {BASE_MS + m * MIN: float(10 * (m + 1)) for m in range(6)},
        "Errors": {BASE_MS + m * MIN: float(m) for m in range(0, 6, 2)},
    }
    with httpx.Client(base_url=server.url, headers={"Authorization": f"Bearer {ADMIN_KEY}"}) as c:
        put_ok(
            c,
            "App/Data",
            [
                {"metric_name": name, "dimensions": {"Service": "api"}, "timestamp": t, "value": v}
                for name, points in series.items()
                for t, v in points.items()
            ],
        )
    return series


def get_data(client: httpx.Client, queries: list[dict[str, Any]], **extra: Any) -> dict[str, Any]:
    body = {"metric_data_queries": queries, "start": BASE_S, "end": BASE_S + 360, **extra}
    response = client.post("/api/v1/metrics/query", json=body)
    assert response.status_code == 200, response.text
    return dict(response.json())


def test_get_metric_data_two_metrics_and_an_expression(
    client: httpx.Client, data_metrics: dict[str, dict[int, float]]
) -> None:
    requests, errors = data_metrics["Requests"], data_metrics["Errors"]
    answer = get_data(
        client,
        [
            {
                "id": "r",
                "metric_stat": metric_stat("Requests", Service="api"),
                "return_data": False,
            },
            {"id": "e", "metric_stat": metric_stat("Errors", Service="api"), "label": "errors"},
            {"id": "rate", "expression": "100 * e / r", "label": "error rate"},
        ],
    )
    assert answer["next_token"] is None and answer["messages"] == []
    results = {r["id"]: r for r in answer["metric_data_results"]}
    assert list(results) == ["e", "rate"]  # r is fetched, not returned
    newest_first = sorted(errors, reverse=True)
    assert results["e"]["label"] == "errors"
    assert results["e"]["timestamps"] == newest_first
    assert results["e"]["values"] == [errors[t] for t in newest_first]
    # A missing point counts as 0 in arithmetic (spec §2.6).
    rate = {t: 100 * errors.get(t, 0.0) / v for t, v in requests.items()}
    assert results["rate"]["label"] == "error rate"
    assert dict(
        zip(results["rate"]["timestamps"], results["rate"]["values"], strict=True)
    ) == pytest.approx(rate)
    assert results["rate"]["timestamps"] == sorted(rate, reverse=True)
    assert all(r["status_code"] == "Complete" for r in results.values())


def test_get_metric_data_ascending_with_default_labels(
    client: httpx.Client, data_metrics: dict[str, dict[int, float]]
) -> None:
    answer = get_data(
        client,
        [
            {"id": "m1", "metric_stat": metric_stat("Requests", Service="api")},
            {"id": "total", "expression": "SUM(METRICS())"},
        ],
        scan_by="TimestampAscending",
    )
    m1, total = answer["metric_data_results"]
    assert (m1["label"], total["label"]) == ("Requests", "total")
    assert m1["timestamps"] == sorted(data_metrics["Requests"])
    assert total["values"] == m1["values"]


def test_get_metric_data_pages_never_overlap_or_skip(
    client: httpx.Client, data_metrics: dict[str, dict[int, float]]
) -> None:
    queries = [
        {"id": "r", "metric_stat": metric_stat("Requests", Service="api")},
        {"id": "e", "metric_stat": metric_stat("Errors", Service="api")},
    ]
    full = get_data(client, queries)
    seen: dict[str, list[tuple[int, float]]] = {"r": [], "e": []}
    token, pages = None, 0
    while True:
        page = get_data(
            client, queries, max_datapoints=4, **({"next_token": token} if token else {})
        )
        pages += 1
        for result in page["metric_data_results"]:
            seen[result["id"]] += list(zip(result["timestamps"], result["values"], strict=True))
        token = page["next_token"]
        if token is None:
            assert all(r["status_code"] == "Complete" for r in page["metric_data_results"])
            break
        assert len(sum((r["timestamps"] for r in page["metric_data_results"]), [])) == 4
        assert any(r["status_code"] == "PartialData" for r in page["metric_data_results"])
    assert pages == 3  # 9 datapoints, 4 per page
    for result in full["metric_data_results"]:
        assert seen[result["id"]] == list(zip(result["timestamps"], result["values"], strict=True))
    all_times = [t for points in seen.values() for t, _ in points]
    assert len(all_times) == 9


@pytest.mark.parametrize(
    ("queries", "extra", "code", "fragment"),
    [
        (
            [{"id": "M1", "expression": "1"}],
            {},
            "InvalidParameterValueException",
            "invalid query id",
        ),
        (
            [{"id": "a", "expression": "b +"}],
            {},
            "InvalidParameterValueException",
            "in expression a",
        ),
        (
            [{"id": "a", "expression": "TIME_SERIES(1)", "metric_stat": metric_stat("Requests")}],
            {},
            "InvalidParameterCombinationException",
            "exactly one",
        ),
        (
            [{"id": "a", "expression": "nope * 2"}],
            {},
            "InvalidParameterValueException",
            "unknown id",
        ),
        (
            [{"id": "a", "metric_stat": metric_stat("Requests")}, {"id": "a", "expression": "a"}],
            {},
            "InvalidParameterValueException",
            "used twice",
        ),
        (
            [{"id": "a", "metric_stat": metric_stat("Requests")}],
            {"next_token": "garbage!"},
            "InvalidNextTokenException",
            "next_token",
        ),
        (
            [{"id": "a", "metric_stat": metric_stat("Requests", period=7)}],
            {},
            "InvalidParameterValueException",
            "period",
        ),
        (
            [{"id": "a", "metric_stat": metric_stat("Requests"), "account_id": "123456789012"}],
            {},
            "InvalidParameterValueException",
            "cross-account",
        ),
    ],
    ids=["id", "syntax", "both", "unknown-id", "duplicate-id", "token", "period", "account"],
)
def test_get_metric_data_errors(
    client: httpx.Client,
    queries: list[dict[str, Any]],
    extra: dict[str, Any],
    code: str,
    fragment: str,
) -> None:
    body = {"metric_data_queries": queries, "start": BASE_S, "end": BASE_S + 360, **extra}
    response = client.post("/api/v1/metrics/query", json=body)
    assert response.status_code == 400, response.text
    error = response.json()["error"]
    assert error["code"] == code and fragment in error["message"], error


def test_a_token_is_bound_to_its_request(
    client: httpx.Client, data_metrics: dict[str, dict[int, float]]
) -> None:
    queries = [{"id": "r", "metric_stat": metric_stat("Requests", Service="api")}]
    token = get_data(client, queries, max_datapoints=2)["next_token"]
    assert token
    other = [{"id": "r", "metric_stat": metric_stat("Requests", stat="Average", Service="api")}]
    response = client.post(
        "/api/v1/metrics/query",
        json={
            "metric_data_queries": other,
            "start": BASE_S,
            "end": BASE_S + 360,
            "next_token": token,
        },
    )
    assert (
        response.status_code == 400
        and response.json()["error"]["code"] == "InvalidNextTokenException"
    )


# ---- ListMetrics ------------------------------------------------------------------------------


def test_list_metrics_filters(client: httpx.Client) -> None:
    put_ok(
        client,
        "App/List",
        [
            {"metric_name": "Cpu", "dimensions": {"Host": "a", "Role": "web"}, "value": 1},
            {"metric_name": "Cpu", "dimensions": {"Host": "b"}, "value": 1},
            {"metric_name": "Disk", "dimensions": [{"name": "Host", "value": "a"}], "value": 1},
            {"metric_name": "Up", "value": 1},
        ],
    )

    def listed(**params: Any) -> list[tuple[str, dict[str, str]]]:
        response = client.get("/api/v1/metrics", params={"namespace": "App/List", **params})
        assert response.status_code == 200, response.text
        assert response.json()["next_token"] is None
        return [(m["metric_name"], m["dimensions"]) for m in response.json()["metrics"]]

    assert listed() == [
        ("Cpu", {"Host": "a", "Role": "web"}),
        ("Cpu", {"Host": "b"}),
        ("Disk", {"Host": "a"}),
        ("Up", {}),
    ]
    assert listed(metric_name="Cpu", dimension="Host=b") == [("Cpu", {"Host": "b"})]
    assert listed(dimension="Host=a") == [
        ("Cpu", {"Host": "a", "Role": "web"}),
        ("Disk", {"Host": "a"}),
    ]
    assert listed(dimension=["Host", "Role"]) == [("Cpu", {"Host": "a", "Role": "web"})]
    assert [n for n, _ in listed(recently_active="PT3H")] == ["Cpu", "Cpu", "Disk", "Up"]
    response = client.get("/api/v1/metrics", params={"recently_active": "PT1H"})
    assert response.status_code == 400 and "PT3H" in response.json()["error"]["message"]
    # Without a namespace, every namespace is listed (put here, not relying on other tests).
    put_ok(client, "App/Raw", [{"metric_name": "Latency", "dimensions": {"Host": "a"}, "value": 1}])
    everything = client.get("/api/v1/metrics").json()["metrics"]
    assert {
        "namespace": "App/Raw",
        "metric_name": "Latency",
        "dimensions": {"Host": "a"},
    } in everything


def test_list_metrics_pages_of_500(client: httpx.Client) -> None:
    for chunk in range(2):
        put_ok(
            client,
            "App/Many",
            [
                {"metric_name": "N", "dimensions": {"I": f"{chunk * 300 + i:04d}"}, "value": 1}
                for i in range(300)
            ],
        )
    first = client.get("/api/v1/metrics", params={"namespace": "App/Many"}).json()
    assert len(first["metrics"]) == 500 and first["next_token"]
    second = client.get(
        "/api/v1/metrics", params={"namespace": "App/Many", "next_token": first["next_token"]}
    ).json()
    assert len(second["metrics"]) == 100 and second["next_token"] is None
    ids = [m["dimensions"]["I"] for m in first["metrics"] + second["metrics"]]
    assert ids == [f"{i:04d}" for i in range(600)]


# ---- validation, partial success, limits ------------------------------------------------------

GOOD = {"metric_name": "Ok", "value": 1}
OLD_MS = NOW_MS - 15 * 86_400_000


@pytest.mark.parametrize(
    ("datum", "code", "fragment"),
    [
        ({"value": 1}, "MissingParameterException", "metric_name is required"),
        ({"metric_name": "", "value": 1}, "InvalidParameterValueException", "1 to 255"),
        ({"metric_name": "m"}, "MissingParameterException", "needs value"),
        (
            {"metric_name": "m", "value": 1, "values": [1]},
            "InvalidParameterCombinationException",
            "value and values",
        ),
        (
            {"metric_name": "m", "counts": [1]},
            "InvalidParameterCombinationException",
            "counts is only allowed",
        ),
        ({"metric_name": "m", "value": "1"}, "InvalidParameterValueException", "is not a number"),
        ({"metric_name": "m", "value": 2.0**361}, "InvalidParameterValueException", "2^360"),
        (
            {"metric_name": "m", "values": list(range(151))},
            "InvalidParameterValueException",
            "at most 150",
        ),
        (
            {"metric_name": "m", "values": [1, 2], "counts": [1]},
            "InvalidParameterValueException",
            "as long as values",
        ),
        (
            {"metric_name": "m", "values": [1], "counts": [0]},
            "InvalidParameterValueException",
            "above 0",
        ),
        (
            {"metric_name": "m", "statistic_values": {"sample_count": 1, "sum": 1, "minimum": 1}},
            "MissingParameterException",
            "statistic_values.maximum",
        ),
        (
            {
                "metric_name": "m",
                "statistic_values": {"sample_count": 0, "sum": 1, "minimum": 1, "maximum": 1},
            },
            "InvalidParameterValueException",
            "above 0",
        ),
        (
            {
                "metric_name": "m",
                "statistic_values": {"sample_count": 2, "sum": 1, "minimum": 3, "maximum": 1},
            },
            "InvalidParameterValueException",
            "minimum is greater",
        ),
        (
            {"metric_name": "m", "value": 1, "unit": "Parsecs"},
            "InvalidParameterValueException",
            "is not a unit",
        ),
        (
            {"metric_name": "m", "value": 1, "storage_resolution": 30},
            "InvalidParameterValueException",
            "60 (standard) or 1",
        ),
        (
            {"metric_name": "m", "value": 1, "timestamp": OLD_MS},
            "InvalidParameterValueException",
            "past two weeks",
        ),
        (
            {"metric_name": "m", "value": 1, "timestamp": NOW_MS + 3 * 3_600_000},
            "InvalidParameterValueException",
            "two hours in the future",
        ),
        (
            {"metric_name": "m", "value": 1, "timestamp": "yesterday"},
            "InvalidParameterValueException",
            "RFC 3339",
        ),
        (
            {"metric_name": "m", "value": 1, "dimensions": {f"d{i}": "v" for i in range(31)}},
            "InvalidParameterValueException",
            "at most 30",
        ),
        (
            {"metric_name": "m", "value": 1, "dimensions": {":x": "v"}},
            "InvalidParameterValueException",
            "must not start with ':'",
        ),
        (
            {"metric_name": "m", "value": 1, "dimensions": {"x": " "}},
            "InvalidParameterValueException",
            "other than whitespace",
        ),
        (
            {
                "metric_name": "m",
                "value": 1,
                "dimensions": [{"name": "a", "value": "1"}, {"name": "a", "value": "2"}],
            },
            "InvalidParameterValueException",
            "more than once",
        ),
        (
            {"metric_name": "m", "Value": 1},
            "InvalidParameterValueException",
            "unknown field 'Value'",
        ),
        ("not an object", "InvalidParameterValueException", "JSON object"),
    ],
)
def test_an_invalid_datum_is_refused_with_its_index(
    client: httpx.Client, datum: Any, code: str, fragment: str
) -> None:
    response = put(client, "App/Bad", [datum])
    assert response.status_code == 400, response.text
    error = response.json()["error"]
    assert error["code"] == code, error
    assert fragment in error["message"], error
    assert error["details"]["index"] == 0
    assert fragment in error["details"]["rejected"][0]["reason"]


def test_partial_success_reports_rejected_datums_by_index(client: httpx.Client) -> None:
    response = put(
        client,
        "App/Partial",
        [GOOD, {"metric_name": "m", "value": "x"}, GOOD, {"metric_name": "m"}],
    )
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["accepted"] == 2
    assert [r["index"] for r in body["rejected"]] == [1, 3]
    assert "is not a number" in body["rejected"][0]["reason"]
    (point,) = statistics(
        client, "App/Partial", "Ok", start="-1h", end="now", period=3600, statistics=["SampleCount"]
    )
    assert point["sample_count"] == 2.0


@pytest.mark.parametrize(
    ("body", "status", "code", "fragment"),
    [
        ({"metric_data": [GOOD]}, 400, "MissingParameterException", "namespace is required"),
        (
            {"namespace": "AWS/EC2", "metric_data": [GOOD]},
            400,
            "InvalidParameterValueException",
            "reserved",
        ),
        (
            {"namespace": "Watchkeep/Self", "metric_data": [GOOD]},
            400,
            "InvalidParameterValueException",
            "reserved",
        ),
        (
            {"namespace": ":x", "metric_data": [GOOD]},
            400,
            "InvalidParameterValueException",
            "must not start with ':'",
        ),
        ({"namespace": "App/X"}, 400, "MissingParameterException", "metric_data is required"),
        ({"namespace": "App/X", "metric_data": []}, 400, "MissingParameterException", "no datum"),
        (
            {"namespace": "App/X", "metric_data": [GOOD] * 1001},
            400,
            "InvalidParameterValueException",
            "at most 1000",
        ),
        (
            {"namespace": "App/X", "metric_data": [GOOD], "extra": 1},
            400,
            "InvalidParameterValueException",
            "unknown field 'extra'",
        ),
        (
            {
                "namespace": "App/X",
                "metric_data": [{**GOOD, "dimensions": {"k": "v" * 1024}}] * 1000,
            },
            413,
            "RequestEntityTooLargeException",
            "limited to 1 MiB",
        ),
    ],
    ids=[
        "no-namespace",
        "aws",
        "watchkeep",
        "colon",
        "no-data",
        "empty",
        "too-many",
        "unknown",
        "too-large",
    ],
)
def test_request_level_errors(
    client: httpx.Client, body: dict[str, Any], status: int, code: str, fragment: str
) -> None:
    response = client.post("/api/v1/metrics/data", json=body)
    assert response.status_code == status, response.text
    error = response.json()["error"]
    assert error["code"] == code and fragment in error["message"], error


def test_not_json_and_gzip_bodies(client: httpx.Client) -> None:
    response = client.post(
        "/api/v1/metrics/data", content=b"{nope", headers={"Content-Type": "application/json"}
    )
    assert response.status_code == 400 and "not valid JSON" in response.json()["error"]["message"]
    infinite = b'{"namespace": "App/Inf", "metric_data": [{"metric_name": "m", "value": 1e400}]}'
    response = client.post("/api/v1/metrics/data", content=infinite)
    assert response.status_code == 400 and "infinity" in response.json()["error"]["message"]
    body = gzip.compress(json.dumps({"namespace": "App/Gzip", "metric_data": [GOOD]}).encode())
    response = client.post(
        "/api/v1/metrics/data",
        content=body,
        headers={"Content-Encoding": "gzip", "Content-Type": "application/json"},
    )
    assert response.status_code == 200 and response.json()["accepted"] == 1


def test_idempotency_key_stores_a_request_once(client: httpx.Client) -> None:
    data = [{"metric_name": "Once", "value": 1}]
    headers = {"Idempotency-Key": "metrics-once-1"}
    first = put(client, "App/Idem", data, headers=headers)
    again = put(client, "App/Idem", data, headers=headers)
    assert first.json() == {"accepted": 1, "rejected": []}
    assert again.json() == {"accepted": 1, "rejected": [], "duplicate": True}
    (point,) = statistics(
        client, "App/Idem", "Once", start="-1h", end="now", period=3600, statistics=["SampleCount"]
    )
    assert point["sample_count"] == 1.0


# ---- authorization and audit ------------------------------------------------------------------


def key_for(client: httpx.Client, name: str, statements: list[dict[str, Any]]) -> str:
    policy = {"Version": "2012-10-17", "Statement": statements}
    assert client.put(f"/api/v1/iam/users/{name}").status_code == 201
    assert client.put(f"/api/v1/iam/policies/{name}", json=policy).status_code == 201
    assert client.put(f"/api/v1/iam/users/{name}/policies/{name}").status_code == 204
    return str(client.post(f"/api/v1/iam/users/{name}/keys").json()["key"])


def test_put_metric_data_is_authorized_by_namespace(
    server: RunningServer, client: httpx.Client
) -> None:
    key = key_for(
        client,
        "app-writer",
        [
            {
                "Effect": "Allow",
                "Action": "cloudwatch:PutMetricData",
                "Resource": "arn:watchkeep:cloudwatch:*:*:metric-namespace:App/*",
            }
        ],
    )
    with httpx.Client(
        base_url=server.url, headers={"Authorization": f"Bearer {key}"}, timeout=30
    ) as writer:
        assert put(writer, "App/Allowed", [GOOD]).status_code == 200
        denied = put(writer, "Billing/Secret", [GOOD])
        assert denied.status_code == 403, denied.text
        assert denied.json()["error"]["code"] == "AccessDeniedException"
        assert "metric-namespace:Billing/Secret" in denied.json()["error"]["message"]
        # Authorization comes before validation: a bad datum in a denied namespace is a 403.
        assert put(writer, "Billing/Secret", [{"metric_name": ""}]).status_code == 403
        # Reads are other actions.
        assert writer.get("/api/v1/metrics").status_code == 403
        read = writer.post(
            "/api/v1/metrics/statistics",
            json={
                "namespace": "App/Allowed",
                "metric_name": "Ok",
                "start": "-1h",
                "end": "now",
                "period": 60,
                "statistics": ["Sum"],
            },
        )
        assert read.status_code == 403


def test_the_audit_record_summarizes_the_datums(
    server: RunningServer, client: httpx.Client
) -> None:
    response = put(
        client,
        "App/Audited",
        [
            {"metric_name": "B", "value": 1},
            {"metric_name": "A", "value": 2},
            {"metric_name": "B", "value": 3},
        ],
    )
    request_id = response.headers["x-amzn-requestid"]
    _, unsealed = server.app.state.services.trail.snapshot()
    (record,) = [
        r for r in (json.loads(e.record_json) for e in unsealed) if r["requestID"] == request_id
    ]
    assert (
        record["eventName"] == "PutMetricData" and record["eventSource"] == "monitoring.watchkeep"
    )
    assert record["additionalEventData"]["watchkeep"]["summary"] == {
        "metricDatumCount": 3,
        "metricNames": ["A", "B"],
    }
    assert record["requestParameters"] is None  # the datapoints are never copied (audit R5)
    assert [r["ARN"] for r in record["resources"]] == [
        "arn:watchkeep:cloudwatch:local:000000000000:metric-namespace:App/Audited"
    ]


# ---- restart ----------------------------------------------------------------------------------


def test_readback_after_the_metric_store_restarts(
    server: RunningServer, client: httpx.Client
) -> None:
    put_ok(client, "App/Restart", [{"metric_name": "Flushed", "timestamp": BASE_MS, "value": 4}])
    store: MetricStore = server.app.state.metrics
    store.close()  # a clean stop flushes to Parquet
    open_metrics(server)
    put_ok(client, "App/Restart", [{"metric_name": "Replayed", "timestamp": BASE_MS, "value": 5}])
    store = server.app.state.metrics
    assert store._commit is not None and store._catalog is not None
    store._commit.close()  # a crash: the WAL is all there is
    store._catalog.close()
    open_metrics(server)
    for name, value in (("Flushed", 4.0), ("Replayed", 5.0)):
        (point,) = statistics(client, "App/Restart", name, statistics=["Sum", "SampleCount"])
        assert (point["sum"], point["sample_count"]) == (value, 1.0)
    names = [
        m["metric_name"]
        for m in client.get("/api/v1/metrics", params={"namespace": "App/Restart"}).json()[
            "metrics"
        ]
    ]
    assert names == ["Flushed", "Replayed"]
