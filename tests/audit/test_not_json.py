"""A record holding values that are not JSON (NaN, infinities, lone surrogates, nesting deeper
than the encoder recurses) is its own problem, not the disk's: it is recorded with markers in
place of those values, the other records of its group commit are written as usual, the trail
is not degraded, and ``audit verify`` finds the trail intact.

Also through a real server: a body nested deeper than orjson writes (254 levels) or than Python
recurses still gets an answer, and its call a record.
"""

from __future__ import annotations

import json
import math
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx

from audit.digests import Digester
from audit.levels import Level
from audit.record import Account, ApiCall, Identity, api_call_record, service_event_record
from audit.signing import generate_key
from audit.trail import AuditTrail, TrailConfig
from audit.verify import verify

ACCOUNT = Account("local", "000000000000")
T0 = datetime(2026, 1, 5, 12, 0, 0, tzinfo=UTC).timestamp()
NOT_JSON = {"omitted": True, "reason": "not JSON"}


class Clock:
    def __init__(self) -> None:
        self.now = T0

    def __call__(self) -> float:
        return self.now


def nested(depth: int) -> Any:
    value: Any = []
    for _ in range(depth):
        value = [value]
    return value


def call_record(name: str, parameters: Any, *, status: int = 200) -> dict[str, Any]:
    """The record of an API call, as the gate builds it."""
    call = ApiCall(
        request_id=f"req-{name}",
        received_at=datetime.fromtimestamp(T0, UTC),
        method="POST",
        path=f"/api/v1/alarms/{name}/state",
        source_ip="127.0.0.1",
        event_source="monitoring.watchkeep",
        event_name="SetAlarmState",
        identity=Identity(type="Root", arn="arn:watchkeep:iam::000000000000:root"),
        http_status=status,
        request_parameters=parameters,
        completed_at=datetime.fromtimestamp(T0, UTC),
    )
    return api_call_record(call, Level.REQUEST, ACCOUNT)


def test_records_that_are_not_json_fail_neither_their_batch_nor_the_trail(
    tmp_path: Path,
) -> None:
    clock = Clock()
    key = generate_key(tmp_path / "keys" / "audit-signing.key")
    root = tmp_path / "data" / "audit" / "default"
    trail = AuditTrail(TrailConfig(root=root, account=ACCOUNT, fsync=False), clock=clock)
    trail.open()
    digests = Digester(trail, key, interval_s=300.0, checkpoint_every=5, clock=clock)
    digests.write_digest("startup")

    records = [
        call_record("before", {"name": "before"}),
        call_record("nan", {"name": "nan", "reason_data": {"a": math.nan}}),
        call_record("inf", {"name": "inf", "reason_data": {"a": [1.0, -math.inf]}}),
        call_record("surrogate", {"name": "surrogate", "reason": "\ud800"}),
        service_event_record("AlarmStateChange", {"reason_data": {"a": math.inf}}, ACCOUNT),
        service_event_record("Deep", {"value": nested(5_000)}, ACCOUNT),
        call_record("after", {"name": "after"}),
    ]
    # Holding the queue's condition keeps the commit thread waiting until every record is
    # queued: they are committed as one batch, as concurrent requests are.
    with trail._cond:
        futures = [trail.append(record) for record in records]
    entries = [future.result(timeout=30) for future in futures]

    assert not trail.degraded
    first = entries[0].seq
    assert [entry.seq for entry in entries] == list(range(first, first + len(records)))
    stored = [json.loads(entry.record_json) for entry in entries]
    assert [r["requestParameters"] for r in (stored[0], stored[-1])] == [
        {"name": "before"},
        {"name": "after"},
    ]
    for record in stored[1:4]:
        # The call is in the trail with its true status; only its parameters are replaced.
        marker = dict(record["requestParameters"])
        assert marker.pop("originalBytes") > 0 and marker == NOT_JSON
        watchkeep = record["additionalEventData"]["watchkeep"]
        assert watchkeep["httpStatus"] == 200
        assert watchkeep["redactedPaths"] == ["requestParameters"]
        assert record["eventName"] == "SetAlarmState"
    for record in stored[4:6]:
        assert record["serviceEventDetails"]["omitted"] is True
        assert record["serviceEventDetails"]["reason"] == "not JSON"
        paths = record["additionalEventData"]["watchkeep"]["redactedPaths"]
        assert paths == ["serviceEventDetails"]
    assert [r["additionalEventData"]["watchkeep"]["sequenceNumber"] for r in stored] == [
        entry.seq for entry in entries
    ]

    clock.now += 300
    digests.write_digest("scheduled")
    trail.close()
    report = verify(
        root,
        public_keys=[key.public_key()],
        now=datetime.fromtimestamp(clock.now + 10, UTC),
        interval_s=300.0,
    )
    assert report.count("error") == 0, report.findings
    assert report.exit_status == 0
    assert report.summary["recordsVerified"] == report.summary["recordsTotal"] >= len(records)


def test_deeply_nested_bodies_are_answered_and_recorded(client: httpx.Client) -> None:
    for depth in (300, 1_000):  # beyond orjson's 254 levels; beyond Python's recursion limit
        body = '{"labels": ' + "[" * depth + "]" * depth + "}"
        response = client.post(
            f"/api/v1/alarms/silences?depth={depth}",
            content=body,
            headers={"Content-Type": "application/json"},
        )
        assert response.status_code == 400, response.text
    params = {"lookup_key": "EventName", "lookup_value": "PutSilence", "max_results": 50}
    events = client.get("/api/v1/audit/events", params=params).json()["events"]
    records = [json.loads(e["cloudtrail_event"]) for e in events]
    depths = sorted(r["requestParameters"]["depth"] for r in records)
    assert depths == ["1000", "300"]
    for record in records:
        assert record["additionalEventData"]["watchkeep"]["httpStatus"] == 400
    (deepest,) = [r for r in records if r["requestParameters"]["depth"] == "1000"]
    labels = dict(deepest["requestParameters"]["labels"])
    labels.pop("originalBytes", None)  # too deep for json to measure as well
    assert labels == NOT_JSON
    assert deepest["additionalEventData"]["watchkeep"]["redactedPaths"] == [
        "requestParameters.labels"
    ]
    assert client.get("/api/v1/audit/status").status_code == 200
