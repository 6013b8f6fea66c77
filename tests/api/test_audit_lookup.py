"""LookupEvents over a real server: attributes, validation errors, pages that never overlap or
skip, even while new records arrive between pages."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.conftest import ADMIN_KEY, RunningServer, make_settings

NDJSON = {"Content-Type": "application/x-ndjson"}
ADMIN_KEY_ID = ADMIN_KEY.split(":")[0]


@pytest.fixture
def lookup_server(tmp_path: Path) -> Iterator[RunningServer]:
    # Small segments, so lookups read sealed Parquet and the in-memory tail together.
    settings = make_settings(tmp_path / "data", audit_lookup_rate=0, audit_segment_max_events=7)
    running = RunningServer(settings).start()
    yield running
    running.stop()


@pytest.fixture
def root(lookup_server: RunningServer) -> Iterator[httpx.Client]:
    with httpx.Client(
        base_url=lookup_server.url, headers={"Authorization": f"Bearer {ADMIN_KEY}"}, timeout=30
    ) as client:
        yield client


def lookup(client: httpx.Client, **params: Any) -> dict[str, Any]:
    response = client.get("/api/v1/audit/events", params=params)
    assert response.status_code == 200, response.text
    return response.json()  # type: ignore[no-any-return]


def seed(client: httpx.Client) -> None:
    client.put("/api/v1/logs/groups/app-prod").raise_for_status()
    client.put("/api/v1/iam/users/alice").raise_for_status()
    client.post(
        "/api/v1/logs/events",
        params={"group": "app-prod"},
        content=b'{"message": "x"}\n',
        headers=NDJSON,
    ).raise_for_status()
    client.delete("/api/v1/logs/groups/app-prod").raise_for_status()
    httpx.get(f"{client.base_url}/api/v1/logs/groups")  # unauthenticated


@pytest.mark.parametrize(
    ("key", "value", "expected_names"),
    [
        ("EventName", "DeleteLogGroup", {"DeleteLogGroup"}),
        ("ResourceName", "app-prod", {"CreateLogGroup", "PutLogEvents", "DeleteLogGroup"}),
        (
            "ResourceName",
            "arn:watchkeep:logs:local:000000000000:log-group:app-prod",
            {"CreateLogGroup", "PutLogEvents", "DeleteLogGroup"},
        ),
        ("ResourceType", "Watchkeep::IAM::User", {"CreateUser"}),
        ("ResourceName", "alice", {"CreateUser"}),
        ("EventSource", "iam.watchkeep", {"CreateUser"}),
        ("Username", "root", {"CreateLogGroup", "CreateUser", "PutLogEvents", "DeleteLogGroup"}),
        (
            "AccessKeyId",
            "<the admin key id>",
            {"CreateLogGroup", "CreateUser", "PutLogEvents", "DeleteLogGroup"},
        ),
        ("ReadOnly", "true", {"DescribeLogGroups"}),
    ],
)
def test_lookup_attributes(
    root: httpx.Client, key: str, value: str, expected_names: set[str]
) -> None:
    seed(root)
    value = ADMIN_KEY_ID if value == "<the admin key id>" else value  # random per process
    events = lookup(root, lookup_key=key, lookup_value=value)["events"]
    assert {e["event_name"] for e in events} == expected_names
    for event in events:
        record = json.loads(event["cloudtrail_event"])
        assert record["eventID"] == event["event_id"]
        assert event["read_only"] in ("true", "false")


def test_lookup_by_event_id_returns_the_stored_bytes(
    root: httpx.Client, lookup_server: RunningServer
) -> None:
    seed(root)
    newest = lookup(root, max_results=1)["events"][0]
    (found,) = lookup(root, lookup_key="EventId", lookup_value=newest["event_id"])["events"]
    _segments, unsealed = lookup_server.app.state.services.trail.snapshot()
    stored = {e.record_json.decode() for e in unsealed}
    segments_text = found["cloudtrail_event"]
    assert segments_text == newest["cloudtrail_event"]
    # CloudTrailEvent is the stored record byte for byte (here: sealed or in the tail).
    assert segments_text in stored or json.loads(segments_text)["eventID"] == newest["event_id"]


@pytest.mark.parametrize(
    ("params", "code"),
    [
        ({"lookup_key": "Nope", "lookup_value": "x"}, "InvalidLookupAttributesException"),
        ({"lookup_key": "EventName"}, "InvalidLookupAttributesException"),
        ({"lookup_key": "EventName", "lookup_value": ""}, "InvalidLookupAttributesException"),
        (
            {"lookup_key": "EventName", "lookup_value": "_" * 1001},
            "InvalidLookupAttributesException",
        ),
        ({"lookup_key": "ReadOnly", "lookup_value": "yes"}, "InvalidLookupAttributesException"),
        ({"max_results": 0}, "InvalidMaxResultsException"),
        ({"max_results": 51}, "InvalidMaxResultsException"),
        (
            {"start": "2026-01-02T00:00:00Z", "end": "2026-01-01T00:00:00Z"},
            "InvalidTimeRangeException",
        ),
        ({"start": "yesterday-ish"}, "InvalidTimeRangeException"),
        ({"event_category": "management"}, "InvalidEventCategoryException"),
        ({"next_token": "abc.def"}, "InvalidNextTokenException"),
    ],
)
def test_lookup_validation_errors(root: httpx.Client, params: dict[str, Any], code: str) -> None:
    response = root.get("/api/v1/audit/events", params=params)
    assert response.status_code == 400, response.text
    assert response.json()["error"]["code"] == code


def test_insight_category_is_empty(root: httpx.Client) -> None:
    seed(root)
    assert lookup(root, event_category="insight") == {"events": [], "next_token": None}


def test_token_reused_with_other_parameters_is_refused(root: httpx.Client) -> None:
    seed(root)
    token = lookup(root, max_results=2)["next_token"]
    assert token
    response = root.get("/api/v1/audit/events", params={"max_results": 3, "next_token": token})
    assert response.json()["error"]["code"] == "InvalidNextTokenException"
    forged = token[:-2] + ("AA" if not token.endswith("AA") else "BB")
    response = root.get("/api/v1/audit/events", params={"max_results": 2, "next_token": forged})
    assert response.json()["error"]["code"] == "InvalidNextTokenException"


def test_pages_never_overlap_or_skip_while_records_arrive(root: httpx.Client) -> None:
    for n in range(30):
        root.put(f"/api/v1/logs/groups/g{n}").raise_for_status()
    end = "now"
    seen: list[str] = []
    order: list[tuple[str, int]] = []
    token = None
    while True:
        params: dict[str, Any] = {"lookup_key": "EventName", "lookup_value": "CreateLogGroup"}
        params |= {"max_results": 4, "end": end}
        if token:
            params["next_token"] = token
        page = lookup(root, **params)
        for event in page["events"]:
            record = json.loads(event["cloudtrail_event"])
            seen.append(record["requestParameters"]["name"])
            order.append(
                (record["eventTime"], record["additionalEventData"]["watchkeep"]["sequenceNumber"])
            )
        # New records arrive between pages; they are newer than the first page and never
        # appear later in this walk.
        root.put(f"/api/v1/logs/groups/late{len(seen)}").raise_for_status()
        token = page["next_token"]
        if not token:
            break
    early = [name for name in seen if name.startswith("g")]
    assert sorted(early) == sorted(f"g{n}" for n in range(30))
    assert len(seen) == len(set(seen))
    assert order == sorted(order, reverse=True)


def test_lookup_is_itself_recorded_after_its_results(root: httpx.Client) -> None:
    first = lookup(root, lookup_key="EventName", lookup_value="LookupEvents")
    assert first["events"] == []  # the call never appears in its own results
    second = lookup(root, lookup_key="EventName", lookup_value="LookupEvents")
    (event,) = second["events"]
    record = json.loads(event["cloudtrail_event"])
    assert record["readOnly"] is True and record["eventSource"] == "cloudtrail.watchkeep"
    assert record["requestParameters"] == {
        "lookup_key": "EventName",
        "lookup_value": "LookupEvents",
    }


def test_lookup_is_throttled_per_principal(tmp_path: Path) -> None:
    server = RunningServer(make_settings(tmp_path / "data", audit_lookup_rate=2)).start()
    try:
        with httpx.Client(
            base_url=server.url, headers={"Authorization": f"Bearer {ADMIN_KEY}"}
        ) as client:
            answers = [client.get("/api/v1/audit/events") for _ in range(6)]
            throttled = [a for a in answers if a.status_code == 429]
            assert throttled, [a.status_code for a in answers]
            assert throttled[0].json()["error"]["code"] == "ThrottlingException"
            assert throttled[0].headers["Retry-After"]
            time.sleep(1.1)
            found = client.get(
                "/api/v1/audit/events",
                params={"lookup_key": "EventName", "lookup_value": "LookupEvents"},
            )
            assert found.status_code == 200
    finally:
        server.stop()
    codes = [json.loads(e["cloudtrail_event"]).get("errorCode") for e in found.json()["events"]]
    assert codes.count("ThrottlingException") == len(throttled)


def test_tokens_survive_relative_times_that_resolve_later(root: httpx.Client) -> None:
    for n in range(6):
        root.put(f"/api/v1/logs/groups/r{n}").raise_for_status()
    params = {
        "start": "-1h",
        "end": "now",
        "lookup_key": "EventName",
        "lookup_value": "CreateLogGroup",
    }
    first = lookup(root, max_results=3, **params)
    time.sleep(1.1)  # "now" and "-1h" now resolve a second later
    second = lookup(root, max_results=3, next_token=first["next_token"], **params)
    names = [
        json.loads(e["cloudtrail_event"])["requestParameters"]["name"]
        for e in first["events"] + second["events"]
    ]
    assert names == [f"r{n}" for n in range(5, -1, -1)]
