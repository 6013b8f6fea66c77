"""Log groups and retention against a real server: PUT group is an idempotent "ensure exists",
retention has CloudWatch's PutRetentionPolicy / DeleteRetentionPolicy, each call is authorized
and recorded as what it did, and retention runs (scheduled or called) say what they dropped."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from typer.testing import CliRunner

from server.cli import app as main_app
from server.cli_logs import logs_app
from tests.api.test_audit_trail import records, user_with_key
from tests.conftest import ADMIN_KEY, RunningServer, all_events, make_settings

NDJSON = {"Content-Type": "application/x-ndjson"}
GROUPS = "/api/v1/logs/groups"
POLICIES = "/api/v1/logs/retention-policies"
OLD_MS = 1_000_000_000_000  # 2001-09-09T01:46:40Z
OLD_HOUR_MS = 999_997_200_000


@pytest.fixture
def running(tmp_path: Path) -> Iterator[RunningServer]:
    server = RunningServer(make_settings(tmp_path / "data", audit_lookup_rate=0)).start()
    yield server
    server.stop()


@pytest.fixture
def root(running: RunningServer) -> Iterator[httpx.Client]:
    with httpx.Client(
        base_url=running.url, headers={"Authorization": f"Bearer {ADMIN_KEY}"}, timeout=30
    ) as c:
        yield c


def retention_of(client: httpx.Client, group: str) -> Any:
    response = client.get(f"{GROUPS}/{group}")
    assert response.status_code == 200, response.text
    return response.json()["retention_days"]


def record_of(server: RunningServer, response: httpx.Response) -> dict[str, Any]:
    request_id = response.headers["x-amzn-requestid"]
    (record,) = [r for r in records(server) if r["requestID"] == request_id]
    return record


def test_put_group_ensures_it_exists_and_changes_nothing_else(root: httpx.Client) -> None:
    created = root.put(f"{GROUPS}/team/api", json={"retention_days": 7})
    assert created.status_code == 201 and created.json()["retention_days"] == 7
    for kwargs in ({}, {"content": b""}, {"json": {}}):
        again = root.put(f"{GROUPS}/team/api", **kwargs)
        assert again.status_code == 200, (kwargs, again.text)
        assert again.json()["retention_days"] == 7
    assert retention_of(root, "team/api") == 7
    # The first API's way to change retention keeps working; null removes the policy.
    assert root.put(f"{GROUPS}/team/api", json={"retention_days": 30}).json()["retention_days"]
    assert retention_of(root, "team/api") == 30
    assert root.put(f"{GROUPS}/team/api", json={"retention_days": None}).status_code == 200
    assert retention_of(root, "team/api") is None
    fresh = root.put(f"{GROUPS}/plain")
    assert fresh.status_code == 201 and fresh.json()["retention_days"] is None


def test_retention_policy_routes(root: httpx.Client) -> None:
    root.put(f"{GROUPS}/svc/a/retention")  # a group name may end in /retention
    put = root.put(f"{POLICIES}/svc/a/retention", json={"retention_days": 14})
    assert put.status_code == 200, put.text
    assert put.json()["name"] == "svc/a/retention" and put.json()["retention_days"] == 14
    assert root.delete(f"{POLICIES}/svc/a/retention").json()["retention_days"] is None
    assert retention_of(root, "svc/a/retention") is None
    missing = root.put(f"{POLICIES}/nope", json={"retention_days": 14})
    assert missing.status_code == 404
    assert missing.json()["error"]["code"] == "ResourceNotFoundException"
    assert root.delete(f"{POLICIES}/nope").status_code == 404


BAD_BODIES = [
    # (name, path, body, message fragment)
    (
        "malformed-json",
        f"{GROUPS}/g",
        b'{"retention_days": 7,,}',
        "the body is not valid JSON: unexpected character, expected a string key at line 1, "
        'column 22; send an object such as {"retention_days": 30}',
    ),
    (
        "malformed-json-line-2",
        f"{GROUPS}/g",
        b'{\n  "retention_days": x\n}',
        "at line 2, column 21",
    ),
    ("bad-utf8", f"{GROUPS}/g", b'{"retention_days": "\xff"}', "invalid byte at offset 20"),
    ("not-an-object", f"{GROUPS}/g", b"[7]", "must be a JSON object such as"),
    ("unknown-field", f"{GROUPS}/g", b'{"retention": 7}', "unknown field 'retention'"),
    ("bad-days", f"{GROUPS}/g", b'{"retention_days": 2}', "retention_days 2 is not one of 1, 3"),
    ("days-as-string", f"{GROUPS}/g", b'{"retention_days": "7"}', 'retention_days "7" is not'),
    ("days-as-bool", f"{GROUPS}/g", b'{"retention_days": true}', "retention_days true is not"),
    ("policy-empty", f"{POLICIES}/g", b"", "the body is empty"),
    ("policy-null", f"{POLICIES}/g", b'{"retention_days": null}', "DELETE /api/v1/logs/"),
    ("policy-malformed", f"{POLICIES}/g", b"{", "the body is not valid JSON"),
]


@pytest.mark.parametrize(
    ("path", "body", "fragment"), [c[1:] for c in BAD_BODIES], ids=[c[0] for c in BAD_BODIES]
)
def test_bad_bodies_get_a_precise_400(
    root: httpx.Client, path: str, body: bytes, fragment: str
) -> None:
    root.put(f"{GROUPS}/g", json={"retention_days": 7})
    response = root.put(path, content=body, headers={"Content-Type": "application/json"})
    assert response.status_code == 400, response.text
    error = response.json()["error"]
    assert error["code"] == "InvalidParameterException"
    assert fragment in error["message"]
    assert retention_of(root, "g") == 7


def test_each_call_is_recorded_and_authorized_as_what_it_does(
    running: RunningServer, root: httpx.Client
) -> None:
    calls = [
        (root.put(f"{GROUPS}/g", json={"retention_days": 7}), "CreateLogGroup", 201),
        (root.put(f"{GROUPS}/g"), "CreateLogGroup", 200),
        (root.put(f"{GROUPS}/g", json={"retention_days": 30}), "PutRetentionPolicy", 200),
        (root.put(f"{POLICIES}/g", json={"retention_days": 60}), "PutRetentionPolicy", 200),
        (root.delete(f"{POLICIES}/g"), "DeleteRetentionPolicy", 200),
    ]
    for response, name, status in calls:
        assert response.status_code == status, (name, response.text)
        record = record_of(running, response)
        assert record["eventName"] == name
        assert record["additionalEventData"]["watchkeep"]["authorization"]["action"] == (
            f"logs:{name}"
        )
        assert [r["ARN"] for r in record["resources"]] == [
            "arn:watchkeep:logs:local:000000000000:log-group:g"
        ]


def test_creating_does_not_allow_changing_retention(
    running: RunningServer, root: httpx.Client
) -> None:
    policy = {
        "Version": "2012-10-17",
        "Statement": [
            {"Effect": "Allow", "Action": ["logs:CreateLogGroup"], "Resource": "*"},
        ],
    }
    root.put(f"{GROUPS}/g", json={"retention_days": 7})
    key = user_with_key(root, "agent", policy)
    with httpx.Client(
        base_url=running.url, headers={"Authorization": f"Bearer {key}"}, timeout=30
    ) as agent:
        assert agent.put(f"{GROUPS}/g").status_code == 200  # ensure-exists needs no more
        assert agent.put(f"{GROUPS}/new", json={"retention_days": 1}).status_code == 201
        denied = agent.put(f"{GROUPS}/g", json={"retention_days": 1})
        assert denied.status_code == 403
        assert "logs:PutRetentionPolicy" in denied.json()["error"]["message"]
        assert record_of(running, denied)["eventName"] == "PutRetentionPolicy"
        assert agent.put(f"{POLICIES}/g", json={"retention_days": 1}).status_code == 403
    assert retention_of(root, "g") == 7


def _ingest_old_and_new(client: httpx.Client, server: RunningServer, group: str) -> None:
    client.put(f"{GROUPS}/{group}", json={"retention_days": 1})
    body = b'{"timestamp":%d,"k":"old"}\n{"timestamp":%d,"k":"old2"}\n{"k":"now"}\n' % (
        OLD_MS,
        OLD_MS + 1,
    )
    response = client.post(
        "/api/v1/logs/events", params={"group": group}, content=body, headers=NDJSON
    )
    assert response.json()["accepted"] == 3
    server.store.flush(force=True)


def test_retention_api_call_records_what_it_dropped(
    running: RunningServer, root: httpx.Client
) -> None:
    _ingest_old_and_new(root, running, "old")
    dry = root.post("/api/v1/logs/retention", params={"dry_run": True})
    applied = root.post("/api/v1/logs/retention")
    expected = [{"log_group": "old", "hour_ms": OLD_HOUR_MS}]
    assert dry.json()["expired"] == applied.json()["expired"] == expected
    assert [e["message"] for e in all_events(root, "old")] == ['{"k":"now"}']
    for response, dry_run in ((dry, True), (applied, False)):
        record = record_of(running, response)
        assert record["eventName"] == "ApplyRetention"
        assert record["responseElements"] == {"dry_run": dry_run, "expired": expected}
        summary = record["additionalEventData"]["watchkeep"]["summary"]
        assert summary["partitions"] == 1
        assert summary["logGroups"] == [
            {
                "logGroup": "old",
                "partitions": 1,
                "firstHour": "2001-09-09T01:00Z",
                "lastHour": "2001-09-09T01:00Z",
                "segments": 1,
                "rows": 2,
                "bytes": summary["logGroups"][0]["bytes"],
            }
        ]
    nothing = root.post("/api/v1/logs/retention")
    assert nothing.json()["expired"] == []
    assert "summary" not in record_of(running, nothing)["additionalEventData"]["watchkeep"]


def test_scheduled_retention_writes_a_service_event(tmp_path: Path) -> None:
    server = RunningServer(
        make_settings(tmp_path / "data", audit_lookup_rate=0, retention_interval_s=0.3)
    ).start()
    try:
        with httpx.Client(
            base_url=server.url, headers={"Authorization": f"Bearer {ADMIN_KEY}"}, timeout=30
        ) as client:
            _ingest_old_and_new(client, server, "sched/old")
            deadline = time.monotonic() + 20
            found: list[dict[str, Any]] = []
            while not found and time.monotonic() < deadline:
                time.sleep(0.2)
                found = [
                    r
                    for r in records(server)
                    if r["eventName"] == "ApplyRetention" and r["eventType"] == "AwsServiceEvent"
                ]
            assert [e["message"] for e in all_events(client, "sched/old")] == ['{"k":"now"}']
    finally:
        server.stop()
    (record,) = found  # later runs that drop nothing write nothing
    assert record["eventSource"] == "logs.watchkeep"
    assert record["userIdentity"] == {"type": "AWSService", "invokedBy": "scheduler.watchkeep"}
    assert [r["ARN"] for r in record["resources"]] == [
        "arn:watchkeep:logs:local:000000000000:log-group:sched/old"
    ]
    details = record["serviceEventDetails"]
    assert details["trigger"] == "schedule" and details["partitionCount"] == 1
    (partition,) = details["partitions"]
    assert partition["logGroup"] == "sched/old"
    assert partition["hour"] == "2001-09-09T01:00Z" and partition["hourMs"] == OLD_HOUR_MS
    assert partition["segments"] == 1 and partition["rows"] == 2 and partition["bytes"] > 0


def test_cli_logs_retention(running: RunningServer, root: httpx.Client) -> None:
    _ingest_old_and_new(root, running, "old")
    runner = CliRunner()
    common = ["--server", running.url, "--key", ADMIN_KEY]
    dry = runner.invoke(logs_app, ["retention", "--dry-run", *common])
    assert dry.exit_code == 0, dry.output
    assert "2001-09-09T01:00Z" in dry.output
    assert "would drop 1 partition(s) of 1 log group(s)" in dry.output
    assert len(all_events(root, "old")) == 3
    applied = runner.invoke(logs_app, ["retention", "--format", "json", *common])
    assert applied.exit_code == 0, applied.output
    assert json.loads(applied.output)["expired"] == [{"log_group": "old", "hour_ms": OLD_HOUR_MS}]
    assert len(all_events(root, "old")) == 1
    again = runner.invoke(logs_app, ["retention", *common])
    assert again.exit_code == 0 and "nothing to drop" in again.output
    refused = runner.invoke(logs_app, ["retention", "--server", running.url, "--key", "x:y"])
    assert refused.exit_code == 1 and "error:" in refused.output
    wired = runner.invoke(main_app, ["logs", "retention", "--dry-run", *common])
    assert wired.exit_code == 0 and "nothing to drop" in wired.output
