"""The scheduled self-verify counts its outcome as a metric, so an alarm can page on tampering."""

from __future__ import annotations

import time
from pathlib import Path

import httpx

from tests.conftest import ADMIN_KEY, RunningServer, make_settings


def test_each_self_verify_run_publishes_integrity_failures(tmp_path: Path) -> None:
    server = RunningServer(
        make_settings(tmp_path / "data", audit_self_verify_interval_s=0.5)
    ).start()
    try:
        with httpx.Client(
            base_url=server.url, headers={"Authorization": f"Bearer {ADMIN_KEY}"}
        ) as client:
            deadline = time.monotonic() + 20
            body = {
                "namespace": "Watchkeep/Audit",
                "metric_name": "IntegrityFailures",
                "start": "-10m",
                "end": "now",
                "period": 60,
                "statistics": ["Sum", "SampleCount"],
            }
            points: list[dict[str, float]] = []
            while time.monotonic() < deadline and not points:
                time.sleep(0.5)
                points = client.post("/api/v1/metrics/statistics", json=body).json()["datapoints"]
            assert points, "no IntegrityFailures datapoint after 20 s"
            assert sum(p["sum"] for p in points) == 0, "an untouched trail verifies clean"
            assert sum(p["sample_count"] for p in points) >= 1
    finally:
        server.stop()
