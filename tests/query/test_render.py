"""``render_table`` (a column at a time, Arrow strftime) renders exactly as ``render_rows``."""

from __future__ import annotations

import pyarrow as pa
from hypothesis import given, settings
from hypothesis import strategies as st

from query.render import render_rows, render_table
from query.values import Kind

timestamps = st.one_of(st.none(), st.integers(-(2**62), 2**62), st.integers(-(10**13), 10**13))
numbers = st.one_of(st.none(), st.floats(), st.integers(-(2**60), 2**60).map(float))
texts = st.one_of(st.none(), st.text(max_size=5))
flags = st.one_of(st.none(), st.booleans())
counts = st.one_of(st.none(), st.integers(-(2**63), 2**63 - 1))
COLUMNS = [("t", Kind.TS), ("n", Kind.NUM), ("s", Kind.STR), ("b", Kind.BOOL), ("i", Kind.INT)]
TYPES = [pa.int64(), pa.float64(), pa.string(), pa.bool_(), pa.int64()]


@settings(max_examples=200, deadline=None)
@given(st.lists(st.tuples(timestamps, numbers, texts, flags, counts), max_size=20))
def test_render_table_matches_render_rows(rows: list[tuple[object, ...]]) -> None:
    arrays = [pa.array([row[i] for row in rows], type_) for i, type_ in enumerate(TYPES)]
    table = pa.Table.from_arrays(arrays, names=[name for name, _ in COLUMNS])
    assert render_table(COLUMNS, table) == render_rows(COLUMNS, rows)
