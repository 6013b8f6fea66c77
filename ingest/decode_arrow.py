"""The fast path of ingest decoding: a batch of plain JSON objects read by Arrow as a whole.

Arrow's C++ JSON reader takes the whole batch (it releases the GIL); when it cannot (malformed
lines, types that change between lines, arrays, ``message`` keys...) these functions return
None and ``ingest.decode`` decodes event by event, to the same tables. Performance-critical:
measure before changing anything here. No I/O here.
"""

from __future__ import annotations

from typing import Any

import orjson
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.json as pj

from core.timeparse import MAX_EPOCH_MS, MIN_EPOCH_MS, parse_event_timestamp
from ingest.decode_limits import _Limits
from ingest.flatten import (
    EVENTS_SCHEMA,
    MAX_FIELDS,
    EventTables,
    Rejection,
    empty_table,
    field_name,
    too_large_reason,
)

__all__ = ["_fast_objects", "_fast_on_lines", "_look_like_objects", "_plain_lines"]


_THREADED_BYTES = 4 << 20
_THREADED_BLOCK_BYTES = 1 << 20
# Compute functions get Arrow scalars: a Python number costs ~150 us per call in pyarrow 26
# (it tries to import numpy each time when numpy is not installed).
_MIN_MS_F = pa.scalar(float(MIN_EPOCH_MS), pa.float64())
_MAX_MS_F = pa.scalar(float(MAX_EPOCH_MS), pa.float64())
_ZERO_F = pa.scalar(0.0, pa.float64())
_MIN_US = pa.scalar(MIN_EPOCH_MS * 1000, pa.int64())
_MAX_US = pa.scalar(MAX_EPOCH_MS * 1000 + 999, pa.int64())
_ZERO = pa.scalar(0, pa.int64())
_THOUSAND = pa.scalar(1000, pa.int64())
_FALSE = pa.scalar(False, pa.bool_())
_RFC3339_RE2 = (
    r"^\d{4}-(0[1-9]|1[0-2])-(0[1-9]|[12]\d|3[01])T([01]\d|2[0-3]):[0-5]\d:[0-5]\d"
    r"(\.\d{1,6})?(Z|[+-]([01]\d|2[0-3]):[0-5]\d)$"
)


def _plain_lines(body: bytes) -> pa.BinaryArray | None:
    """The lines of a body in which every line starts with ``{``, split by Arrow; else None."""
    if not body or b"\r" in body:
        return None
    lines = pc.list_flatten(pc.split_pattern(pa.array([body], pa.binary()), b"\n"))
    if body.endswith(b"\n"):
        lines = lines.slice(0, len(lines) - 1)
    if not lines or not pc.all(pc.starts_with(lines, "{")).as_py():
        return None
    return lines


def _look_like_objects(lines: list[bytes]) -> bool:
    return all(line.lstrip(b" \t").startswith(b"{") for line in lines)


def _fast_on_lines(lines: list[bytes], index: list[int], limits: _Limits) -> EventTables | None:
    return _fast_objects(b"\n".join(lines), pa.array(lines, pa.binary()), index, limits)


def _fast_objects(
    body: bytes, lines: pa.BinaryArray, index: list[int] | None, limits: _Limits
) -> EventTables | None:
    """Decode lines that are all JSON objects with Arrow's reader; ``body`` is the lines joined."""
    lengths = pc.binary_length(lines)
    table = _read_arrow(body, pc.max(lengths).as_py())
    if table is None or table.num_rows != len(lines) or "message" in table.column_names:
        return None
    root_keys = frozenset(table.column_names)
    fields = _arrow_fields(table)
    if fields is None:
        return None
    bad: dict[int, str] = {}
    if "timestamp" in table.column_names:
        stamps = _arrow_timestamps(table.column("timestamp"), limits.now_ms)
        if stamps is None:
            return None
        ts, bad = stamps
    else:
        ts = pa.repeat(pa.scalar(limits.now_ms, pa.int64()), len(lines))
    too_big = pc.greater(lengths, pa.scalar(limits.max_event_bytes, pa.int32()))
    if pc.any(too_big).as_py():
        for pos in pc.indices_nonzero(too_big).to_pylist():
            bad[pos] = too_large_reason(lengths[pos].as_py(), limits.max_event_bytes)
    events = pa.Table.from_arrays([ts, lines.view(pa.string()), lengths], schema=EVENTS_SCHEMA)
    rejected = [
        Rejection(pos if index is None else index[pos], reason)
        for pos, reason in sorted(bad.items())
    ]
    if bad:
        keep = pa.array([pos not in bad for pos in range(len(lines))], pa.bool_())
        events = events.filter(keep)
        fields = _drop_null_columns(fields.filter(keep), events.num_rows)
    return EventTables(events, fields, rejected, root_keys)


