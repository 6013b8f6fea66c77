"""Ingest skips metric extraction for bodies that cannot hold an EMF document; a document whose
``_aws`` key only appears once JSON escapes are decoded must still become metrics."""

from __future__ import annotations

import json
import time

import httpx
import pytest

from ingest.routes import _may_hold_emf

NDJSON = {"Content-Type": "application/x-ndjson"}


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        (b'{"level": "info", "msg": "plain"}\n', False),
        (b'{"_aws": {}}\n', True),
        (b'{"message": "\\u005faws"}\n', True),  # decodes to _aws
        (b"plain text line\n", False),
    ],
    ids=["plain", "literal", "escaped", "text"],
)
def test_may_hold_emf(body: bytes, expected: bool) -> None:
    assert _may_hold_emf(body) is expected


def test_escaped_emf_document_in_a_message_becomes_metrics(client: httpx.Client) -> None:
    document = json.dumps(
        {
            "_aws": {
                "Timestamp": int(time.time() * 1000),
                "CloudWatchMetrics": [
                    {
                        "Namespace": "Shop/Escaped",
                        "Dimensions": [["Service"]],
                        "Metrics": [{"Name": "Latency", "Unit": "Milliseconds"}],
                    }
                ],
            },
            "Service": "checkout",
            "Latency": 42.0,
        }
    )
    line = json.dumps({"message": document}).replace("_aws", "\\u005faws")
    assert b"_aws" not in line.encode()
    response = client.post(
        "/api/v1/logs/events", params={"group": "escaped"}, content=line, headers=NDJSON
    )
    assert response.json() == {"accepted": 1, "rejected": []}
    stats = client.post(
        "/api/v1/metrics/statistics",
        json={
            "namespace": "Shop/Escaped",
            "metric_name": "Latency",
            "dimensions": {"Service": "checkout"},
            "start": "-1h",
            "end": "now",
            "period": 3600,
            "statistics": ["SampleCount"],
        },
    )
    assert stats.status_code == 200, stats.text
    assert [p["sample_count"] for p in stats.json()["datapoints"]] == [1]
