"""The metric store on real files: durability, crash replay, flush watermark, pruning,
retention, backpressure, ListMetrics, Idempotency-Key, compaction."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import duckdb
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from core.errors import IdempotencyKeyConflict, StorageFull, WatchkeepError
from store.config import StoreConfig
from store.engine import Store
from store.layout import WAL_DIR
from store.metric_lake import DAY_MS, METRICS_TABLE_DIR
from store.metric_model import METRIC_SCHEMA, datum_row
from store.metrics import METRICS_DIR, MetricStore, MetricStoreConfig

NOW_S = 1_767_225_600.0  # 2026-01-01T00:00:00Z
NOW_MS = int(NOW_S * 1000)


class Clock:
    def __init__(self, now_s: float = NOW_S) -> None:
        self.now_s = now_s

    def __call__(self) -> float:
        return self.now_s


class Catalog:
    """The DuckDB database a MetricStore shares (the log store's, in the server)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.db = duckdb.connect(str(path))

    def cursor(self) -> duckdb.DuckDBPyConnection:
        return self.db.cursor()

    def close(self) -> None:
        self.db.close()


@pytest.fixture
def data(tmp_path: Path) -> Path:
    return tmp_path / "data"


def open_store(
    data: Path, clock: Clock | None = None, **config: Any
) -> tuple[MetricStore, Catalog]:
    data.mkdir(parents=True, exist_ok=True)
    catalog = Catalog(data / "catalog.duckdb")
    store = MetricStore(MetricStoreConfig(data, **config), catalog.cursor, clock=clock or Clock())
    store.open()
    store.recover()
    return store, catalog


def close(store: MetricStore, catalog: Catalog) -> None:
    store.close()
    catalog.close()


def crash(store: MetricStore, catalog: Catalog) -> None:
    """Stop without flushing, like kill -9 after the last fsync."""
    assert store._commit is not None
    store._commit.close()
    catalog.close()


def rows(
    name: str = "Latency",
    values: list[float] | None = None,
    *,
    ts_ms: int = NOW_MS - 3_600_000,
    step_ms: int = 60_000,
    namespace: str = "App/Web",
    dimensions: dict[str, str] | None = None,
) -> pa.Table:
    values = [1.0, 2.0, 3.0] if values is None else values
    return pa.Table.from_pylist(
        [
            datum_row(
                namespace=namespace,
                metric_name=name,
                dimensions=dimensions if dimensions is not None else {"Host": "a"},
                ts_ms=ts_ms + i * step_ms,
                values=[v],
            )
            for i, v in enumerate(values)
        ],
        schema=METRIC_SCHEMA,
    )


def put(store: MetricStore, table: pa.Table, **kwargs: Any) -> dict[str, Any]:
    return store.put(table, **kwargs).result(10)


def read(store: MetricStore, start_ms: int = 0, end_ms: int = 10**15) -> list[tuple[Any, ...]]:
    table = store.query(
        start_ms,
        end_ms,
        "SELECT metric_name, dims, ts_ms, sum FROM metrics ORDER BY metric_name, dims, ts_ms",
        [],
    )
    return [tuple(r.values()) for r in table.to_pylist()]


def segment_files(data: Path) -> list[Path]:
    return sorted((data / METRICS_TABLE_DIR).rglob("*.parquet"))


@pytest.fixture
def opened(data: Path) -> Iterator[tuple[MetricStore, Catalog]]:
    store, catalog = open_store(data)
    yield store, catalog
    close(store, catalog)


def test_acknowledged_rows_are_readable_at_once_and_after_a_flush(
    data: Path, opened: tuple[MetricStore, Catalog]
) -> None:
    store, _ = opened
    assert put(store, rows()) == {"accepted": 3}
    expected = [
        ("Latency", "Host=a", NOW_MS - 3_600_000 + i * 60_000, float(i + 1)) for i in range(3)
    ]
    assert read(store) == expected
    assert store.flush(force=True) == 3
    assert read(store) == expected
    (segment,) = segment_files(data)
    assert segment.parent.name == "date=2025-12-31"
    assert pq.read_metadata(segment).row_group(0).column(0).compression == "ZSTD"


def test_segments_are_sorted_by_metric_and_time(
    data: Path, opened: tuple[MetricStore, Catalog]
) -> None:
    store, _ = opened
    put(store, rows("b", [1, 2], ts_ms=NOW_MS - 60_000, step_ms=-60_000))
    put(store, rows("a", [3], dimensions={"Host": "z"}))
    put(store, rows("a", [4], dimensions={"Host": "c"}))
    store.flush(force=True)
    (segment,) = segment_files(data)
    table = pq.read_table(segment)
    keys = list(
        zip(*(table.column(c).to_pylist() for c in ("metric_name", "dims", "ts_ms")), strict=True)
    )
    assert keys == sorted(keys)


def test_rows_survive_close_and_reopen(data: Path) -> None:
    store, catalog = open_store(data)
    put(store, rows())
    close(store, catalog)
    assert not list((data / METRICS_DIR / WAL_DIR).glob("*.wal")), "close flushes and trims the WAL"
    store, catalog = open_store(data)
    assert [r[3] for r in read(store)] == [1.0, 2.0, 3.0]
    close(store, catalog)


def test_crash_without_flush_replays_the_wal_once(data: Path) -> None:
    store, catalog = open_store(data)
    put(store, rows())
    crash(store, catalog)
    assert segment_files(data) == []
    store, catalog = open_store(data)
    assert [r[3] for r in read(store)] == [1.0, 2.0, 3.0]
    crash(store, catalog)  # a second crash before any flush replays the same WAL again
    store, catalog = open_store(data)
    assert [r[3] for r in read(store)] == [1.0, 2.0, 3.0]
    store.flush(force=True)
    assert [r[3] for r in read(store)] == [1.0, 2.0, 3.0]
    close(store, catalog)


def test_replay_after_a_flush_skips_flushed_batches(data: Path) -> None:
    store, catalog = open_store(data)
    put(store, rows("a", [1]))
    store.flush(force=True)
    put(store, rows("b", [2]))
    crash(store, catalog)
    store, catalog = open_store(data)
    assert [(r[0], r[3]) for r in read(store)] == [("a", 1.0), ("b", 2.0)]
    close(store, catalog)


def test_wal_kept_after_a_flush_is_not_replayed_twice(data: Path, tmp_path: Path) -> None:
    """A crash after the catalog commit but before the WAL files are deleted."""
    store, catalog = open_store(data)
    put(store, rows("a", [1, 2]))
    put(store, rows("b", [3]))
    saved = tmp_path / "saved-wal"
    shutil.copytree(data / METRICS_DIR / WAL_DIR, saved)
    store.flush(force=True)
    crash(store, catalog)
    for path in saved.glob("*.wal"):
        shutil.copy(path, data / METRICS_DIR / WAL_DIR / path.name)
    store, catalog = open_store(data)
    assert [(r[0], r[3]) for r in read(store)] == [("a", 1.0), ("a", 2.0), ("b", 3.0)]
    put(store, rows("c", [4]))  # sequence numbers continue past the replayed ones
    crash(store, catalog)
    store, catalog = open_store(data)
    assert [r[3] for r in read(store)] == [1.0, 2.0, 3.0, 4.0]
    close(store, catalog)


def test_segment_written_but_not_cataloged_is_removed_at_open(data: Path) -> None:
    """A crash between writing a segment and committing it: the WAL still holds its rows."""
    store, catalog = open_store(data)
    put(store, rows())
    assert store._lake is not None
    store._lake.write([rows()])  # the file of a flush that never reached the catalog
    (data / METRICS_TABLE_DIR / "date=2025-12-31" / ".half.parquet.tmp").write_bytes(b"x")
    crash(store, catalog)
    store, catalog = open_store(data)
    assert segment_files(data) == []
    assert [r[3] for r in read(store)] == [1.0, 2.0, 3.0]
    close(store, catalog)


def test_torn_wal_tail_is_cut_and_acknowledged_rows_stay(data: Path) -> None:
    store, catalog = open_store(data)
    put(store, rows())
    crash(store, catalog)
    (wal,) = (data / METRICS_DIR / WAL_DIR).glob("*.wal")
    with wal.open("ab") as handle:
        handle.write(b"WKW1\x00\x10half a record")
    store, catalog = open_store(data)
    assert len(read(store)) == 3
    close(store, catalog)


def test_metric_wal_lives_apart_from_the_log_wal(
    data: Path, opened: tuple[MetricStore, Catalog]
) -> None:
    store, _ = opened
    put(store, rows())
    assert list((data / METRICS_DIR / WAL_DIR).glob("*.wal"))
    assert not (data / WAL_DIR).exists()


def test_a_read_opens_only_the_days_it_needs(
    data: Path, opened: tuple[MetricStore, Catalog]
) -> None:
    store, _ = opened
    day1, day2 = NOW_MS - 3 * DAY_MS, NOW_MS - DAY_MS
    put(store, rows("a", [1], ts_ms=day1))
    put(store, rows("a", [2], ts_ms=day2))
    store.flush(force=True)
    files = segment_files(data)
    assert [f.parent.name for f in files] == ["date=2025-12-29", "date=2025-12-31"]
    files[0].unlink()  # a read of day 2 must not even open day 1's file
    assert read(store, day2, day2 + DAY_MS) == [("a", "Host=a", day2, 2.0)]
    with pytest.raises(duckdb.Error):
        read(store, day1, day2 + DAY_MS)


def test_the_range_bounds_the_relation(opened: tuple[MetricStore, Catalog]) -> None:
    store, _ = opened
    put(store, rows(values=[1, 2, 3], ts_ms=NOW_MS - 600_000))
    assert [r[3] for r in read(store, NOW_MS - 540_000, NOW_MS - 480_000)] == [2.0]


def test_memtable_limit_answers_storage_full_until_a_flush(
    opened: tuple[MetricStore, Catalog], data: Path
) -> None:
    store, catalog = open_store(data / "small", max_memtable_bytes=1)
    put(store, rows())
    with pytest.raises(StorageFull) as error:
        store.put(rows())
    assert error.value.retry_after_s > 0 and error.value.status == 503
    assert store.flush() == 3, "a refused put makes the next scheduled flush run at once"
    put(store, rows())
    close(store, catalog)


def test_list_metrics_filters_over_flushed_and_fresh_metrics(data: Path) -> None:
    clock = Clock()
    store, catalog = open_store(data, clock)
    put(store, rows("Latency", [1], dimensions={"Host": "a", "Service": "api"}))
    put(store, rows("Latency", [1], dimensions={"Host": "b"}))
    put(store, rows("Errors", [1], dimensions={}))
    put(store, rows("Cpu", [1], namespace="App/Db", dimensions={"Host": "a"}))
    store.flush(force=True)
    clock.now_s += 4 * 3600
    put(store, rows("Latency", [1], ts_ms=NOW_MS + 4 * 3_600_000, dimensions={"Host": "c"}))

    def names(**filters: Any) -> list[tuple[str, str, str]]:
        return [(m.namespace, m.metric_name, m.dims) for m in store.list_metrics(**filters)]

    assert names() == [
        ("App/Db", "Cpu", "Host=a"),
        ("App/Web", "Errors", ""),
        ("App/Web", "Latency", "Host=a,Service=api"),
        ("App/Web", "Latency", "Host=b"),
        ("App/Web", "Latency", "Host=c"),
    ]
    assert names(namespace="App/Db") == [("App/Db", "Cpu", "Host=a")]
    assert names(metric_name="Latency", dimensions=[("Service", None)]) == [
        ("App/Web", "Latency", "Host=a,Service=api")
    ]
    assert names(dimensions=[("Host", "a")]) == [
        ("App/Db", "Cpu", "Host=a"),
        ("App/Web", "Latency", "Host=a,Service=api"),
    ]
    assert names(dimensions=[("Host", "a"), ("Service", "web")]) == []
    assert names(recently_active=True) == [("App/Web", "Latency", "Host=c")]
    assert names(after=("App/Web", "Latency", "Host=a,Service=api"), limit=1) == [
        ("App/Web", "Latency", "Host=b")
    ]
    assert store.list_metrics(namespace="App/Web", metric_name="Latency")[0].dimensions == {
        "Host": "a",
        "Service": "api",
    }
    close(store, catalog)
    store, catalog = open_store(data, clock)
    assert len(names()) == 5
    close(store, catalog)


def test_idempotency_key_stores_a_batch_once_across_flush_and_reopen(data: Path) -> None:
    store, catalog = open_store(data)
    first = put(store, rows(), response={"accepted": 3, "rejected": []}, idempotency_key="k1")
    again = put(store, rows(), response={"accepted": 3, "rejected": []}, idempotency_key="k1")
    assert first == {"accepted": 3, "rejected": []}
    assert again == {"accepted": 3, "rejected": [], "duplicate": True}
    store.flush(force=True)
    close(store, catalog)
    store, catalog = open_store(data)
    assert put(store, rows(), idempotency_key="k1")["duplicate"] is True
    assert len(read(store)) == 3
    close(store, catalog)


def test_idempotency_keys_keep_their_caller_through_the_wal_and_the_catalog(data: Path) -> None:
    store, catalog = open_store(data)
    put(store, rows(), idempotency_key="k", principal="arn:a", request_body=b"one")
    crash(store, catalog)  # unflushed: the key comes back from the WAL, body hash included
    store, catalog = open_store(data)
    with pytest.raises(IdempotencyKeyConflict):
        put(store, rows(), idempotency_key="k", principal="arn:a", request_body=b"two")
    assert "duplicate" not in put(store, rows(), idempotency_key="k", principal="arn:b")
    close(store, catalog)  # flushed: now from the catalog, body hash included
    store, catalog = open_store(data)
    with pytest.raises(IdempotencyKeyConflict):
        put(store, rows(), idempotency_key="k", principal="arn:a", request_body=b"two")
    again = put(store, rows(), idempotency_key="k", principal="arn:a", request_body=b"one")
    assert again["duplicate"] is True
    assert put(store, rows(), idempotency_key="k", principal="arn:b")["duplicate"] is True
    assert len(read(store)) == 6
    close(store, catalog)


def test_compaction_merges_small_segments_of_a_day(
    data: Path, opened: tuple[MetricStore, Catalog]
) -> None:
    store, _ = opened
    for i in range(10):
        put(store, rows(f"m{i % 3}", [float(i)], ts_ms=NOW_MS - 3_600_000 + i * 60_000))
        store.flush(force=True)
    before = read(store)
    assert store.compact() == 10
    assert store._lake is not None and len(store._lake.all_segments()) == 1
    assert read(store) == before
    store._lake.purge_doomed(0)
    assert len(segment_files(data)) == 1


def test_rows_of_another_shape_are_conformed_or_refused(
    opened: tuple[MetricStore, Catalog],
) -> None:
    store, _ = opened
    reordered = rows().select(list(reversed(METRIC_SCHEMA.names)))
    put(store, reordered)
    assert len(read(store)) == 3
    with pytest.raises(ValueError, match="lack the columns"):
        store.put(rows().drop_columns(["dims"]))


def test_shares_the_log_store_database(tmp_path: Path) -> None:
    """One DuckDB database per data directory: the log store's, with its sandboxing."""
    data = tmp_path / "data"
    logs = Store(StoreConfig(data))
    logs.open()
    logs.recover()
    store = MetricStore(MetricStoreConfig(data), logs.cursor, clock=Clock())
    store.open()
    store.recover()
    put(store, rows())
    store.flush(force=True)
    put(store, rows("b", [5]))
    assert len(read(store)) == 4
    assert store.list_metrics()[0].metric_name == "Latency"
    store.close()
    logs.close()
    logs = Store(StoreConfig(data))
    logs.open()
    logs.recover()
    store = MetricStore(MetricStoreConfig(data), logs.cursor, clock=Clock())
    store.open()
    store.recover()
    assert len(read(store)) == 4
    store.close()
    logs.close()


def test_a_flush_that_fails_for_another_reason_than_space_says_why(
    data: Path, opened: tuple[MetricStore, Catalog]
) -> None:
    store, _ = opened
    put(store, rows())
    blocker = data / METRICS_TABLE_DIR / "date=2025-12-31"
    blocker.parent.mkdir(parents=True, exist_ok=True)
    blocker.write_text("")  # a file where the day's directory belongs
    with pytest.raises(WatchkeepError) as error:
        store.flush(force=True)
    assert not isinstance(error.value, StorageFull), "the disk is not full"
    assert f"File exists [EEXIST] at {blocker}" in error.value.message
    assert error.value.details["errno"] == "EEXIST"
    blocker.unlink()
    assert store.flush(force=True) == 3, "the datapoints stayed in the memtable and the WAL"
