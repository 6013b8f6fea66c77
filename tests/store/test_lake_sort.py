"""Segments are written in (ts_ms, seq) order, whatever order the batches arrive in."""

from __future__ import annotations

import pyarrow as pa
from hypothesis import given
from hypothesis import strategies as st

from store.lake import _sorted_by_time

# Few distinct times, so that equal times (ordered by seq) are common.
rows = st.lists(
    st.tuples(st.integers(0, 5), st.integers(0, 10**6)), max_size=60, unique_by=lambda r: r[1]
)


def chunked(pairs: list[tuple[int, int]], chunk: int) -> pa.Table:
    batches = [
        pa.record_batch(
            {
                "ts_ms": pa.array([ts for ts, _ in part], pa.int64()),
                "seq": pa.array([seq for _, seq in part], pa.int64()),
                "message": pa.array([f"{ts}/{seq}" for ts, seq in part]),
            }
        )
        for part in (pairs[i : i + chunk] for i in range(0, len(pairs), chunk))
    ]
    schema = pa.schema({"ts_ms": pa.int64(), "seq": pa.int64(), "message": pa.string()})
    return pa.Table.from_batches(batches, schema=schema)


def as_rows(table: pa.Table) -> list[tuple[int, int, str]]:
    return list(
        zip(*(table.column(n).to_pylist() for n in ("ts_ms", "seq", "message")), strict=True)
    )


@given(rows, st.integers(1, 7), st.booleans())
def test_sorted_by_time_and_seq(
    pairs: list[tuple[int, int]], chunk: int, in_seq_order: bool
) -> None:
    if in_seq_order:  # a flush: the memtable's batches are in commit order
        pairs = [(ts, seq) for (ts, _), seq in zip(pairs, range(len(pairs)), strict=True)]
    table = chunked(pairs, chunk)
    assert as_rows(_sorted_by_time(table)) == sorted(as_rows(table))
