"""The audit trail against a real server: one record per request, allowed or denied,
authenticated or not, with the right identity, action, resources and outcome; no secrets."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from starlette.routing import Route

from audit.routes import router as audit_router
from core.operations import RequestTarget, operation_of
from iam.routes import router as iam_router
from ingest.routes import router as logs_router
from tests.conftest import ADMIN_KEY, RunningServer, make_settings

NDJSON = {"Content-Type": "application/x-ndjson"}
POLICY = {
    "Version": "2012-10-17",
    "Statement": [{"Effect": "Allow", "Action": "*", "Resource": "*"}],
}
SAMPLE = {
    "name": "cov-target",
    "key_id": "WKIAAAAAAAAAAAAAAAAA",
    "user": "cov-user",
    "policy": "cov-policy",
}


@pytest.fixture
def audit_server(tmp_path: Path) -> Iterator[RunningServer]:
    running = RunningServer(make_settings(tmp_path / "data", audit_lookup_rate=0)).start()
    yield running
    running.stop()


def admin(server: RunningServer) -> httpx.Client:
    return httpx.Client(
        base_url=server.url, headers={"Authorization": f"Bearer {ADMIN_KEY}"}, timeout=30
    )


def user_with_key(client: httpx.Client, name: str, policy: dict[str, Any] | None = None) -> str:
    assert client.put(f"/api/v1/iam/users/{name}").status_code == 201
    if policy is not None:
        assert client.put(f"/api/v1/iam/policies/{name}-policy", json=policy).status_code == 201
        assert client.put(f"/api/v1/iam/users/{name}/policies/{name}-policy").status_code == 204
    created = client.post(f"/api/v1/iam/users/{name}/keys")
    assert created.status_code == 201, created.text
    return str(created.json()["key"])


def records(server: RunningServer) -> list[dict[str, Any]]:
    """Every record in the trail (white-box: no lookup records are added by reading)."""
    trail = server.app.state.services.trail
    segments, unsealed = trail.snapshot()
    assert not segments
    return [json.loads(entry.record_json) for entry in unsealed]


def by_request_id(server: RunningServer) -> dict[str, list[dict[str, Any]]]:
    found: dict[str, list[dict[str, Any]]] = {}
    for record in records(server):
        found.setdefault(record["requestID"], []).append(record)
    return found


def api_routes() -> list[Route]:
    routes = [r for router in (logs_router, iam_router, audit_router) for r in router.routes]
    return [r for r in routes if isinstance(r, Route)]


def concrete(route: Route) -> tuple[str, str, dict[str, Any], dict[str, str]]:
    method = sorted(route.methods - {"HEAD"})[0]  # type: ignore[operator]
    params = {name: SAMPLE[name] for name in route.param_convertors}
    path = route.path
    for name, value in params.items():
        path = re.sub(r"\{" + name + r"(:[a-z]+)?\}", value, path)
    query = {"group": "cov-group"} if route.path.startswith("/api/v1/logs/events") else {}
    return method, path, query, params


def body_for(method: str, path: str) -> dict[str, Any]:
    if path == "/api/v1/logs/events" and method == "POST":
        return {"content": b'{"message": "hello"}\n', "headers": NDJSON}
    if path.startswith("/api/v1/iam/policies/") and method == "PUT":
        return {"json": POLICY}
    if path.startswith("/api/v1/iam/keys/") and method == "PATCH":
        return {"json": {"status": "Active"}}
    return {}


def test_every_route_allowed_and_denied_gives_exactly_one_record(
    audit_server: RunningServer,
) -> None:
    with admin(audit_server) as root:
        nobody = user_with_key(root, "nobody")
        sent: list[tuple[str, Route, str, str, dict[str, Any]]] = []
        with httpx.Client(
            base_url=audit_server.url, headers={"Authorization": f"Bearer {nobody}"}, timeout=30
        ) as denied:
            for route in api_routes():
                method, path, query, params = concrete(route)
                for who, client in (("denied", denied), ("allowed", root)):
                    response = client.request(
                        method, path, params=query, **body_for(method, route.path)
                    )
                    if who == "denied":
                        assert response.status_code == 403, (path, response.text)
                    request_id = response.headers["x-amzn-requestid"]
                    sent.append((who, route, request_id, str(response.status_code), params | query))

    found = by_request_id(audit_server)
    for who, route, request_id, status, params in sent:
        op = operation_of(route.endpoint)
        assert op is not None
        matches = found.get(request_id, [])
        assert len(matches) == 1, (who, route.path, len(matches))
        record = matches[0]
        watchkeep = record["additionalEventData"]["watchkeep"]
        assert record["eventName"] == op.name
        assert record["readOnly"] is op.read_only
        assert record["managementEvent"] is op.management
        assert watchkeep["httpStatus"] == int(status)
        assert watchkeep["authorization"]["action"] == op.action
        target = RequestTarget(
            path_params=params,
            query={k: str(v) for k, v in params.items()},
            query_lists={k: [str(v)] for k, v in params.items()},
            region="local",
            account_id="000000000000",
        )
        expected_arns = op.resources(target)
        assert [r["ARN"] for r in record.get("resources", [])] == expected_arns
        if who == "denied":
            assert record["userIdentity"]["type"] == "IAMUser"
            assert record["userIdentity"]["userName"] == "nobody"
            assert record["errorCode"] == "AccessDeniedException"
            assert watchkeep["authorization"]["decision"] == "ImplicitDeny"
            assert record["responseElements"] is None
        else:
            assert record["userIdentity"]["type"] == "Root"
            assert record["userIdentity"]["accessKeyId"] == ADMIN_KEY.split(":")[0]
            assert watchkeep["authorization"]["decision"] == "Allow"
            assert ("errorCode" in record) == (int(status) >= 400)


AUTH_FAILURES = [
    # (name, Authorization header or None, errorCode, accessKeyId recorded?)
    ("missing", None, "MissingAuthenticationTokenException", None),
    ("not bearer", "Basic Zm9vOmJhcg==", "UnrecognizedClientException", None),
    ("malformed id", "Bearer nonsense:wks_" + "a" * 40, "UnrecognizedClientException", None),
    (
        "unknown id",
        "Bearer WKIAAAAAAAAAAAAAAAAA:wks_" + "b" * 40,
        "UnrecognizedClientException",
        "WKIAAAAAAAAAAAAAAAAA",
    ),
]


def test_failed_authentication_of_every_kind_is_recorded_without_secrets(
    audit_server: RunningServer,
) -> None:
    with admin(audit_server) as root:
        good = user_with_key(root, "alice", POLICY)
        key_id, secret = good.split(":")
        wrong = "wks_" + "c" * 40
        cases = [
            *AUTH_FAILURES,
            ("wrong secret", f"Bearer {key_id}:{wrong}", "InvalidSignatureException", key_id),
        ]
        sent = []
        for name, header, code, recorded_id in cases:
            headers = {} if header is None else {"Authorization": header}
            response = httpx.get(
                f"{audit_server.url}/api/v1/logs/groups", headers=headers, timeout=30
            )
            assert response.status_code == 401, (name, response.text)
            assert response.json()["error"]["code"] == code
            sent.append((name, response.headers["x-amzn-requestid"], code, recorded_id))
        assert (
            root.patch(f"/api/v1/iam/keys/{key_id}", json={"status": "Inactive"}).status_code == 200
        )
        inactive = httpx.get(
            f"{audit_server.url}/api/v1/logs/groups", headers={"Authorization": f"Bearer {good}"}
        )
        assert inactive.status_code == 401
        assert "key_status" not in inactive.text  # the status is for the trail only

    found = by_request_id(audit_server)
    for name, request_id, code, recorded_id in sent:
        (record,) = found[request_id]
        assert record["errorCode"] == code, name
        assert record["userIdentity"]["type"] == "Unknown"
        assert record["userIdentity"].get("accessKeyId") == recorded_id, name
        assert record["readOnly"] is True  # DescribeLogGroups, from the operation table
        assert (
            record["additionalEventData"]["watchkeep"]["authorization"]["decision"]
            == "NotEvaluated"
        )
    (record,) = found[inactive.headers["x-amzn-requestid"]]
    assert record["additionalEventData"]["watchkeep"]["keyStatus"] == "Inactive"
    text = json.dumps(records(audit_server))
    assert secret not in text and wrong not in text


def test_no_secret_that_was_sent_is_anywhere_in_the_data_directory(tmp_path: Path) -> None:
    server = RunningServer(make_settings(tmp_path / "data")).start()
    secrets: list[str] = [ADMIN_KEY.split(":")[1]]
    try:
        with admin(server) as root:
            key = user_with_key(root, "bob", POLICY)
            secrets.append(key.split(":")[1])
            bob = {"Authorization": f"Bearer {key}"}
            httpx.post(
                f"{server.url}/api/v1/logs/events",
                params={"group": "app"},
                content=b'{"message":"hi"}\n',
                headers={**bob, **NDJSON},
            ).raise_for_status()
            wrong = "wks_" + "Z" * 40
            secrets.append(wrong)
            httpx.get(
                f"{server.url}/api/v1/logs/groups",
                headers={"Authorization": f"Bearer {key.split(':')[0]}:{wrong}"},
            )
            # A secret-looking value in parameters and in the user agent is hidden too.
            leaked = "wks_" + "Q" * 40
            secrets.append(leaked)
            httpx.get(
                f"{server.url}/api/v1/logs/groups",
                params={"prefix": leaked, "api_token": "tok-123-secret"},
                headers={**bob, "User-Agent": f"agent/1.0 {leaked}"},
            )
            secrets.append("tok-123-secret")
            assert root.get("/api/v1/audit/events").status_code == 200
        server.app.state.services.trail.seal()
    finally:
        server.stop()
    for path in (tmp_path / "data").rglob("*"):
        if path.is_file():
            data = path.read_bytes()
            for secret in secrets:
                assert secret.encode() not in data, f"{secret[:8]}… found in {path}"


def test_records_carry_redaction_paths_and_summaries(audit_server: RunningServer) -> None:
    with admin(audit_server) as root:
        created = root.post("/api/v1/iam/users/carol/keys")
        assert created.status_code == 404  # no such user: still one record
        root.put("/api/v1/iam/users/carol")
        created = root.post("/api/v1/iam/users/carol/keys")
        ingest = root.post(
            "/api/v1/logs/events",
            params={"group": "app"},
            content=b'{"message":"a"}\n{"message":"bb"}\n',
            headers=NDJSON,
        )
    found = by_request_id(audit_server)
    (key_record,) = found[created.headers["x-amzn-requestid"]]
    assert key_record["responseElements"]["access_key_id"] == created.json()["access_key_id"]
    assert "secret_access_key" not in key_record["responseElements"]
    assert (
        "responseElements.secret_access_key"
        in key_record["additionalEventData"]["watchkeep"]["redactedPaths"]
    )
    (put_record,) = found[ingest.headers["x-amzn-requestid"]]
    watchkeep = put_record["additionalEventData"]["watchkeep"]
    assert watchkeep["summary"] == {"logEventBytes": 33, "logEventCount": 2}
    assert watchkeep["auditLevel"] == "Metadata"
    assert put_record["requestParameters"] is None  # data-plane write: metadata + summary
    assert put_record["eventCategory"] == "Data" and put_record["managementEvent"] is False


def test_floods_of_failed_authentication_are_summarized(tmp_path: Path) -> None:
    import pyarrow.parquet as pq

    from audit.segments import list_segments

    settings = make_settings(tmp_path / "data", audit_auth_failures_per_minute=3)
    server = RunningServer(settings).start()
    try:
        bad = {"Authorization": "Bearer WKIAAAAAAAAAAAAAAAAA:wks_" + "x" * 40}
        for _ in range(10):
            assert httpx.get(f"{server.url}/api/v1/logs/groups", headers=bad).status_code == 401
        with admin(server) as root:  # successful calls are never limited
            for _ in range(5):
                assert root.get("/api/v1/logs/groups").status_code == 200
    finally:
        server.stop()  # the shutdown writes the pending summary, then seals the trail
    rows = [
        json.loads(row["record_json"])
        for path in list_segments(settings.audit_dir)
        for row in pq.read_table(path).to_pylist()
    ]
    failures = [r for r in rows if r.get("errorCode") == "UnrecognizedClientException"]
    assert len(failures) == 3
    (summary,) = [r for r in rows if r["eventName"] == "AuthFailureSummary"]
    details = summary["serviceEventDetails"]
    assert details["suppressedCount"] == 7 and details["recordedCount"] == 3
    assert details["accessKeyIds"] == ["WKIAAAAAAAAAAAAAAAAA"]
    assert details["sourceIPAddress"] == "127.0.0.1"
    assert (
        len([r for r in rows if r["eventName"] == "DescribeLogGroups" and "errorCode" not in r])
        == 5
    )
