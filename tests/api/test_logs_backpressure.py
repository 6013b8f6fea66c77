"""Backpressure over HTTP: past the memtable or WAL limit, ingest answers 503 with
``Retry-After`` instead of growing, and accepts again once the flush it triggers has run."""

from __future__ import annotations

import time
from pathlib import Path

import httpx
import pytest

from tests.conftest import ADMIN_KEY, RunningServer, all_events, make_settings

NDJSON = {"Content-Type": "application/x-ndjson"}
BATCH = b"".join(b'{"i":%d,"pad":"%s"}\n' % (i, b"x" * 200) for i in range(50))


@pytest.mark.parametrize(
    ("limits", "names"),
    [
        ({"max_memtable_bytes": 4096}, "waiting to be written to Parquet"),
        ({"max_wal_bytes": 4096}, "write-ahead log"),
    ],
    ids=["memtable-limit", "wal-limit"],
)
def test_ingest_past_a_limit_is_503_with_retry_after(
    tmp_path: Path, limits: dict[str, int], names: str
) -> None:
    # A flush interval of an hour: only the flush that backpressure asks for empties them.
    settings = make_settings(tmp_path / "data", flush_interval_s=3600.0, **limits)
    server = RunningServer(settings).start()
    try:
        with httpx.Client(
            base_url=server.url, headers={"Authorization": f"Bearer {ADMIN_KEY}"}, timeout=30
        ) as client:

            def post() -> httpx.Response:
                return client.post(
                    "/api/v1/logs/events", params={"group": "app"}, content=BATCH, headers=NDJSON
                )

            assert post().status_code == 200  # under the limit when it arrives
            refused = post()
            assert refused.status_code == 503, refused.text
            assert int(refused.headers["Retry-After"]) >= 1
            error = refused.json()["error"]
            assert error["code"] == "ServiceUnavailableException"
            assert names in error["message"] and "retry" in error["message"]

            # The refusal kicked a flush (the scheduler ticks every second): a retry that
            # honours Retry-After gets in, and nothing was stored twice or lost.
            deadline = time.monotonic() + 30
            while (retried := post()).status_code == 503 and time.monotonic() < deadline:
                time.sleep(int(retried.headers["Retry-After"]))
            assert retried.status_code == 200, retried.text
            assert len(all_events(client, "app")) == 100
    finally:
        server.stop()