def _read_arrow(body: bytes, longest_line: int) -> pa.Table | None:
    # Up to a few MiB, in the calling thread (it releases the GIL) as one block: on Arrow's
    # shared CPU pool a request's parse queued behind the flush's sort and Parquet encoding
    # (11 ms of wall time for 0.7 ms of work under load), and concurrent requests already use
    # every core. Only a large body is worth splitting over the pool. A block must hold the
    # longest line.
    threaded = len(body) > _THREADED_BYTES
    block = max(_THREADED_BLOCK_BYTES if threaded else len(body) + 1, longest_line + 2)
    read = pj.ReadOptions(use_threads=threaded, block_size=block)
    schema = _first_line_schema(body[: body.find(b"\n") if b"\n" in body else len(body)])
    try:
        table = pj.read_json(pa.py_buffer(body), read_options=read, parse_options=_parse(schema))
        if _contains(table.schema, pa.types.is_list):
            return None
        if _contains(table.schema, pa.types.is_temporal):
            # Arrow infers timestamps from date-like strings, losing their exact text.
            schema = pa.schema([_as_string(f) for f in table.schema])
            table = pj.read_json(
                pa.py_buffer(body), read_options=read, parse_options=_parse(schema)
            )
    except pa.ArrowException:
        return None
    return table


def _parse(schema: pa.Schema | None) -> pj.ParseOptions:
    if schema is None:
        return pj.ParseOptions()
    return pj.ParseOptions(explicit_schema=schema, unexpected_field_behavior="infer")


def _first_line_schema(line: bytes) -> pa.Schema | None:
    """Types taken from the first line, so Arrow need not guess them (its guess reads dates)."""
    try:
        value = orjson.loads(line)
    except orjson.JSONDecodeError:
        return None
    if not isinstance(value, dict):
        return None
    fields = _declared_fields(value)
    return pa.schema(fields) if fields else None


def _declared_fields(obj: dict[str, Any]) -> list[pa.Field]:
    fields = []
    for key, value in obj.items():
        kind: pa.DataType | None = None
        if isinstance(value, bool):
            kind = pa.bool_()
        elif isinstance(value, int | float):
            kind = pa.float64()
        elif isinstance(value, str):
            kind = pa.string()
        elif isinstance(value, dict) and (children := _declared_fields(value)):
            kind = pa.struct(children)
        if kind is not None:
            fields.append(pa.field(key, kind))
    return fields


def _contains(schema: pa.Schema, predicate: Any) -> bool:
    stack = list(schema.types)
    while stack:
        kind = stack.pop()
        if predicate(kind):
            return True
        if pa.types.is_struct(kind):
            stack.extend(kind.field(i).type for i in range(kind.num_fields))
    return False


def _as_string(f: pa.Field) -> pa.Field:
    if pa.types.is_struct(f.type):
        return f.with_type(
            pa.struct([_as_string(f.type.field(i)) for i in range(f.type.num_fields)])
        )
    return f.with_type(pa.string()) if pa.types.is_temporal(f.type) else f


