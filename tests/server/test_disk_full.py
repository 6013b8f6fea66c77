"""A really full disk (a small tmpfs): a clear 503, nothing acknowledged lost, recovery after."""

from __future__ import annotations

from pathlib import Path

import httpx
import orjson
import pytest

from tests.conftest import ADMIN_KEY, fill_disk
from tests.server.helpers import ServeProcess

AUTH = {"Authorization": f"Bearer {ADMIN_KEY}", "Content-Type": "application/x-ndjson"}


@pytest.mark.disk_size("6m")
def test_full_disk_answers_503_and_loses_nothing(small_disk: Path) -> None:
    data_dir = small_disk / "data"
    server = ServeProcess(data_dir, WATCHKEEP_FLUSH_INTERVAL_S="3600").start()
    filler = fill_disk(small_disk, leave_bytes=1 << 20)
    acked: list[int] = []
    refused = None
    with httpx.Client(base_url=server.url, headers=AUTH, timeout=30) as client:
        for n in range(40):
            body = orjson.dumps({"n": n, "pad": "x" * 100_000}) + b"\n"
            response = client.post("/api/v1/logs/events", params={"group": "g"}, content=body)
            if response.status_code == 200:
                acked.append(n)
            else:
                refused = response
                break
        assert refused is not None, "the disk never filled up"
        assert refused.status_code == 503
        assert refused.headers["Retry-After"]
        error = refused.json()["error"]
        assert error["code"] == "ServiceUnavailableException"
        assert "No space left on device" in error["message"]

        filler.unlink()
        again = client.post(
            "/api/v1/logs/events", params={"group": "g"}, content=orjson.dumps({"n": 999}) + b"\n"
        )
        assert again.status_code == 200, again.text
        acked.append(999)
    server.kill()

    restarted = ServeProcess(data_dir).start()
    try:
        events = httpx.get(
            f"{restarted.url}/api/v1/logs/events", params={"group": "g"}, headers=AUTH
        ).json()["events"]
        assert sorted(orjson.loads(e["message"])["n"] for e in events) == sorted(acked)
    finally:
        restarted.terminate()
