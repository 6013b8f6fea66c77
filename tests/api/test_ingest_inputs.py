"""Ingest input handling seen over HTTP: one JSON object per application/json body, invalid
UTF-8 inside an array, ``message`` null, the size limit on the whole event, and
FilterLogEvents' default end reaching the last accepted timestamp."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import httpx
import orjson

from core.timeparse import MAX_EPOCH_MS
from tests.conftest import ADMIN_KEY, RunningServer, all_events, make_settings

JSON = {"Content-Type": "application/json"}
NDJSON = {"Content-Type": "application/x-ndjson"}


def ingest(client: httpx.Client, body: bytes, headers: dict[str, str]) -> httpx.Response:
    return client.post("/api/v1/logs/events", params={"group": "in"}, content=body, headers=headers)


def test_a_pretty_printed_object_is_one_event(client: httpx.Client) -> None:
    response = ingest(client, b'{\n  "message": "hi",\n  "user": {"id": 7}\n}\n', JSON)
    assert response.json() == {"accepted": 1, "rejected": []}
    broken = ingest(client, b'{\n  "message": "hi",\n}\n', JSON)
    assert broken.status_code == 400
    assert "body is not valid JSON" in broken.json()["error"]["message"]
    assert "trailing comma is not allowed at line 2, column 18" in broken.json()["error"]["message"]
    assert [e["message"] for e in all_events(client, "in")] == ["hi"]


def test_invalid_utf8_in_an_array_rejects_only_those_elements(client: httpx.Client) -> None:
    response = ingest(client, b'[{"a":"ok"}, {"b":"\xff"}, {"message":null,"c":1}]', JSON)
    assert response.status_code == 200, response.text
    assert response.json() == {
        "accepted": 2,
        "rejected": [{"index": 1, "reason": "invalid UTF-8 at byte 6 of the event"}],
    }
    assert [e["message"] for e in all_events(client, "in")] == [
        '{"a":"ok"}',
        '{"message":null,"c":1}',
    ]
    outside = ingest(client, b'[{"a":"ok"}\xff]', JSON)
    assert outside.status_code == 400
    assert "invalid byte at offset 11; fix the encoding" in outside.json()["error"]["message"]


def test_filter_default_end_covers_every_accepted_timestamp(client: httpx.Client) -> None:
    body = b'{"timestamp":%d,"k":"last"}\n{"timestamp":"9000-01-01T00:00:00Z"}\n' % MAX_EPOCH_MS
    assert ingest(client, body, NDJSON).json()["accepted"] == 2
    year_9000_ms = int(datetime(9000, 1, 1, tzinfo=UTC).timestamp() * 1000)
    timestamps = [e["timestamp"] for e in all_events(client, "in")]
    assert timestamps == [year_9000_ms, MAX_EPOCH_MS]


def test_the_size_limit_is_on_the_whole_event(tmp_path: Path) -> None:
    running = RunningServer(make_settings(tmp_path / "small", max_event_bytes=100)).start()
    try:
        with httpx.Client(
            base_url=running.url, headers={"Authorization": f"Bearer {ADMIN_KEY}"}
        ) as c:
            big = orjson.dumps({"message": "m", "pad": "x" * 200})
            response = ingest(c, big + b'\n{"message":"ok"}\n', NDJSON)
            assert response.json()["accepted"] == 1
            (rejected,) = response.json()["rejected"]
            assert rejected["index"] == 0
            assert rejected["reason"] == f"event is {len(big)} bytes; the limit is 100 bytes"
    finally:
        running.stop()
