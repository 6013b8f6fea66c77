"""``/healthz`` is a readiness probe: 503 while the write-ahead log is replayed, 200 after."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import httpx

from tests.conftest import ADMIN_KEY, all_events
from tests.server.helpers import ServeProcess, watchkeep_command

# Appends one-event batches through the store itself, then dies without a flush (as kill -9
# after the last fsync does): each batch is a WAL record that the next start replays, and
# thousands of them make the replay last long enough to be seen from outside.
WRITE_UNFLUSHED_WAL = """
import os, sys
from pathlib import Path
import pyarrow as pa
from store.config import StoreConfig
from store.engine import Store

store = Store(StoreConfig(Path(sys.argv[1]), fsync=False))
store.open()
store.recover()
events = pa.table({
    "ts_ms": pa.array([1_700_000_000_000], pa.int64()),
    "message": pa.array(["replayed"]),
    "message_bytes": pa.array([8], pa.int32()),
})
fields = pa.table({"_": pa.nulls(1)}).drop(["_"])
futures = [
    store.submit_logs("app", "s", events, fields, {"accepted": 1})
    for _ in range(int(sys.argv[2]))
]
for future in futures:
    future.result(60)
os._exit(0)
"""
RECORDS = 6000


def test_healthz_is_503_during_wal_replay_and_200_after(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    # A first start sets the data directory up (keys, audit trail), a clean stop flushes.
    first = ServeProcess(data_dir).start()
    first.terminate()
    subprocess.run(
        [sys.executable, "-c", WRITE_UNFLUSHED_WAL, str(data_dir), str(RECORDS)],
        check=True,
        timeout=120,
        cwd=Path(__file__).parents[2],
    )

    server = ServeProcess(data_dir)
    command = [*watchkeep_command(), "serve", "--data-dir", str(data_dir)]
    command += ["--port", str(server.port), "--log-level", "warning"]
    with server.log_path.open("w") as log:
        server.process = subprocess.Popen(command, env=server.env, stdout=log, stderr=log)
    try:
        statuses: list[int] = []
        read_during_replay: httpx.Response | None = None
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline and server.process.poll() is None:
            try:
                response = httpx.get(f"{server.url}/healthz", timeout=5)
            except httpx.TransportError:
                time.sleep(0.02)
                continue
            statuses.append(response.status_code)
            if response.status_code == 200:
                break
            assert response.status_code == 503, response.text
            assert response.json() == {"status": "starting"}
            if read_during_replay is None:
                # The replay thread holds the GIL most of the time: on a loaded machine the
                # answer can take a while (it is decided when the request is handled).
                try:
                    read_during_replay = httpx.get(
                        f"{server.url}/api/v1/logs/events",
                        params={"group": "app"},
                        headers={"Authorization": f"Bearer {ADMIN_KEY}"},
                        timeout=30,
                    )
                except httpx.TimeoutException:
                    pass
            time.sleep(0.02)
        assert statuses and statuses[-1] == 200, (statuses, server.output())
        assert statuses[0] == 503, f"the replay was not observed: {statuses}"
        # The API says the same while it replays: retry soon.
        assert read_during_replay is not None
        assert read_during_replay.status_code == 503, read_during_replay.text
        assert read_during_replay.headers["Retry-After"]
        assert read_during_replay.json()["error"]["code"] == "ServiceUnavailableException"

        with httpx.Client(
            base_url=server.url, headers={"Authorization": f"Bearer {ADMIN_KEY}"}, timeout=30
        ) as client:
            assert len(all_events(client, "app")) == RECORDS
    finally:
        server.terminate()
