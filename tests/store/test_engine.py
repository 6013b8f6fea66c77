"""The storage engine on real files: durability, replay, flush, compaction, retention."""

from __future__ import annotations

from pathlib import Path

import duckdb
import pyarrow as pa
import pytest

from core.errors import NotFound, StorageFull
from store.config import StoreConfig
from store.engine import Store
from store.layout import HOUR_MS, WAL_DIR
from store.log_upkeep import ExpiredPartition


class Clock:
    def __init__(self, now_s: float = 1_800_000_000.0) -> None:
        self.now_s = now_s

    def __call__(self) -> float:
        return self.now_s


def open_store(data_dir: Path, clock: Clock | None = None, **config: object) -> Store:
    store = Store(StoreConfig(data_dir, **config), clock=clock or Clock())  # type: ignore[arg-type]
    store.open()
    store.recover()
    return store


def crash(store: Store) -> None:
    """Stop without flushing, like kill -9 after the last fsync."""
    assert store._commit is not None and store._db is not None
    store._commit.close()
    store._db.close()


def batch(messages: list[str], ts_ms: list[int] | None = None) -> pa.Table:
    ts = ts_ms or [1_000 * (i + 1) for i in range(len(messages))]
    return pa.table(
        {
            "ts_ms": pa.array(ts, pa.int64()),
            "message": pa.array(messages, pa.string()),
            "message_bytes": pa.array([len(m.encode()) for m in messages], pa.int32()),
        }
    )


def append(
    store: Store,
    group: str,
    messages: list[str],
    fields: pa.Table | None = None,
    ts_ms: list[int] | None = None,
    **kwargs: object,
) -> dict:
    events = batch(messages, ts_ms)
    fields = fields if fields is not None else pa.table({"_": pa.nulls(len(messages))}).drop(["_"])
    return store.submit_logs(group, "s", events, fields, {"n": len(messages)}, **kwargs).result(10)  # type: ignore[arg-type]


def rows(store: Store, group: str, columns: str = "seq, message") -> list[tuple]:
    table = store.query_logs([group], 0, 10**15, f"SELECT {columns} FROM logs ORDER BY seq", [])
    return [tuple(r.values()) for r in table.to_pylist()]


def test_acknowledged_events_are_readable_at_once(tmp_path: Path) -> None:
    store = open_store(tmp_path)
    append(store, "g", ["a", "b"])
    assert rows(store, "g") == [(1, "a"), (2, "b")]
    store.close()


def test_replay_after_crash_restores_unflushed_events_once(tmp_path: Path) -> None:
    store = open_store(tmp_path)
    append(store, "g", ["a", "b"])
    store.flush(force=True)
    append(store, "g", ["c"])
    crash(store)

    again = open_store(tmp_path)
    assert rows(again, "g") == [(1, "a"), (2, "b"), (3, "c")]
    append(again, "g", ["d"])
    assert rows(again, "g")[-1] == (4, "d")
    again.close()
    assert rows_after_reopen(tmp_path) == [(1, "a"), (2, "b"), (3, "c"), (4, "d")]


def rows_after_reopen(data_dir: Path) -> list[tuple]:
    store = open_store(data_dir)
    try:
        return rows(store, "g")
    finally:
        store.close()


def test_torn_wal_tail_is_discarded(tmp_path: Path) -> None:
    store = open_store(tmp_path)
    append(store, "g", ["a"])
    crash(store)
    wal = max((tmp_path / WAL_DIR).glob("*.wal"))
    with wal.open("ab") as handle:
        handle.write(b"WKW1\xff\xff\x00\x00garbage")
    again = open_store(tmp_path)
    assert rows(again, "g") == [(1, "a")]
    append(again, "g", ["b"])
    crash(again)
    assert rows_after_reopen(tmp_path) == [(1, "a"), (2, "b")]


def test_segment_written_but_not_cataloged_is_not_duplicated(tmp_path: Path) -> None:
    store = open_store(tmp_path)
    append(store, "g", ["a", "b"])
    # A crash between writing the Parquet file and the catalog commit leaves an orphan.
    state = store._groups["g"]
    store._lake_().write(
        state.row.id, "g", [b.table for b in store._memtable.snapshot(state.row.id)]
    )
    crash(store)
    assert rows_after_reopen(tmp_path) == [(1, "a"), (2, "b")]


def test_field_types_that_clash_across_segments_read_as_text(tmp_path: Path) -> None:
    store = open_store(tmp_path)
    append(store, "g", ["1", "2"], pa.table({"x": pa.array([42.0, 0.5])}))
    store.flush(force=True)
    append(store, "g", ["3", "4"], pa.table({"x": pa.array([True, None])}))
    append(store, "g", ["5"], pa.table({"x": pa.array(["seven"])}))
    assert rows(store, "g", "seq, x") == [(1, "42"), (2, "0.5"), (3, "1"), (4, None), (5, "seven")]
    store.flush(force=True)
    assert rows(store, "g", "seq, x") == [(1, "42"), (2, "0.5"), (3, "1"), (4, None), (5, "seven")]
    store.close()


def test_fields_beyond_the_promotion_limit_go_to_the_map(tmp_path: Path) -> None:
    store = open_store(tmp_path, max_promoted_columns=1)
    fields = pa.table({"a": pa.array([1.0]), "b": pa.array(["x"]), "seq": pa.array(["shadow"])})
    append(store, "g", ["m"], fields)
    assert rows(store, "g", "a, fields") == [(1.0, [("b", "x"), ("seq", "shadow")])]
    store.close()


