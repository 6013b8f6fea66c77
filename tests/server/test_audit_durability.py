"""The audit trail under faults, with a real ``watchkeep serve``: every answered request's
record survives ``kill -9``; a full disk makes the server fail closed, then recover."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.conftest import ADMIN_KEY, fill_disk
from tests.server.helpers import ServeProcess

AUTH = {"Authorization": f"Bearer {ADMIN_KEY}"}


def all_records(url: str) -> list[dict[str, Any]]:
    records: list[dict[str, Any]] = []
    token = None
    with httpx.Client(base_url=url, headers=AUTH, timeout=30) as client:
        while True:
            params: dict[str, Any] = {"max_results": 50}
            if token:
                params["next_token"] = token
            page = client.get("/api/v1/audit/events", params=params).json()
            records += [json.loads(e["cloudtrail_event"]) for e in page["events"]]
            token = page["next_token"]
            if not token:
                return records


def test_answered_requests_keep_their_records_through_kill_9(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    server = ServeProcess(data_dir, WATCHKEEP_AUDIT_LOOKUP_RATE="0").start()
    answered: list[str] = []
    with httpx.Client(base_url=server.url, headers=AUTH, timeout=30) as client:
        for n in range(40):
            response = client.put(f"/api/v1/logs/groups/g{n}")
            answered.append(response.headers["x-amzn-requestid"])
        answered.append(httpx.get(f"{server.url}/api/v1/logs/groups").headers["x-amzn-requestid"])
    server.kill()

    restarted = ServeProcess(data_dir, WATCHKEEP_AUDIT_LOOKUP_RATE="0").start()
    try:
        records = all_records(restarted.url)
        status = httpx.get(f"{restarted.url}/api/v1/audit/status", headers=AUTH).json()
    finally:
        restarted.terminate()
    by_id: dict[str, int] = {}
    for record in records:
        by_id[record["requestID"]] = by_id.get(record["requestID"], 0) + 1
    assert all(by_id.get(request_id) == 1 for request_id in answered)
    seqs = sorted(r["additionalEventData"]["watchkeep"]["sequenceNumber"] for r in records)
    assert seqs == list(range(1, len(seqs) + 1))  # no gap, no duplicate across the crash
    assert status["chain_head_seq"] >= seqs[-1]


@pytest.mark.disk_size("8m")
def test_full_disk_fails_closed_then_records_the_outage(small_disk: Path) -> None:
    data_dir = small_disk / "data"
    server = ServeProcess(data_dir, WATCHKEEP_AUDIT_LOOKUP_RATE="0").start()
    try:
        with httpx.Client(base_url=server.url, headers=AUTH, timeout=30) as client:
            assert client.put("/api/v1/logs/groups/before").status_code in (200, 201)
            filler = fill_disk(small_disk)
            refused = [
                client.get("/api/v1/logs/groups", params={"prefix": "x" * 4000}) for _ in range(30)
            ]
            statuses = {r.status_code for r in refused}
            assert statuses == {503}, statuses
            error = refused[0].json()["error"]
            assert error["code"] == "ServiceUnavailableException"
            assert "audit trail unavailable" in error["message"]
            assert refused[0].headers["Retry-After"]

            filler.unlink()
            # The server probes the trail at most once a second while degraded.
            deadline = time.monotonic() + 10
            again = client.get("/api/v1/logs/groups")
            while again.status_code == 503 and time.monotonic() < deadline:
                time.sleep(0.2)
                again = client.get("/api/v1/logs/groups")
            assert again.status_code == 200, again.text
        records = all_records(server.url)
    finally:
        server.terminate()
    outages = [r for r in records if r["eventName"] == "AuditDeliveryFailure"]
    assert len(outages) == 1
    assert outages[0]["eventType"] == "AwsServiceEvent"
    assert outages[0]["serviceEventDetails"]["refusedRequests"] >= 1
    # None of the refused requests has a record: each was refused because none could be written.
    refused_ids = {
        r.headers["x-amzn-requestid"] for r in refused if "x-amzn-requestid" in r.headers
    }
    assert not refused_ids & {r["requestID"] for r in records}
