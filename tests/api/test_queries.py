"""Logs Insights over the HTTP API and the CLI, against a real server: results, statuses,
errors placed at line and column, per-group authorization, saved queries, the audit record."""

from __future__ import annotations

import json
import subprocess
import time
from typing import Any

import httpx
import pytest

from tests.conftest import ADMIN_KEY, RunningServer
from tests.server.helpers import watchkeep_command

NDJSON = {"Content-Type": "application/x-ndjson"}


def seed(client: httpx.Client, group: str, count: int = 60) -> None:
    now = int(time.time() * 1000)
    lines = [
        json.dumps(
            {
                "timestamp": now - i * 1000,
                "level": ("info", "warn", "error")[i % 3],
                "req": {"ms": i, "path": f"/p/{i % 4}"},
                "message": f"request {i} took {i} ms",
            }
        )
        for i in range(count)
    ]
    response = client.post(
        "/api/v1/logs/events", params={"group": group}, content="\n".join(lines), headers=NDJSON
    )
    assert response.json()["accepted"] == count


def start(client: httpx.Client, query: str, groups: list[str], **extra: Any) -> httpx.Response:
    body = {"query": query, "log_groups": groups, "start": "-1h", "end": "now", **extra}
    return client.post("/api/v1/queries", json=body, params={"wait": "true"})


def rows(body: dict[str, Any]) -> list[dict[str, str]]:
    return [{cell["field"]: cell["value"] for cell in row} for row in body["results"]]


def test_stats_query_with_wait(client: httpx.Client) -> None:
    seed(client, "app")
    response = start(
        client,
        "filter req.ms >= 30 | stats count(*) as n, max(req.ms) as slowest by level | sort level asc",
        ["app"],
    )
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["status"] == "Complete"
    assert rows(body) == [
        {"level": "error", "n": "10", "slowest": "59"},
        {"level": "info", "n": "10", "slowest": "57"},
        {"level": "warn", "n": "10", "slowest": "58"},
    ]
    assert body["statistics"]["records_scanned"] == 60
    assert body["statistics"]["records_matched"] == 30


def test_a_group_named_twice_is_read_once(client: httpx.Client) -> None:
    seed(client, "app", count=6)
    body = start(client, "stats count(*) as n", ["app", "app"]).json()
    assert rows(body) == [{"n": "6"}]
    assert body["statistics"]["records_scanned"] == 6


def test_started_query_is_polled_and_listed(client: httpx.Client) -> None:
    seed(client, "app")
    body = {"query": "fields @timestamp, @message | sort @timestamp desc | limit 5",
            "log_groups": ["app"], "start": "-1h", "end": "now"}  # fmt: skip
    query_id = client.post("/api/v1/queries", json=body).json()["query_id"]
    deadline = time.monotonic() + 20
    while (result := client.get(f"/api/v1/queries/{query_id}").json())["status"] != "Complete":
        assert time.monotonic() < deadline, result
        time.sleep(0.05)
    messages = [r["@message"] for r in rows(result)]
    assert messages[0] == "request 0 took 0 ms" and len(messages) == 5
    assert all("@ptr" in r for r in rows(result))
    listed = client.get("/api/v1/queries").json()["queries"]
    assert listed[0]["query_id"] == query_id and listed[0]["status"] == "Complete"
    stop = client.delete(f"/api/v1/queries/{query_id}")
    assert stop.status_code == 400  # already finished


@pytest.mark.parametrize(
    ("query", "line", "column"),
    [
        ("fields @timestamp |", 1, 20),
        ("filter level = 'error'\n| stats count(*) by", 2, 20),
        ("fields a | frobnicate b", 1, 12),
    ],
)
def test_syntax_errors_point_at_line_and_column(
    client: httpx.Client, query: str, line: int, column: int
) -> None:
    seed(client, "app", 3)
    response = start(client, query, ["app"])
    assert response.status_code == 400
    error = response.json()["error"]
    assert error["code"] == "MalformedQueryException"
    assert (error["details"]["line"], error["details"]["column"]) == (line, column)
    assert "queryCompileError" in error["details"]


def test_unknown_group_and_bad_ranges(client: httpx.Client) -> None:
    missing = start(client, "fields @message", ["nope"])
    assert missing.status_code == 404
    assert missing.json()["error"]["code"] == "ResourceNotFoundException"
    seed(client, "app", 3)
    backwards = start(client, "fields @message", ["app"], start="now", end="-1h")
    assert backwards.status_code == 400