def test_flush_splits_by_hour_and_sorts_by_time(tmp_path: Path) -> None:
    store = open_store(tmp_path)
    append(store, "g", ["late", "early", "next-hour"], ts_ms=[HOUR_MS - 1, 5, HOUR_MS + 1])
    store.flush(force=True)
    segments = store._lake_().all_segments()
    assert sorted(s.hour_ms for s in segments) == [0, HOUR_MS]
    first = store.query_logs(["g"], 0, HOUR_MS, "SELECT message FROM logs", [])
    assert first.column("message").to_pylist() == ["early", "late"]
    store.close()


def test_compaction_merges_small_segments_and_keeps_every_row(tmp_path: Path) -> None:
    store = open_store(tmp_path, compact_min_segments=2)
    for i in range(4):
        append(store, "g", [f"m{i}"], pa.table({"i": pa.array([float(i)])}))
        store.flush(force=True)
    assert len(store._lake_().all_segments()) == 4
    assert store.compact() == 4
    assert len(store._lake_().all_segments()) == 1
    assert rows(store, "g", "seq, message, i") == [(i + 1, f"m{i}", float(i)) for i in range(4)]
    store.close()
    assert rows_after_reopen(tmp_path) == [(i + 1, f"m{i}") for i in range(4)]


def test_retention_drops_only_whole_expired_partitions(tmp_path: Path) -> None:
    clock = Clock(now_s=10 * 86_400)
    store = open_store(tmp_path, clock)
    now_ms = int(clock.now_s * 1000)
    old, recent = now_ms - 3 * 86_400_000, now_ms - 3_600_000
    append(store, "g", ["old", "recent"], ts_ms=[old, recent])
    store.flush(force=True)
    store.put_retention("g", 1)
    old_hour = old - old % HOUR_MS
    [segment] = [s for s in store._lake_().all_segments() if s.hour_ms == old_hour]
    planned = store.apply_retention(dry_run=True)
    assert planned == [ExpiredPartition("g", old_hour, 1, 1, segment.size_bytes)]
    assert len(store._lake_().all_segments()) == 2
    assert store.apply_retention() == planned
    assert rows(store, "g") == [(2, "recent")]
    store.close()


def test_deleted_group_does_not_come_back_from_the_wal(tmp_path: Path) -> None:
    store = open_store(tmp_path)
    append(store, "g", ["a"])
    store.delete_group("g")
    crash(store)
    again = open_store(tmp_path)
    with pytest.raises(NotFound):
        rows(again, "g")
    again.close()


def test_batch_committed_while_its_group_is_deleted_leaves_the_memtable_on_flush(
    tmp_path: Path,
) -> None:
    store = open_store(tmp_path)
    append(store, "g", ["a"])
    store.flush(force=True)
    assert store._commit is not None
    with store._commit._cond:  # the batch is queued for the WAL when the delete runs
        events = batch(["late"])
        late = store.submit_logs("g", "s", events, events.select([]), {"n": 1})
        store.delete_group("g")
    # The delete came after the request: acknowledging it is right, keeping it is not.
    assert late.result(10) == {"n": 1}
    assert store.stats()["memtable_bytes"] > 0
    store.flush(force=True)
    assert store.stats()["memtable_bytes"] == 0
    assert not store.has_group("g")
    store.close()


def test_idempotency_key_survives_restart(tmp_path: Path) -> None:
    store = open_store(tmp_path)
    assert append(store, "g", ["a"], idempotency_key="k") == {"n": 1}
    store.flush(force=True)
    crash(store)
    again = open_store(tmp_path)
    assert append(again, "g", ["a"], idempotency_key="k") == {"n": 1, "duplicate": True}
    assert rows(again, "g") == [(1, "a")]
    again.close()


def test_memtable_limit_applies_backpressure(tmp_path: Path) -> None:
    store = open_store(tmp_path, max_memtable_bytes=1)
    append(store, "g", ["a"])
    with pytest.raises(StorageFull) as info:
        append(store, "g", ["b"])
    assert info.value.status == 503 and info.value.retry_after_s > 0
    store.flush(force=True)
    append(store, "g", ["b"])
    store.close()


def test_sql_on_the_store_cannot_reach_files_outside_the_data_directory(tmp_path: Path) -> None:
    store = Store(StoreConfig(data_dir=tmp_path / "data"))
    store.open()
    store.recover()
    try:
        outside = tmp_path / "secret.csv"
        outside.write_text("a\n1\n")
        with store.cursor() as cursor:
            for sql in (
                f"SELECT * FROM read_csv('{outside}')",
                "SELECT * FROM read_text('/etc/passwd')",
                f"COPY (SELECT 1) TO '{tmp_path / 'out.csv'}'",
                f"ATTACH '{tmp_path / 'other.duckdb'}'",
            ):
                with pytest.raises(duckdb.PermissionException):
                    cursor.execute(sql)
    finally:
        store.close()


def test_a_recreated_group_is_a_new_incarnation_within_the_same_millisecond(
    tmp_path: Path,
) -> None:
    store = open_store(tmp_path)  # the clock stands still
    append(store, "g", ["old"])
    first = store.incarnation("g"), store.get_group("g").created_ms
    store.delete_group("g")
    append(store, "g", ["new"])
    second = store.incarnation("g"), store.get_group("g").created_ms
    assert second[1] == first[1], "same creation time: it cannot tell the two apart"
    assert second[0] != first[0]
    store.close()
    again = open_store(tmp_path)
    assert again.incarnation("g") == second[0]
    again.close()
