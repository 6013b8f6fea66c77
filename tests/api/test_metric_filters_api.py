"""Log metric filters through a real server (spec metrics §4): PutMetricFilter, then events
ingested by ``POST /api/v1/logs/events`` become datapoints read back by GetMetricStatistics;
retried batches count once; CRUD, TestMetricFilter, errors and authorization."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from ingest.metric_filter_routes import router as metric_filter_router
from server.app import DEFAULT_ROUTERS
from tests.conftest import ADMIN_KEY, RunningServer, make_settings

NDJSON = {"Content-Type": "application/x-ndjson"}
FILTERS = "/api/v1/logs/metric-filters"
ROUTERS = (
    DEFAULT_ROUTERS
    if metric_filter_router in DEFAULT_ROUTERS
    else (*DEFAULT_ROUTERS, metric_filter_router)
)


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningServer]:
    data = tmp_path_factory.mktemp("metric-filters") / "data"
    running = RunningServer(make_settings(data), routers=ROUTERS).start()
    yield running
    running.stop()


@pytest.fixture(scope="module")
def client(server: RunningServer) -> Iterator[httpx.Client]:
    with httpx.Client(
        base_url=server.url, headers={"Authorization": f"Bearer {ADMIN_KEY}"}, timeout=30
    ) as c:
        yield c


def create_group(client: httpx.Client, group: str) -> None:
    assert client.put(f"/api/v1/logs/groups/{group}").status_code in (200, 201)


def put_filter(
    client: httpx.Client, group: str, name: str, pattern: str, **transformation: Any
) -> httpx.Response:
    body = {
        "filter_pattern": pattern,
        "metric_transformations": [
            {"metric_namespace": "Shop", "metric_name": name, "metric_value": "1"} | transformation
        ],
    }
    return client.put(FILTERS, params={"group": group, "name": name}, json=body)


def ingest(client: httpx.Client, group: str, lines: list[str], **headers: str) -> dict[str, Any]:
    response = client.post(
        "/api/v1/logs/events",
        params={"group": group},
        content="\n".join(lines),
        headers={**NDJSON, **headers},
    )
    assert response.status_code == 200, response.text
    return response.json()  # type: ignore[no-any-return]


def statistics(
    client: httpx.Client, name: str, dimensions: dict[str, str] | None = None
) -> tuple[float, float]:
    """(SampleCount, Sum) of a metric over the last two hours, all buckets together."""
    response = client.post(
        "/api/v1/metrics/statistics",
        json={
            "namespace": "Shop",
            "metric_name": name,
            "dimensions": dimensions or {},
            "start": "-2h",
            "end": int(time.time()) + 300,
            "period": 60,
            "statistics": ["SampleCount", "Sum"],
        },
    )
    assert response.status_code == 200, response.text
    points = response.json()["datapoints"]
    return (sum(p["sample_count"] for p in points), sum(p["sum"] for p in points))


def test_ingested_events_become_datapoints_once(client: httpx.Client) -> None:
    group = "shop/api"
    create_group(client, group)
    assert put_filter(client, group, "Errors5xx", "{ $.status = 5* }",
                      dimensions={"Service": "$.service"}, unit="Count").status_code == 201  # fmt: skip
    assert put_filter(client, group, "Latency", "{ $.latency >= 0 }",
                      metric_value="$.latency", unit="Milliseconds").status_code == 201  # fmt: skip
    assert put_filter(client, group, "Warnings", '{ $.level = "WARN" }',
                      default_value=0).status_code == 201  # fmt: skip
    now_ms = int(time.time() * 1000)
    docs = [
        {
            "timestamp": now_ms - i * 1000,
            "status": ["200", "503", "500", "404"][i % 4],
            "service": ["api", "web"][i % 3 % 2],
            "latency": (i * 7) % 250 + 0.5,
            "level": "WARN" if i % 5 == 0 else "INFO",
        }
        for i in range(200)
    ]
    lines = [json.dumps(d) for d in docs]
    assert ingest(client, group, lines, **{"Idempotency-Key": "mf-1"})["accepted"] == 200

    def expected() -> dict[str, tuple[float, float]]:
        errors = [d for d in docs if d["status"].startswith("5")]
        latencies = [d["latency"] for d in docs]
        warns = sum(d["level"] == "WARN" for d in docs)
        return {
            "api": (sum(d["service"] == "api" for d in errors),) * 2,
            "web": (sum(d["service"] == "web" for d in errors),) * 2,
            "latency": (len(latencies), sum(latencies)),
            "warnings": (len(docs), warns),  # 1 per WARN, 0 for every other event
        }

    def observed() -> dict[str, tuple[float, float]]:
        return {
            "api": statistics(client, "Errors5xx", {"Service": "api"}),
            "web": statistics(client, "Errors5xx", {"Service": "web"}),
            "latency": statistics(client, "Latency"),
            "warnings": statistics(client, "Warnings"),
        }

    want = expected()
    got = observed()
    assert got.keys() == want.keys()
    for key in want:
        assert got[key] == pytest.approx(want[key]), key

    again = ingest(client, group, lines, **{"Idempotency-Key": "mf-1"})
    assert again["duplicate"] is True
    assert observed() == got  # a retried batch publishes nothing more


def test_space_delimited_access_log(client: httpx.Client) -> None:
    group = "web/access"
    create_group(client, group)
    response = put_filter(
        client, group, "Bytes5xx", "[ip, user, ..., status = 5*, size]",
        metric_value="$size", dimensions={"Status": "$status"}, unit="Bytes",
    )  # fmt: skip
    assert response.status_code == 201, response.text
    lines = [f'10.0.0.{i} u{i} GET "/p {i}" {[200, 503, 500][i % 3]} {100 + i}' for i in range(60)]
    response = client.post(
        "/api/v1/logs/events",
        params={"group": group},
        content="\n".join(lines),
        headers={"Content-Type": "text/plain"},
    )
    assert response.status_code == 200, response.text
    for status in (503, 500):
        sizes = [100 + i for i in range(60) if [200, 503, 500][i % 3] == status]
        assert statistics(client, "Bytes5xx", {"Status": str(status)}) == (len(sizes), sum(sizes))


def test_describe_replace_and_delete(client: httpx.Client) -> None:
    group = "crud"
    create_group(client, group)
    for name in ("alpha", "alpine", "beta"):
        assert put_filter(client, group, name, "ERROR", metric_name="Shared").status_code == 201
    replaced = put_filter(client, group, "beta", "WARN", metric_name="Shared")
    assert replaced.status_code == 200
    assert replaced.json()["filter_pattern"] == "WARN"

    listed = client.get(FILTERS, params={"group": group}).json()
    assert [f["filter_name"] for f in listed["metric_filters"]] == ["alpha", "alpine", "beta"]
    first = listed["metric_filters"][0]
    assert first["log_group"] == group and first["metric_transformations"] == [
        {"metric_namespace": "Shop", "metric_name": "Shared", "metric_value": "1",
         "unit": "None", "dimensions": {}}
    ]  # fmt: skip
    by_prefix = client.get(FILTERS, params={"group": group, "name_prefix": "alp"}).json()
    assert [f["filter_name"] for f in by_prefix["metric_filters"]] == ["alpha", "alpine"]
    paged = client.get(FILTERS, params={"group": group, "limit": 2}).json()
    assert len(paged["metric_filters"]) == 2 and paged["next_token"]
    rest = client.get(FILTERS, params={"group": group, "next_token": paged["next_token"]})
    assert [f["filter_name"] for f in rest.json()["metric_filters"]] == ["beta"]
    by_metric = client.get(FILTERS, params={"metric_namespace": "Shop", "metric_name": "Shared"})
    assert {(f["log_group"], f["filter_name"]) for f in by_metric.json()["metric_filters"]} == {
        (group, "alpha"), (group, "alpine"), (group, "beta")
    }  # fmt: skip

    assert client.delete(FILTERS, params={"group": group, "name": "alpha"}).status_code == 204
    gone = client.delete(FILTERS, params={"group": group, "name": "alpha"})
    assert gone.status_code == 404
    assert gone.json()["error"]["code"] == "ResourceNotFoundException"
    remaining = client.get(FILTERS, params={"group": group}).json()["metric_filters"]
    assert [f["filter_name"] for f in remaining] == ["alpine", "beta"]


def test_deleted_filter_stops_publishing(client: httpx.Client) -> None:
    group = "stops"
    create_group(client, group)
    put_filter(client, group, "Stopped", "ERROR")
    ingest(client, group, [json.dumps({"message": "ERROR one"})])
    client.delete(FILTERS, params={"group": group, "name": "Stopped"}).raise_for_status()
    ingest(client, group, [json.dumps({"message": "ERROR two"})])
    assert statistics(client, "Stopped") == (1, 1)


def test_test_metric_filter(client: httpx.Client) -> None:
    response = client.post(
        f"{FILTERS}/test",
        json={
            "filter_pattern": "[ip, user, ..., status = 5*, size]",
            "log_event_messages": ["1.2.3.4 bob GET / 503 99", "1.2.3.4 bob GET / 200 1"],
            "metric_value": "$size",
        },
    )
    assert response.status_code == 200, response.text
    (found,) = response.json()["matches"]
    assert found["event_number"] == 1 and found["metric_value"] == 99
    assert found["extracted_values"]["$status"] == "503"
    assert found["extracted_values"]["$4"] == "503"  # $N: the N-th slot of the pattern
    json_match = client.post(
        f"{FILTERS}/test",
        json={"filter_pattern": "{ $.n > 1 }", "log_event_messages": ['{"n": 2}', '{"n": 1}']},
    ).json()["matches"]
    assert json_match == [
        {"event_number": 1, "event_message": '{"n": 2}', "extracted_values": {"$.n": "2"}}
    ]


# id, group, filter pattern, transformation overrides, status, code, details checked
ERRORS: list[tuple[str, str, str, dict[str, Any], int, str, dict[str, Any]]] = [
    ("unknown-group", "no-such-group", "ERROR", {}, 404, "ResourceNotFoundException", {}),
    ("bad-pattern", "errors", "{ $.status = 5* && }", {}, 400, "InvalidParameterException",
     {"column": 20}),
    ("bad-unit", "errors", "ERROR", {"unit": "Parsecs"}, 400, "InvalidParameterException", {}),
    ("default-and-dimensions", "errors", "{ $.a = 1 }",
     {"default_value": 0, "dimensions": {"A": "$.a"}}, 400, "InvalidParameterException", {}),
]  # fmt: skip


@pytest.mark.parametrize(
    ("group", "pattern", "overrides", "status", "code", "details"),
    [e[1:] for e in ERRORS],
    ids=[e[0] for e in ERRORS],
)
def test_put_errors(
    client: httpx.Client,
    group: str,
    pattern: str,
    overrides: dict[str, Any],
    status: int,
    code: str,
    details: dict[str, Any],
) -> None:
    create_group(client, "errors")
    response = put_filter(client, group, "bad", pattern, **overrides)
    assert response.status_code == status, response.text
    error = response.json()["error"]
    assert error["code"] == code
    assert details.items() <= error["details"].items()
    if group == "errors":
        assert client.get(FILTERS, params={"group": group}).json()["metric_filters"] == []


def test_test_metric_filter_bad_pattern_has_position(client: httpx.Client) -> None:
    response = client.post(
        f"{FILTERS}/test", json={"filter_pattern": "[a, b", "log_event_messages": ["x y"]}
    )
    assert response.status_code == 400
    assert response.json()["error"]["details"]["column"] == 6


def test_describe_needs_consistent_parameters(client: httpx.Client) -> None:
    alone = client.get(FILTERS, params={"metric_name": "Shared"})
    assert alone.status_code == 400
    prefix = client.get(FILTERS, params={"name_prefix": "a"})
    assert prefix.status_code == 400


def test_a_group_holds_100_filters_at_most(client: httpx.Client) -> None:
    group = "limited"
    create_group(client, group)
    for i in range(100):
        assert put_filter(client, group, f"f{i:03}", "ERROR").status_code == 201
    over = put_filter(client, group, "f100", "ERROR")
    assert over.status_code == 400
    assert over.json()["error"]["code"] == "LimitExceededException"
    assert put_filter(client, group, "f000", "WARN").status_code == 200  # replacing is fine


def key_with(client: httpx.Client, name: str, actions: list[str]) -> str:
    policy = {
        "Version": "2012-10-17",
        "Statement": [{"Effect": "Allow", "Action": actions, "Resource": "*"}],
    }
    client.put(f"/api/v1/iam/users/{name}").raise_for_status()
    assert client.put(f"/api/v1/iam/policies/{name}", json=policy).status_code == 201
    client.put(f"/api/v1/iam/users/{name}/policies/{name}").raise_for_status()
    return str(client.post(f"/api/v1/iam/users/{name}/keys").json()["key"])


def test_unauthorized_key_cannot_create_a_filter(
    server: RunningServer, client: httpx.Client
) -> None:
    group = "guarded"
    create_group(client, group)
    key = key_with(client, "reader", ["logs:DescribeMetricFilters"])
    with httpx.Client(base_url=server.url, headers={"Authorization": f"Bearer {key}"}) as reader:
        denied = put_filter(reader, group, "sneaky", "ERROR")
        assert denied.status_code == 403
        assert denied.json()["error"]["code"] == "AccessDeniedException"
        assert "logs:PutMetricFilter" in denied.json()["error"]["message"]
        listed = reader.get(FILTERS, params={"group": group})
        assert listed.status_code == 200 and listed.json()["metric_filters"] == []
        put_filter(client, group, "kept", "ERROR").raise_for_status()
        assert reader.delete(FILTERS, params={"group": group, "name": "kept"}).status_code == 403
    assert [f["filter_name"] for f in client.get(FILTERS, params={"group": group}).json()[
        "metric_filters"
    ]] == ["kept"]  # fmt: skip
