"""Reads after a sequence cursor (``query_logs(after_seq=...)``) and the metadata high-water
mark: pruning leaves out memtable batches and segments, never rows."""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any

import duckdb
import pyarrow as pa
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from store.engine import Store
from store.layout import HOUR_MS
from store.memtable import MemBatch, Memtable
from tests.store.test_engine import Clock, append, open_store

GROUPS = ("g", "h")
ALL_TIME = (0, 10**15)


def after_sql(cursor: dict[str, int]) -> tuple[str, list[Any]]:
    """The exact filter a follower runs: each group's events after its number."""
    terms = " OR ".join("(log_group = ? AND seq > ?)" for _ in cursor)
    params: list[Any] = [v for item in sorted(cursor.items()) for v in item]
    sql = f"SELECT log_group, seq, ts_ms, message FROM logs WHERE {terms} ORDER BY log_group, seq"
    return sql, params


def read_after(store: Store, cursor: dict[str, int], *, prune: bool) -> list[tuple]:
    sql, params = after_sql(cursor)
    hint = cursor if prune else None
    table = store.query_logs(
        list(cursor), *ALL_TIME, sql, params, newest_first=False, after_seq=hint
    )
    return [tuple(row.values()) for row in table.to_pylist()]


def mem_batch(first_seq: int, last_seq: int) -> MemBatch:
    return MemBatch(
        pa.table({"seq": list(range(first_seq, last_seq + 1))}), first_seq, last_seq, None
    )


@pytest.mark.parametrize(
    ("after_seq", "kept"),
    [(None, [1, 4, 5]), (0, [1, 4, 5]), (2, [1, 4, 5]), (3, [4, 5]), (4, [5]), (8, [5]), (9, [])],
    ids=["none", "zero", "inside-first", "end-of-first", "single", "inside-last", "end"],
)
def test_memtable_snapshot_keeps_batches_after_the_cursor(
    after_seq: int | None, kept: list[int]
) -> None:
    memtable = Memtable()
    for first, last in [(1, 3), (4, 4), (5, 9)]:
        memtable.append(7, mem_batch(first, last))
    assert [b.first_seq for b in memtable.snapshot(7, after_seq=after_seq)] == kept
    assert memtable.last_seq(7) == 9
    assert memtable.last_seq(8) is None


# One operation on the store: append n events to a group at an hour, flush, or compact.
_append = st.tuples(
    st.just("append"), st.sampled_from(GROUPS), st.integers(1, 4), st.integers(0, 2)
)
_ops = st.lists(st.one_of(_append, st.just(("flush",)), st.just(("compact",))), max_size=14)
_cursor = st.one_of(st.none(), st.integers(0, 30))


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    ops=_ops,
    cursors=st.tuples(_cursor, _cursor),
    hours=st.tuples(st.integers(0, 2), st.integers(1, 3)),
)
def test_pruned_reads_give_the_same_rows(
    ops: list[tuple[Any, ...]], cursors: tuple[int | None, int | None], hours: tuple[int, int]
) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        store = open_store(Path(tmp), fsync=False, compact_min_segments=2)
        try:
            for group_name in GROUPS:
                store.create_group(group_name)
            model: list[tuple[str, int, int, str]] = []
            next_seq = dict.fromkeys(GROUPS, 1)
            for op in ops:
                if op[0] == "append":
                    _, group, count, hour = op
                    messages = [f"{group}{next_seq[group] + i}" for i in range(count)]
                    # Time runs backwards in a batch and batches land in different hours, so
                    # flushes sort and split them: segments' seq ranges interleave.
                    ts = [hour * HOUR_MS + 1_000 * (count - i) for i in range(count)]
                    append(store, group, messages, ts_ms=ts)
                    for i, (message, ts_ms) in enumerate(zip(messages, ts, strict=True)):
                        model.append((group, next_seq[group] + i, ts_ms, message))
                    next_seq[group] += count
                elif op[0] == "flush":
                    store.flush(force=True)
                else:
                    store.compact()
            # A group without a number in the hint is read whole; the SQL still filters it.
            hint = {g: c for g, c in zip(GROUPS, cursors, strict=True) if c is not None}
            cursor = {g: hint.get(g, 0) for g in GROUPS}
            span = (hours[0] * HOUR_MS, (hours[0] + hours[1]) * HOUR_MS)
            sql, params = after_sql(cursor)
            pruned = store.query_logs(
                list(GROUPS), *span, sql, params, newest_first=False, after_seq=hint
            )
            whole = store.query_logs(list(GROUPS), *span, sql, params, newest_first=False)
            expected = sorted(
                row for row in model if row[1] > cursor[row[0]] and span[0] <= row[2] < span[1]
            )
            assert [tuple(r.values()) for r in pruned.to_pylist()] == expected
            assert pruned.equals(whole)
            assert store.high_water_seq(list(GROUPS)) == {g: next_seq[g] - 1 for g in GROUPS}
        finally:
            store.close()


