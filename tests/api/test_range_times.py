"""A range time in a JSON body is epoch seconds as an integer or a string form; ``true`` is
neither (it was read as 1, a moment in 1970)."""

from __future__ import annotations

import time
from typing import Any

import httpx
import pytest

BODIES: dict[str, dict[str, Any]] = {
    "/api/v1/queries": {"query": "fields @message", "log_groups": ["g"], "end": "now"},
    "/api/v1/metrics/statistics": {
        "namespace": "App",
        "metric_name": "m",
        "end": "now",
        "period": 60,
        "statistics": ["Sum"],
    },
    "/api/v1/audit/queries": {"sql": "SELECT count(*) AS n FROM events", "end": "now"},
}


@pytest.mark.parametrize("path", list(BODIES))
def test_a_boolean_is_not_a_time(client: httpx.Client, path: str) -> None:
    client.post(
        "/api/v1/logs/events",
        params={"group": "g"},
        content=b"x\n",
        headers={"Content-Type": "text/plain"},
    ).raise_for_status()
    refused = client.post(path, json={**BODIES[path], "start": True})
    assert refused.status_code == 400, refused.text
    assert "start" in refused.json()["error"]["message"]
    an_hour_ago = int(time.time()) - 3600
    accepted = client.post(path, json={**BODIES[path], "start": an_hour_ago})
    assert accepted.status_code in (200, 201), accepted.text
