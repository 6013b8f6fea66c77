"""The companion audit APIs: trail status, HashAuditValue, and SQL audit queries that cannot
reach the file system."""

from __future__ import annotations

import json

import httpx
import pytest

from tests.conftest import RunningServer


def test_trail_status_reports_the_chain_head(client: httpx.Client) -> None:
    client.put("/api/v1/logs/groups/a").raise_for_status()
    status = client.get("/api/v1/audit/status").json()
    assert status["chain_head_seq"] >= 1
    assert len(status["chain_head_hash"]) == 64
    assert status["audit_degraded"] is False


def test_hash_audit_value_is_stable_and_never_records_the_value(
    server: RunningServer, client: httpx.Client
) -> None:
    first = client.post("/api/v1/audit/hash", json={"value": "alice@example.com"})
    second = client.post("/api/v1/audit/hash", json={"value": "alice@example.com"})
    other = client.post("/api/v1/audit/hash", json={"value": "bob@example.com"})
    assert first.status_code == 200, first.text
    assert first.json()["hash"] == second.json()["hash"] != other.json()["hash"]
    assert first.json()["hash"].startswith("hmac-sha256:v1:")
    _segments, tail = server.app.state.services.trail.snapshot()
    text = b"".join(e.record_json for e in tail).decode()
    assert "alice@example.com" not in text
    records = [json.loads(e.record_json) for e in tail]
    hashed = [r for r in records if r["eventName"] == "HashAuditValue"]
    assert len(hashed) == 3
    assert hashed[0]["requestParameters"] == {}
    assert hashed[0]["additionalEventData"]["watchkeep"]["redactedPaths"] == [
        "requestParameters.value"
    ]


def test_audit_query_answers_sql_over_events(client: httpx.Client) -> None:
    for name in ("a", "b", "c"):
        client.put(f"/api/v1/logs/groups/{name}").raise_for_status()
    httpx.get(f"{client.base_url}/api/v1/logs/groups")  # one unauthenticated call
    response = client.post(
        "/api/v1/audit/queries",
        json={
            "sql": "SELECT event_name, count(*) AS n FROM events "
            "GROUP BY event_name ORDER BY n DESC, event_name",
            "start": "-1h",
        },
    )
    assert response.status_code == 200, response.text
    result = response.json()
    assert result["status"] == "Complete" and result["columns"] == ["event_name", "n"]
    assert ["CreateLogGroup", 3] in result["rows"]
    assert ["DescribeLogGroups", 1] in result["rows"]
    errors = client.post(
        "/api/v1/audit/queries",
        json={"sql": "SELECT error_code, user_type FROM events WHERE error_code IS NOT NULL"},
    ).json()
    assert errors["rows"] == [["MissingAuthenticationTokenException", "Unknown"]]


@pytest.mark.parametrize(
    "sql",
    [
        "SELECT * FROM read_csv('/etc/passwd')",
        "COPY (SELECT 1) TO '/tmp/watchkeep-escape.csv'",
        "ATTACH '/tmp/watchkeep-escape.db'",
        "SET enable_external_access = true",
        "SELECT * FROM read_parquet('*.parquet')",
        "INSTALL httpfs",
        "SELECT * FROM nonexistent_table",
        "",
    ],
)
def test_audit_queries_cannot_reach_files_or_settings(client: httpx.Client, sql: str) -> None:
    response = client.post("/api/v1/audit/queries", json={"sql": sql})
    assert response.status_code == 400, response.text
    assert response.json()["error"]["code"] == "InvalidQueryStatementException"


def test_audit_query_rows_are_capped(client: httpx.Client) -> None:
    response = client.post(
        "/api/v1/audit/queries", json={"sql": "SELECT * FROM range(50)", "max_rows": 10}
    )
    body = response.json()
    assert len(body["rows"]) == 10 and body["truncated"] is True