def test_pruned_segments_are_not_read(tmp_path: Path) -> None:
    store = open_store(tmp_path, fsync=False)
    append(store, "g", ["a", "b"])
    store.flush(force=True)
    (first,) = store._snapshot(["g"], *ALL_TIME, newest_first=False)[0]
    append(store, "g", ["c", "d"])
    store.flush(force=True)
    append(store, "g", ["e"])
    assert first.max_seq == 2
    # The file of the segment behind the cursor disappears: a read that opened it would fail.
    (tmp_path / first.path).unlink()
    assert read_after(store, {"g": 2}, prune=True) == [
        ("g", 3, 1_000, "c"),
        ("g", 4, 2_000, "d"),
        ("g", 5, 1_000, "e"),
    ]
    assert read_after(store, {"g": 3}, prune=True) == [("g", 4, 2_000, "d"), ("g", 5, 1_000, "e")]
    with pytest.raises(duckdb.IOException):
        read_after(store, {"g": 2}, prune=False)
    store.close()


def test_pruned_memtable_batches_are_not_handed_to_duckdb(tmp_path: Path) -> None:
    store = open_store(tmp_path, fsync=False)
    for i in range(100):
        append(store, "g", [f"m{i}"] * 10)
    store.flush(force=True)
    for i in range(100, 200):
        append(store, "g", [f"m{i}"] * 10)
    segments, mem = store._snapshot(["g"], *ALL_TIME, newest_first=False, after_seq={"g": 1_995})
    assert (len(segments), len(mem)) == (0, 1)
    segments, mem = store._snapshot(["g"], *ALL_TIME, newest_first=False, after_seq={"g": 900})
    assert (len(segments), len(mem)) == (1, 100)
    segments, mem = store._snapshot(["g"], *ALL_TIME, newest_first=False, after_seq={"g": 2_000})
    assert (len(segments), len(mem)) == (0, 0)
    assert read_after(store, {"g": 2_000}, prune=True) == []
    assert read_after(store, {"g": 1_998}, prune=True) == [
        ("g", 1_999, 9_000, "m199"),
        ("g", 2_000, 10_000, "m199"),
    ]
    store.close()


def test_high_water_seq_comes_from_metadata(tmp_path: Path) -> None:
    clock = Clock()
    store = open_store(tmp_path, clock, fsync=False)
    store.create_group("empty")
    append(store, "g", ["a", "b", "c"])
    assert store.high_water_seq(["empty", "g"]) == {"empty": 0, "g": 3}
    store.flush(force=True)
    assert store.high_water_seq(["g"]) == {"g": 3}  # from the segment index now
    append(store, "g", ["late"], ts_ms=[1])
    store.flush(force=True)
    append(store, "g", ["d"])
    assert store.high_water_seq(["g"]) == {"g": 5}
    full_scan = store.query_logs(["g"], *ALL_TIME, "SELECT max(seq) AS seq FROM logs", [])
    assert full_scan.to_pylist() == [{"seq": 5}]
    # A re-created group starts its sequence again.
    store.delete_group("g")
    clock.now_s += 1
    append(store, "g", ["new"])
    assert store.high_water_seq(["g"]) == {"g": 1}
    store.close()
    reopened = open_store(tmp_path, clock, fsync=False)
    assert reopened.high_water_seq(["empty", "g"]) == {"empty": 0, "g": 1}
    reopened.close()
