"""A real store in a temporary directory, seeded through the real ingest path."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from ingest.decode import decode_events
from store.config import StoreConfig
from store.engine import Store

DATA = Path(__file__).parent.parent / "data" / "queries"
T0 = 1_717_423_200_000  # 2024-06-03 14:00:00.000 UTC
WEB_T0 = T0 + 600_000
INGEST_S = 1_717_430_000.0


def open_store(data_dir: Path) -> Store:
    store = Store(StoreConfig(data_dir, fsync=False), clock=lambda: INGEST_S)
    store.open()
    store.recover()
    return store


def ingest(store: Store, group: str, stream: str, body: bytes, kind: str, now_ms: int) -> None:
    decoded = decode_events(body, kind, now_ms=now_ms)
    assert not decoded.rejected, decoded.rejected
    store.submit_logs(group, stream, decoded.events, decoded.fields, {}).result(10)


def seed(store: Store) -> None:
    """app: JSON events, the first five flushed to Parquet; web: access-log lines."""
    lines = (DATA / "app.ndjson").read_bytes().splitlines()
    ingest(store, "app", "api-1", b"\n".join(lines[:5]), "application/x-ndjson", T0)
    store.flush(force=True)
    ingest(store, "app", "api-2", b"\n".join(lines[5:]), "application/x-ndjson", T0)
    for index, line in enumerate((DATA / "web.log").read_bytes().splitlines()):
        ingest(store, "web", "nginx", line, "text/plain", WEB_T0 + index * 1000)


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Store]:
    opened = open_store(tmp_path_factory.mktemp("data"))
    seed(opened)
    yield opened
    opened.close()
