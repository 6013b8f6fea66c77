"""Ingest skips metric extraction for bodies that cannot hold an EMF document; a document whose
``_aws`` key only appears once JSON escapes are decoded must still become metrics."""

from __future__ import annotations

import json
import time

import httpx
import pytest

from ingest.decode import decode_events
from ingest.routes import _may_hold_emf

NDJSON = {"Content-Type": "application/x-ndjson"}


@pytest.mark.parametrize(
    ("body", "expected", "keys_known"),
    [
        (b'{"level": "info", "msg": "plain"}\n', False, True),
        (b'{"level": "info", "msg": "says _aws and \\u0041"}\n', False, True),
        (b'{"_aws": {}}\n', True, True),
        (b'{"a": 1}\n{"_aws": null}\n', True, True),  # a parsing error to count
        (b'{"\\u005faws": {"Timestamp": 1}}\n', True, True),  # the key decodes to _aws
        (b'{"_aws": {"CloudWatchMetrics": []}}\n', True, False),  # arrays: per event
        (b'{"message": "\\u005faws"}\n', True, False),  # decodes to _aws
        (b'{"message": "plain"}\n', False, False),
        (b"plain text line\n", False, False),
    ],
    ids=[
        "plain",
        "mentions-in-values",
        "literal",
        "null-aws",
        "escaped-key",
        "array",
        "escaped-message",
        "message",
        "text",
    ],
)
def test_may_hold_emf(body: bytes, expected: bool, keys_known: bool) -> None:
    decoded = decode_events(body, "application/x-ndjson", now_ms=int(time.time() * 1000))
    assert (decoded.root_keys is not None) is keys_known
    assert _may_hold_emf(body, decoded) is expected


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