def _arrow_fields(table: pa.Table) -> pa.Table | None:
    """The flattened, typed and sorted field columns, or None if one needs the per-event path."""
    num_rows = table.num_rows  # flattening away the last column would lose the row count
    while any(pa.types.is_struct(kind) for kind in table.schema.types):
        table = table.flatten()
    columns: dict[str, pa.ChunkedArray] = {}
    for name, column in zip(table.column_names, table.columns, strict=True):
        kind = column.type
        if pa.types.is_null(kind):
            continue
        if pa.types.is_integer(kind):
            column = column.cast(pa.float64(), safe=False)
        elif pa.types.is_floating(kind):
            # Arrow reads NaN and Infinity, which are not JSON; orjson rejects those lines.
            if not pc.all(pc.is_finite(column)).as_py():
                return None
        elif not (pa.types.is_boolean(kind) or pa.types.is_string(kind)):
            return None
        name = field_name(name)
        if name in columns:
            return None
        columns[name] = column
    if len(columns) > MAX_FIELDS:
        return None
    return _drop_null_columns(
        pa.Table.from_arrays([columns[n] for n in sorted(columns)], names=sorted(columns))
        if columns
        else empty_table(num_rows),
        num_rows,
    )


def _drop_null_columns(fields: pa.Table, num_rows: int) -> pa.Table:
    empty = [
        name
        for name, col in zip(fields.column_names, fields.columns, strict=True)
        if col.null_count == num_rows
    ]
    if fields.num_columns == len(empty):
        return empty_table(num_rows)
    return fields.drop_columns(empty) if empty else fields


def _arrow_timestamps(
    column: pa.ChunkedArray, now_ms: int
) -> tuple[pa.Array, dict[int, str]] | None:
    """Event times from the ``timestamp`` column, and the reasons of the rows that have bad ones."""
    col = column.combine_chunks()
    kind = col.type
    if pa.types.is_null(kind):
        return pa.repeat(pa.scalar(now_ms, pa.int64()), len(col)), {}
    if pa.types.is_integer(kind) or pa.types.is_floating(kind):
        as_float = col.cast(pa.float64(), safe=False)
        ok = pc.and_(
            pc.equal(pc.floor(as_float), as_float),
            pc.and_(pc.greater_equal(as_float, _MIN_MS_F), pc.less_equal(as_float, _MAX_MS_F)),
        )
        millis = pc.if_else(ok, as_float, _ZERO_F).cast(pa.int64())
    elif pa.types.is_string(kind) and (parsed := _rfc3339_arrow(col)) is not None:
        millis, ok = parsed
    elif pa.types.is_string(kind) or pa.types.is_boolean(kind):
        return _timestamps_per_row(col.to_pylist(), now_ms)
    else:
        return None
    bad_rows = pc.indices_nonzero(pc.fill_null(pc.invert(ok), _FALSE)).to_pylist()
    bad = {pos: _timestamp_reason(col[pos].as_py()) for pos in bad_rows}
    return pc.fill_null(millis, pa.scalar(now_ms, pa.int64())), bad


def _rfc3339_arrow(col: pa.Array) -> tuple[pa.Array, pa.Array] | None:
    if not pc.all(pc.match_substring_regex(col, _RFC3339_RE2)).as_py():
        return None
    try:
        micros = pc.cast(col, pa.timestamp("us", "UTC")).cast(pa.int64())
    except pa.ArrowInvalid:
        return None
    ok = pc.and_(
        pc.greater_equal(micros, _MIN_US),
        pc.less_equal(micros, _MAX_US),
    )
    # Truncating division: the same as the per-event parser for the times it accepts (>= 0).
    return pc.divide(pc.if_else(ok, micros, _ZERO), _THOUSAND), ok


def _timestamps_per_row(values: list[Any], now_ms: int) -> tuple[pa.Array, dict[int, str]]:
    millis: list[int] = []
    bad: dict[int, str] = {}
    for pos, value in enumerate(values):
        try:
            millis.append(now_ms if value is None else parse_event_timestamp(value))
        except ValueError as exc:
            bad[pos] = str(exc)
            millis.append(0)
    return pa.array(millis, pa.int64()), bad


def _timestamp_reason(value: object) -> str:
    try:
        parse_event_timestamp(value)
    except ValueError as exc:
        return str(exc)
    raise AssertionError(f"timestamp {value!r} was refused by Arrow but is valid")
