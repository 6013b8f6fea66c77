"""Reads while ingest, flushes and compactions run: no event seen twice, none lost."""

from __future__ import annotations

import threading
from collections import Counter
from pathlib import Path

import httpx
import orjson

from tests.conftest import ADMIN_KEY, RunningServer, all_events, make_settings

AUTH = {"Authorization": f"Bearer {ADMIN_KEY}"}


def read_all(client: httpx.Client) -> Counter[str]:
    return Counter(orjson.loads(e["message"])["id"] for e in all_events(client, "busy"))


def test_reads_during_ingest_flush_and_compaction_are_consistent(tmp_path: Path) -> None:
    settings = make_settings(tmp_path / "data", flush_interval_s=0.1, compact_min_segments=2)
    server = RunningServer(settings).start()
    httpx.put(f"{server.url}/api/v1/logs/groups/busy", headers=AUTH).raise_for_status()
    acked: list[str] = []
    problems: list[str] = []
    done = threading.Event()

    def write() -> None:
        with httpx.Client(base_url=server.url, headers=AUTH) as client:
            for batch in range(150):
                ids = [f"b{batch}-{i}" for i in range(20)]
                body = b"".join(orjson.dumps({"id": i}) + b"\n" for i in ids)
                response = client.post(
                    "/api/v1/logs/events",
                    params={"group": "busy"},
                    content=body,
                    headers={"Content-Type": "text/plain"},
                )
                assert response.status_code == 200, response.text
                acked.extend(ids)
                if batch % 40 == 0:
                    server.store.compact()
        done.set()

    def read() -> None:
        with httpx.Client(base_url=server.url, headers=AUTH) as client:
            while not done.is_set():
                before = len(acked)
                seen = read_all(client)
                if any(n > 1 for n in seen.values()):
                    problems.append("an event was returned twice")
                if sum(seen.values()) < before:
                    problems.append(f"{before} acknowledged but only {sum(seen.values())} read")

    threads = [threading.Thread(target=write), threading.Thread(target=read)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(120)
    try:
        with httpx.Client(base_url=server.url, headers=AUTH) as client:
            final = read_all(client)
    finally:
        server.stop()
    assert problems == []
    assert sorted(final) == sorted(acked) and set(final.values()) == {1}
    assert server.store.stats()["segments"] >= 1
