"""README's Fluent Bit and Vector settings keep the event time: the bodies those settings make
the shippers send (per their documentation) reach watchkeep with the right ``@timestamp``.

syslog-ng is tested end to end with the real binary in ``tests/ingest/test_syslog_ng.py``.
"""

from __future__ import annotations

import re
from pathlib import Path

import httpx
import pytest

README = Path(__file__).resolve().parents[2] / "README.md"
EVENT_MS = 1_527_673_192_000  # 2018-05-30T09:39:52Z


def readme_settings(shipper: str) -> str:
    match = re.search(rf"^\| {shipper} \| (.*) \|$", README.read_text(), re.MULTILINE)
    assert match, f"README.md has no '| {shipper} |' row in 'Shipping logs'"
    return match.group(1)


# What each shipper sends with README's settings: Fluent Bit's http output with
# ``json_date_key timestamp`` and ``json_date_format iso8601`` writes the record time as
# "2018-05-30T09:39:52.000681Z" (microseconds); Vector's json codec with the rfc3339 timestamp
# format writes its ``timestamp`` with up to nanoseconds.
SENT = {
    "Fluent Bit": (
        ["`json_date_key timestamp`", "`json_date_format iso8601`", "`Format json_lines`"],
        b'{"timestamp":"2018-05-30T09:39:52.000681Z","log":"GET /health 200"}\n',
    ),
    "Vector": (
        ['`encoding.timestamp_format = "rfc3339"`', '`encoding.codec = "json"`'],
        b'{"host":"web-1","message":"GET /health 200","source_type":"file",'
        b'"timestamp":"2018-05-30T09:39:52.000681234Z"}\n',
    ),
}


@pytest.mark.parametrize("shipper", sorted(SENT))
def test_readme_shipper_settings_keep_the_event_time(client: httpx.Client, shipper: str) -> None:
    settings, body = SENT[shipper]
    row = readme_settings(shipper)
    for setting in settings:
        assert setting in row, f"README's {shipper} row lost {setting}"
    response = client.post(
        "/api/v1/logs/events",
        params={"group": "ship", "stream": "s"},
        content=body,
        headers={"Content-Type": "application/x-ndjson"},
    )
    assert response.json() == {"accepted": 1, "rejected": []}
    (event,) = client.get("/api/v1/logs/events", params={"group": "ship"}).json()["events"]
    assert event["timestamp"] == EVENT_MS
    assert "GET /health 200" in event["message"]


def test_fluent_bit_default_date_would_not_set_the_time(client: httpx.Client) -> None:
    """Why README sets ``json_date_key``: Fluent Bit's default ``date`` (float seconds) is
    just a field, and the event would be stamped on arrival."""
    client.post(
        "/api/v1/logs/events",
        params={"group": "ship"},
        content=b'{"date":1527673192.000681,"log":"x"}\n',
        headers={"Content-Type": "application/x-ndjson"},
    )
    (event,) = client.get("/api/v1/logs/events", params={"group": "ship"}).json()["events"]
    assert event["timestamp"] != EVENT_MS
