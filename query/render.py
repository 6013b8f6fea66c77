"""Result values as the strings GetQueryResults shows (spec §2.4, §13.1). No I/O here."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import Any, cast

import pyarrow as pa
import pyarrow.compute as pc

from ingest.flatten import render_number
from query.values import Kind

__all__ = ["render_rows", "render_table", "render_timestamp", "render_value"]

# Years 1 to 9999, which Arrow's strftime and Python's datetime both render alike.
_FIRST_MS = -62_135_596_800_000
_LAST_MS = 253_402_300_799_999
_EXACT_INT = 2**53

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def render_timestamp(ms: int) -> str:
    """``2024-06-03 14:05:00.000``: UTC, always with milliseconds."""
    try:
        moment = _EPOCH + timedelta(milliseconds=ms)
    except OverflowError:
        return str(ms)
    return (
        f"{moment.year:04d}-{moment.month:02d}-{moment.day:02d} "
        f"{moment.hour:02d}:{moment.minute:02d}:{moment.second:02d}.{ms % 1000:03d}"
    )


def render_value(value: Any, kind: Kind) -> str | None:
    """One value as text; None for a missing value, which the row leaves out."""
    if value is None:
        return None
    if kind is Kind.TS:
        return render_timestamp(int(value))
    if isinstance(value, bool):
        return "1" if value else "0"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        return render_number(value)
    return str(value)


def render_rows(
    columns: Sequence[tuple[str, Kind]], rows: Sequence[Sequence[Any]]
) -> list[list[dict[str, str]]]:
    """Rows of ``{"field", "value"}`` pairs in projection order, nulls left out (spec §13.1)."""
    out: list[list[dict[str, str]]] = []
    for row in rows:
        pairs: list[dict[str, str]] = []
        for (name, kind), value in zip(columns, row, strict=True):
            text = render_value(value, kind)
            if text is not None:
                pairs.append({"field": name, "value": text})
        out.append(pairs)
    return out


def render_table(
    columns: Sequence[tuple[str, Kind]], table: pa.Table
) -> list[list[dict[str, str]]]:
    """``render_rows`` for the first ``len(columns)`` columns of an Arrow table, a column at a
    time: timestamps and integral numbers through Arrow casts, and the ``{field, value}`` pairs
    built a column at a time too, so that thousands of rows cost a few milliseconds."""
    pairs: list[list[dict[str, str] | None]] = []
    nullable = False
    for i, (name, kind) in enumerate(columns):
        texts = _column_texts(table.column(i), kind)
        if table.column(i).null_count or None in texts:
            nullable = True
            pairs.append([None if t is None else {"field": name, "value": t} for t in texts])
        else:
            pairs.append([{"field": name, "value": t} for t in cast("list[str]", texts)])
    if nullable:
        return [[p for p in row if p is not None] for row in zip(*pairs, strict=True)]
    return list(map(list, zip(*pairs, strict=True)))


def _column_texts(column: pa.ChunkedArray, kind: Kind) -> list[str | None]:
    if kind is Kind.TS and pa.types.is_integer(column.type) and _in_years(column):
        # Arrow's cast of a millisecond timestamp to text is ``YYYY-MM-DD HH:MM:SS.mmm``.
        stamps = pc.cast(column, pa.int64()).cast(pa.timestamp("ms"))
        texts: list[str | None] = stamps.cast(pa.string()).to_pylist()
        return texts
    if pa.types.is_floating(column.type) and kind is not Kind.TS:
        return _number_texts(column)
    values = column.to_pylist()
    if pa.types.is_string(column.type) or pa.types.is_large_string(column.type):
        return list(values)
    return [render_value(v, kind) for v in values]


def _number_texts(column: pa.ChunkedArray) -> list[str | None]:
    """Doubles as text, through Arrow casts: the integral ones (below 2^53) as integers, and
    fractions with 1e-4 <= |x| < 1e9 as Arrow's shortest round-trip text, which there is
    ``render_number``'s (no exponent; ``tests/query/test_render.py`` compares them). The rest
    (huge, tiny, NaN, infinities) go through ``render_number``."""
    floats = pc.cast(column, pa.float64())
    size = pc.abs(floats)
    integral = pc.fill_null(
        pc.and_(pc.equal(pc.trunc(floats), floats), pc.less(size, float(_EXACT_INT))), False
    )
    ints = pc.cast(pc.if_else(integral, floats, 0.0), pa.int64()).cast(pa.string())
    plain = pc.cast(floats, pa.string())
    fraction = pc.and_(
        pc.and_(pc.greater_equal(size, 1e-4), pc.less(size, 1e9)),
        pc.invert(pc.match_substring(plain, "e")),
    )
    fraction = pc.fill_null(pc.and_(fraction, pc.invert(integral)), False)
    texts: list[str | None] = pc.if_else(
        integral, ints, pc.if_else(fraction, plain, None)
    ).to_pylist()
    done = pc.sum(pc.cast(pc.or_(integral, fraction), pa.int64())).as_py() or 0
    if done != len(floats) - floats.null_count:
        values = floats.to_pylist()
        for i, text in enumerate(texts):
            value = values[i]
            if text is None and value is not None:
                texts[i] = render_number(value)
    return texts


def _in_years(column: pa.ChunkedArray) -> bool:
    bounds = pc.min_max(column).as_py()
    low, high = bounds["min"], bounds["max"]
    return bool(low is None or (low >= _FIRST_MS and high <= _LAST_MS))