def test_groups_are_authorized_per_query(server: RunningServer, client: httpx.Client) -> None:
    seed(client, "prod-api", 5)
    seed(client, "dev-api", 5)
    policy = {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": ["logs:StartQuery", "logs:GetQueryResults"], "Resource": "arn:watchkeep:logs:*:*:log-group:dev-*"}]}  # fmt: skip
    client.put("/api/v1/iam/users/dev").raise_for_status()
    client.put("/api/v1/iam/policies/dev-query", json=policy).raise_for_status()
    client.put("/api/v1/iam/users/dev/policies/dev-query").raise_for_status()
    key = client.post("/api/v1/iam/users/dev/keys").json()["key"]
    with httpx.Client(base_url=server.url, headers={"Authorization": f"Bearer {key}"}) as dev:
        assert start(dev, "stats count(*)", ["dev-api"]).status_code == 200
        denied = start(dev, "stats count(*)", ["dev-api", "prod-api"])
        assert denied.status_code == 403
        assert "log-group:prod-api" in denied.json()["error"]["message"]
        # Results of someone else's query on a group they may not read stay hidden.
        prod_query = start(client, "stats count(*)", ["prod-api"]).json()["query_id"]
        assert dev.get(f"/api/v1/queries/{prod_query}").status_code == 403
    _segments, tail = server.app.state.services.trail.snapshot()
    records = [
        json.loads(e.record_json) for e in tail if e.projection["event_name"] == "StartQuery"
    ]
    denied_record = [r for r in records if r.get("errorCode") == "AccessDeniedException"][0]
    assert [r["ARN"].rsplit(":", 1)[1] for r in denied_record["resources"]] == [
        "dev-api",
        "prod-api",
    ]
    assert denied_record["requestParameters"]["query"] == "stats count(*)"


def test_saved_query_definitions(client: httpx.Client) -> None:
    saved = client.put("/api/v1/query-definitions/errors", json={"query": "filter level = 'error'", "log_groups": ["app"]})  # fmt: skip
    assert saved.status_code == 201
    again = client.put("/api/v1/query-definitions/errors", json={"query": "filter level = 'warn'"})
    assert again.status_code == 200
    listed = client.get("/api/v1/query-definitions").json()["query_definitions"]
    assert [(d["name"], d["query"]) for d in listed] == [("errors", "filter level = 'warn'")]
    broken = client.put("/api/v1/query-definitions/broken", json={"query": "filter ("})
    assert broken.json()["error"]["code"] == "MalformedQueryException"
    assert client.delete("/api/v1/query-definitions/errors").status_code == 204
    assert client.delete("/api/v1/query-definitions/errors").status_code == 404


@pytest.mark.parametrize(
    ("name", "groups", "fragment"),
    [
        ("%00", ["app"], "invalid query definition name"),
        ("%20", ["app"], "invalid query definition name"),
        ("x" * 256, ["app"], "invalid query definition name"),
        ("ok", ["bad name"], "invalid log group name"),
        ("ok", [""], "missing log group name"),
        ("ok", ["app", "app"], "log group 'app' is listed twice"),
        ("ok", [f"g{i}" for i in range(51)], "takes at most 50"),
    ],
    ids=["nul", "blank", "long", "bad-group", "empty-group", "twice", "too-many"],
)
def test_a_query_definition_needs_a_name_and_groups_that_could_exist(
    client: httpx.Client, name: str, groups: list[str], fragment: str
) -> None:
    response = client.put(
        f"/api/v1/query-definitions/{name}", json={"query": "fields @message", "log_groups": groups}
    )
    assert response.status_code == 400, response.text
    assert fragment in response.json()["error"]["message"]
    assert client.get("/api/v1/query-definitions").json()["query_definitions"] == []


def test_cli_query_prints_a_table_json_and_csv(server: RunningServer, client: httpx.Client) -> None:
    seed(client, "app")

    def run(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [*watchkeep_command(), "query", *args, "--server", server.url, "--key", ADMIN_KEY],
            capture_output=True, text=True, timeout=60, env={"COLUMNS": "150", "PATH": "/usr/bin:/bin"},
        )  # fmt: skip

    query = "stats count(*) as n by level | sort level asc"
    table = run("-g", "app", "--since", "1h", query)
    assert table.returncode == 0, table.stderr
    assert "error" in table.stdout and "20" in table.stdout
    assert "60 records" in table.stderr
    as_json = json.loads(run("-g", "app", "--since", "1h", "--format", "json", query).stdout)
    assert as_json[0] == {"level": "error", "n": "20"}
    as_csv = run("-g", "app", "--since", "1h", "--format", "csv", query).stdout.splitlines()
    assert as_csv[:2] == ["level,n", "error,20"]
    bad = run("-g", "app", "--since", "1h", "stats count(*) by")
    assert (
        bad.returncode == 1
        and bad.stderr.startswith("error: ")
        and "MalformedQueryException" in bad.stderr
    )
