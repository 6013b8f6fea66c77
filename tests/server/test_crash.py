"""kill -9 while many clients ingest: every acknowledged event survives, exactly once."""

from __future__ import annotations

import threading
import time
from collections import Counter
from pathlib import Path

import httpx
import orjson
import pytest

from tests.conftest import ADMIN_KEY, all_events
from tests.server.helpers import ServeProcess

AUTH = {"Authorization": f"Bearer {ADMIN_KEY}"}


def ingest_until_dead(url: str, client_id: int, acked: list[str], stop: threading.Event) -> None:
    batch_no = 0
    with httpx.Client(base_url=url, headers=AUTH, timeout=10) as client:
        while not stop.is_set():
            ids = [f"c{client_id}-b{batch_no}-e{i}" for i in range(50)]
            body = b"".join(orjson.dumps({"id": i, "n": batch_no}) + b"\n" for i in ids)
            try:
                response = client.post(
                    "/api/v1/logs/events",
                    params={"group": "crash", "stream": f"client-{client_id}"},
                    content=body,
                    headers={"Content-Type": "application/x-ndjson"},
                )
            except httpx.TransportError:
                return  # the server died: this batch was never acknowledged
            if response.status_code == 200:
                acked.extend(ids)
            batch_no += 1


def stored_ids(url: str) -> Counter[str]:
    with httpx.Client(base_url=url, headers=AUTH, timeout=30) as client:
        return Counter(orjson.loads(e["message"])["id"] for e in all_events(client, "crash"))


@pytest.mark.serial
def test_sigkill_during_ingest_loses_and_duplicates_nothing(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    acked: list[str] = []
    # Short flush intervals so kills also land in the middle of flushes.
    env = {"WATCHKEEP_FLUSH_INTERVAL_S": "0.3"}
    for round_no in range(3):
        server = ServeProcess(data_dir, **env).start()
        stop = threading.Event()
        clients = [
            threading.Thread(target=ingest_until_dead, args=(server.url, c, acked, stop))
            for c in range(round_no * 10, round_no * 10 + 6)
        ]
        for thread in clients:
            thread.start()
        time.sleep(1.5 + 0.5 * round_no)
        server.kill()
        stop.set()
        for thread in clients:
            thread.join(30)

    assert len(acked) > 1000, "the clients should have been acknowledged many batches"
    server = ServeProcess(data_dir, **env).start()
    try:
        stored = stored_ids(server.url)
    finally:
        server.terminate()
    missing = [i for i in acked if stored[i] == 0]
    duplicated = [i for i, n in stored.items() if n > 1]
    assert missing == []
    assert duplicated == []
