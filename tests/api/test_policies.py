"""Policies enforced by a real server: wildcards, NotAction, explicit deny, conditions on the
source IP (through a trusted proxy), time and user name, group policies, creation on first use."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from tests.conftest import ADMIN_KEY, RunningServer, make_settings

NDJSON = {"Content-Type": "application/x-ndjson"}
GROUP_ARN = "arn:watchkeep:logs:*:*:log-group:"


def allow(action: Any, resource: Any = "*", **extra: Any) -> dict[str, Any]:
    return {"Effect": "Allow", "Action": action, "Resource": resource, **extra}


def deny(action: Any, resource: Any = "*", **extra: Any) -> dict[str, Any]:
    return {"Effect": "Deny", "Action": action, "Resource": resource, **extra}


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningServer]:
    data = tmp_path_factory.mktemp("policies") / "data"
    running = RunningServer(make_settings(data, trusted_proxies=["127.0.0.1/32"])).start()
    with root_client(running) as root:
        for group in ("prod-api", "dev-api", "prod-web"):  # with their "default" streams
            root.post(
                "/api/v1/logs/events",
                params={"group": group},
                content=b'{"message": "seed"}\n',
                headers=NDJSON,
            ).raise_for_status()
    yield running
    running.stop()


def root_client(server: RunningServer) -> httpx.Client:
    return httpx.Client(
        base_url=server.url, headers={"Authorization": f"Bearer {ADMIN_KEY}"}, timeout=30
    )


_users = iter(range(10_000))


def key_with(server: RunningServer, *statements: dict[str, Any], via_group: bool = False) -> str:
    name = f"u{next(_users)}"
    policy = {"Version": "2012-10-17", "Statement": list(statements)}
    with root_client(server) as root:
        root.put(f"/api/v1/iam/users/{name}").raise_for_status()
        assert root.put(f"/api/v1/iam/policies/{name}", json=policy).status_code == 201
        if via_group:
            root.put(f"/api/v1/iam/groups/{name}-team").raise_for_status()
            root.put(f"/api/v1/iam/groups/{name}-team/members/{name}").raise_for_status()
            root.put(f"/api/v1/iam/groups/{name}-team/policies/{name}").raise_for_status()
        else:
            root.put(f"/api/v1/iam/users/{name}/policies/{name}").raise_for_status()
        return str(root.post(f"/api/v1/iam/users/{name}/keys").json()["key"])


def put_events(server: RunningServer, key: str, group: str, **headers: str) -> httpx.Response:
    return httpx.post(
        f"{server.url}/api/v1/logs/events",
        params={"group": group},
        content=b'{"message": "m"}\n',
        headers={"Authorization": f"Bearer {key}", **NDJSON, **headers},
    )


def read_events(server: RunningServer, key: str, group: str, **headers: str) -> httpx.Response:
    return httpx.get(
        f"{server.url}/api/v1/logs/events",
        params={"group": group},
        headers={"Authorization": f"Bearer {key}", **headers},
    )


PUT = "logs:PutLogEvents"
CASES = [
    # (name, statements, call, group, extra headers, expected status)
    ("prefix wildcard allows", [allow(PUT, GROUP_ARN + "prod-*")], "put", "prod-api", {}, 200),
    ("prefix wildcard denies others", [allow(PUT, GROUP_ARN + "prod-*")], "put", "dev-api", {}, 403),
    ("? matches one character", [allow(PUT, GROUP_ARN + "prod-ap?")], "put", "prod-api", {}, 200),
    ("? needs exactly one", [allow(PUT, GROUP_ARN + "prod-a?")], "put", "prod-api", {}, 403),
    ("action case-insensitive", [allow("LOGS:putlogevents", GROUP_ARN + "*")], "put", "dev-api", {}, 200),
    ("resource case-sensitive", [allow(PUT, GROUP_ARN + "PROD-*")], "put", "prod-api", {}, 403),
    ("service wildcard", [allow("logs:*")], "read", "dev-api", {}, 200),
    ("other action not allowed", [allow(PUT)], "read", "dev-api", {}, 403),
    ("NotAction allows the rest", [{"Effect": "Allow", "NotAction": "logs:Put*", "Resource": "*"}], "read", "dev-api", {}, 200),
    ("NotAction excludes", [{"Effect": "Allow", "NotAction": "logs:Put*", "Resource": "*"}], "put", "dev-api", {}, 403),
    ("explicit deny wins", [allow("logs:*"), deny(PUT, GROUP_ARN + "prod-*")], "put", "prod-web", {}, 403),
    ("deny elsewhere leaves allow", [allow("logs:*"), deny(PUT, GROUP_ARN + "prod-*")], "put", "dev-api", {}, 200),
    (
        "source ip in range",
        [allow("logs:*", Condition={"IpAddress": {"wk:SourceIp": "10.0.0.0/8"}})],
        "read", "dev-api", {"X-Forwarded-For": "10.1.2.3"}, 200,
    ),
    (
        "source ip out of range",
        [allow("logs:*", Condition={"IpAddress": {"wk:SourceIp": "10.0.0.0/8"}})],
        "read", "dev-api", {"X-Forwarded-For": "192.168.1.9"}, 403,
    ),
    (
        "office-only deny",
        [allow("logs:*"), deny("*", Condition={"NotIpAddress": {"wk:SourceIp": ["10.0.0.0/8"]}})],
        "read", "dev-api", {"X-Forwarded-For": "203.0.113.7"}, 403,
    ),
    (
        "spoofed hop before a trusted proxy is ignored",
        [allow("logs:*", Condition={"IpAddress": {"wk:SourceIp": "10.0.0.0/8"}})],
        "read", "dev-api", {"X-Forwarded-For": "10.9.9.9, 192.168.1.9"}, 403,
    ),
    (
        "allowed until a date in the past",
        [allow("logs:*", Condition={"DateLessThan": {"wk:CurrentTime": "2020-01-01T00:00:00Z"}})],
        "read", "dev-api", {}, 403,
    ),
    (
        "allowed after a date in the past",
        [allow("logs:*", Condition={"DateGreaterThan": {"wk:CurrentTime": "2020-01-01T00:00:00Z"}})],
        "read", "dev-api", {}, 200,
    ),
    (
        "insecure transport denied",
        [allow("logs:*"), deny("*", Condition={"Bool": {"wk:SecureTransport": "false"}})],
        "read", "dev-api", {}, 403,
    ),
    (
        "user name condition",
        [allow("logs:*", Condition={"StringLike": {"wk:username": "u*"}})],
        "read", "dev-api", {}, 200,
    ),
]  # fmt: skip


@pytest.mark.parametrize(
    ("statements", "call", "group", "headers", "status"),
    [case[1:] for case in CASES],
    ids=[case[0] for case in CASES],
)
def test_policy_cases(
    server: RunningServer,
    statements: list[dict[str, Any]],
    call: str,
    group: str,
    headers: dict[str, str],
    status: int,
) -> None:
    key = key_with(server, *statements)
    response = (put_events if call == "put" else read_events)(server, key, group, **headers)
    assert response.status_code == status, response.text
    if status == 403:
        error = response.json()["error"]
        assert error["code"] == "AccessDeniedException"
        assert "is not authorized to perform" in error["message"]
        assert "matched" not in json.dumps(error)  # policy names stay in the trail


def test_group_policies_apply_to_members(server: RunningServer) -> None:
    key = key_with(server, allow("logs:FilterLogEvents"), via_group=True)
    assert read_events(server, key, "dev-api").status_code == 200
    assert put_events(server, key, "dev-api").status_code == 403


def test_creating_a_group_on_first_use_needs_create_permission(server: RunningServer) -> None:
    only_put = key_with(server, allow(PUT, GROUP_ARN + "*"))
    response = put_events(server, only_put, "brand-new")
    assert response.status_code == 403
    assert "logs:CreateLogGroup" in response.json()["error"]["message"]
    assert put_events(server, only_put, "dev-api").status_code == 200  # exists: fine
    new_stream = httpx.post(
        f"{server.url}/api/v1/logs/events",
        params={"group": "dev-api", "stream": "other"},
        content=b'{"message": "m"}\n',
        headers={"Authorization": f"Bearer {only_put}", **NDJSON},
    )
    assert new_stream.status_code == 403
    assert "logs:CreateLogStream" in new_stream.json()["error"]["message"]
    creator = key_with(server, allow(["logs:PutLogEvents", "logs:CreateLog*"], GROUP_ARN + "*"))
    assert put_events(server, creator, "brand-new").status_code == 200


def test_explicit_deny_is_recorded_with_the_matching_statement(server: RunningServer) -> None:
    key = key_with(
        server,
        allow("logs:*"),
        {**deny("logs:DeleteLogGroup", GROUP_ARN + "prod-*"), "Sid": "NoProdDeletes"},
    )
    response = httpx.delete(
        f"{server.url}/api/v1/logs/groups/prod-api", headers={"Authorization": f"Bearer {key}"}
    )
    assert response.status_code == 403
    assert response.json()["error"]["message"].endswith(
        "with an explicit deny in an identity-based policy"
    )
    request_id = response.headers["x-amzn-requestid"]
    _segments, tail = server.app.state.services.trail.snapshot()
    (record,) = [
        json.loads(e.record_json)
        for e in tail
        if json.loads(e.record_json)["requestID"] == request_id
    ]
    authorization = record["additionalEventData"]["watchkeep"]["authorization"]
    assert authorization["decision"] == "ExplicitDeny"
    assert authorization["matchedSid"] == "NoProdDeletes"
    assert record["sourceIPAddress"] == "127.0.0.1"


@pytest.mark.parametrize(
    ("document", "fragment"),
    [
        (b"{not json", "JSON"),
        (json.dumps({"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "*"}]}).encode(), "Resource"),
        (json.dumps({"Version": "2012-10-17", "Statement": [allow("*", Bogus=1)]}).encode(), "Bogus"),
        (
            json.dumps({"Version": "2012-10-17", "Statement": [allow("*", Condition={"IpAddress": {"wk:SourceIp": "10.0.0.300/8"}})]}).encode(),
            "10.0.0.300",
        ),
    ],
)  # fmt: skip
def test_malformed_policies_are_refused_when_stored(
    server: RunningServer, document: bytes, fragment: str
) -> None:
    with root_client(server) as root:
        response = root.put("/api/v1/iam/policies/bad", content=document)
        assert response.status_code == 400
        error = response.json()["error"]
        assert error["code"] == "MalformedPolicyDocumentException"
        assert fragment in error["message"]
        assert root.get("/api/v1/iam/policies/bad").status_code == 404


@pytest.mark.parametrize(
    ("method", "path", "body"),
    [
        ("POST", "/api/v1/metrics/data", b"{bad"),
        ("POST", "/api/v1/metrics/data", b'{"namespace": 5}'),
        ("POST", "/api/v1/queries", b"{bad"),
        ("PUT", "/api/v1/query-definitions/x", b"{bad"),
        ("GET", "/api/v1/queries/no-such-query", b""),
    ],
)
def test_a_caller_no_policy_allows_is_refused_before_its_body_is_read(
    server: RunningServer, method: str, path: str, body: bytes
) -> None:
    """Operations whose targets are named in the body still authorize first: a caller who may
    never perform the action learns nothing from validation errors or lookups."""
    key = key_with(server, allow("logs:DescribeLogGroups"))
    response = httpx.request(
        method,
        f"{server.url}{path}",
        content=body,
        headers={"Authorization": f"Bearer {key}", "Content-Type": "application/json"},
    )
    assert response.status_code == 403, response.text
    assert "because no identity-based policy allows" in response.json()["error"]["message"]


def test_a_single_valued_parameter_given_twice_is_refused(server: RunningServer) -> None:
    """The handler would use the last value while the gate authorized (and the audit trail
    named) every one, so a write could be audited against a group it never touched."""
    key = key_with(server, allow(PUT, GROUP_ARN + "*"), allow("logs:CreateLog*", GROUP_ARN + "*"))
    response = httpx.post(
        f"{server.url}/api/v1/logs/events?group=dev-api&group=prod-api",
        content=b'{"message": "m"}\n',
        headers={"Authorization": f"Bearer {key}", **NDJSON},
    )
    assert response.status_code == 400, response.text
    assert response.json()["error"]["message"] == (
        "the query parameter 'group' is given 2 times; it takes one"
    )
    with root_client(server) as root:
        dry = root.post("/api/v1/logs/retention?dry_run=true&dry_run=false")
        assert dry.status_code == 400, dry.text
        both = root.get("/api/v1/logs/events?group=dev-api&group=prod-api&limit=1")
        assert both.status_code == 200, both.text  # FilterLogEvents takes several groups
