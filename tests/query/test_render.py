"""``render_table`` (a column at a time, Arrow casts) renders exactly as ``render_rows``."""

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


fractions = st.one_of(
    st.floats(allow_nan=False, allow_infinity=False, min_value=-1e22, max_value=1e22),
    st.floats(min_value=1e-9, max_value=1e-3),
    st.floats(min_value=1e8, max_value=2e10),
    st.integers(-(10**7), 10**7).map(lambda i: i / 10),
    st.sampled_from([2.0**53, 2.0**53 + 2, -(2.0**60), 1e16 + 2, 1e21, 1e-7, 1e-4, -0.0]),
)


@settings(max_examples=200, deadline=None)
@given(st.lists(st.tuples(st.integers(0, 2**41), fractions), min_size=1, max_size=30))
def test_render_table_without_nulls_matches_render_rows(rows: list[tuple[int, float]]) -> None:
    columns = [("t", Kind.TS), ("n", Kind.NUM)]
    table = pa.table({"t": [r[0] for r in rows], "n": pa.array([r[1] for r in rows], pa.float64())})
    assert render_table(columns, table) == render_rows(columns, rows)
