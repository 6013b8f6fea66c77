"""Embedded Metric Format through the real log ingest path: an app that logs EMF gets its
metrics without calling PutMetricData; bad documents are counted; replays extract nothing."""

from __future__ import annotations

import json
import time
from typing import Any

import httpx

NDJSON = {"Content-Type": "application/x-ndjson"}


def emf(now_ms: int, latency: float, **extra: Any) -> str:
    return json.dumps(
        {
            "_aws": {
                "Timestamp": now_ms,
                "CloudWatchMetrics": [
                    {
                        "Namespace": "Shop/Checkout",
                        "Dimensions": [["Service"]],
                        "Metrics": [{"Name": "Latency", "Unit": "Milliseconds"}],
                    }
                ],
            },
            "Service": "checkout",
            "Latency": latency,
            "order": "placed",  # no "message" key: @message is the document (the EMF way)
            **extra,
        }
    )


def latency_stats(client: httpx.Client, namespace: str = "Shop/Checkout") -> list[dict[str, Any]]:
    response = client.post(
        "/api/v1/metrics/statistics",
        json={
            "namespace": namespace,
            "metric_name": "Latency",
            "dimensions": {"Service": "checkout"},
            "start": "-1h",
            "end": "now",
            "period": 3600,
            "statistics": ["SampleCount", "Sum", "Maximum"],
        },
    )
    assert response.status_code == 200, response.text
    return response.json()["datapoints"]  # type: ignore[no-any-return]


def test_emf_events_become_metrics_and_stay_logs(client: httpx.Client) -> None:
    now_ms = int(time.time() * 1000)
    lines = [emf(now_ms, 120.0), emf(now_ms, 80.0), json.dumps({"message": "plain event"})]
    response = client.post(
        "/api/v1/logs/events",
        params={"group": "shop"},
        content="\n".join(lines),
        headers={**NDJSON, "Idempotency-Key": "emf-batch-1"},
    )
    assert response.json() == {"accepted": 3, "rejected": []}
    (point,) = latency_stats(client)
    assert (point["sample_count"], point["sum"], point["maximum"]) == (2, 200.0, 120.0)
    assert point["unit"] == "Milliseconds"
    events = client.get("/api/v1/logs/events", params={"group": "shop"}).json()["events"]
    assert len(events) == 3  # the documents are stored as logs too

    again = client.post(
        "/api/v1/logs/events",
        params={"group": "shop"},
        content="\n".join(lines),
        headers={**NDJSON, "Idempotency-Key": "emf-batch-1"},
    )
    assert again.json()["duplicate"] is True
    (point,) = latency_stats(client)
    assert point["sample_count"] == 2  # extracted exactly once per stored event


def test_malformed_documents_are_counted(client: httpx.Client) -> None:
    now_ms = int(time.time() * 1000)
    broken = json.dumps({"_aws": {"Timestamp": "yesterday", "CloudWatchMetrics": []}})
    response = client.post(
        "/api/v1/logs/events",
        params={"group": "shop-bad"},
        content="\n".join([broken, emf(now_ms, 5.0)]),
        headers=NDJSON,
    )
    assert response.json()["accepted"] == 2
    counted = client.post(
        "/api/v1/metrics/statistics",
        json={
            "namespace": "Watchkeep/Logs",
            "metric_name": "EMFParsingErrors",
            "dimensions": {"LogGroup": "shop-bad"},
            "start": "-1h",
            "end": "now",
            "period": 3600,
            "statistics": ["Sum"],
        },
    ).json()["datapoints"]
    assert [p["sum"] for p in counted] == [1.0]
