"""The shape of the log table: system columns, promoted field columns, the overflow map.

A stored row carries the system columns of DESIGN.md's contract, then up to
``MAX_PROMOTED_COLUMNS`` discovered fields as columns of their own (named by dot path, typed
DOUBLE, BOOLEAN or VARCHAR), then ``fields``, a ``MAP(VARCHAR, VARCHAR)`` for the long tail.
No I/O here.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

import pyarrow as pa
import pyarrow.compute as pc

MAX_PROMOTED_COLUMNS = 256
FIELDS_MAP_COLUMN = "fields"

FIELDS_MAP_TYPE = pa.map_(pa.string(), pa.string())

# What the decoder hands the store, in this order, before the store adds its own columns.
EVENT_SCHEMA = pa.schema(
    [
        pa.field("log_stream", pa.string(), nullable=False),
        pa.field("ts_ms", pa.int64(), nullable=False),
        pa.field("message", pa.string(), nullable=False),
        pa.field("message_bytes", pa.int32(), nullable=False),
    ]
)

SYSTEM_SCHEMA = pa.schema(
    [
        pa.field("log_group", pa.string(), nullable=False),
        pa.field("log_stream", pa.string(), nullable=False),
        pa.field("ts_ms", pa.int64(), nullable=False),
        pa.field("ingest_ms", pa.int64(), nullable=False),
        pa.field("seq", pa.int64(), nullable=False),
        pa.field("message", pa.string(), nullable=False),
        pa.field("message_bytes", pa.int32(), nullable=False),
    ]
)
SYSTEM_COLUMNS = tuple(SYSTEM_SCHEMA.names)

# A discovered field with one of these names would shadow a column of the table, so it is
# never promoted: it lives in the ``fields`` map instead.
RESERVED_NAMES = frozenset((*SYSTEM_COLUMNS, FIELDS_MAP_COLUMN))

FIELD_TYPES = (pa.float64(), pa.bool_(), pa.string())


def empty_log_table() -> pa.Table:
    """A zero-row table with every system column and the overflow map."""
    schema = SYSTEM_SCHEMA.append(pa.field(FIELDS_MAP_COLUMN, FIELDS_MAP_TYPE))
    return schema.empty_table()


def render_as_string(array: pa.Array | pa.ChunkedArray) -> pa.Array | pa.ChunkedArray:
    """A field column rendered as text, the way results show it (spec §2.4).

    Numbers use Arrow's shortest round-trip rendering (``42``, ``0.1``) and booleans become
    ``1``/``0``, so a field whose type varies reads the same whichever segment it came from.
    """
    if pa.types.is_string(array.type):
        return array
    if pa.types.is_boolean(array.type):
        return pc.if_else(array, "1", "0")
    return pc.cast(array, pa.string())


def field_types(tables: Iterable[pa.Schema]) -> dict[str, set[pa.DataType]]:
    """Every non-system column's set of types across several schemas."""
    seen: dict[str, set[pa.DataType]] = {}
    for schema in tables:
        for field in schema:
            if field.name in RESERVED_NAMES:
                continue
            seen.setdefault(field.name, set()).add(field.type)
    return seen


def clashing_columns(types: Mapping[str, set[pa.DataType]]) -> set[str]:
    return {name for name, kinds in types.items() if len(kinds) > 1}


def unify(tables: list[pa.Table]) -> pa.Table:
    """Concatenate tables whose field columns may differ: union by name, text where types clash."""
    clashes = clashing_columns(field_types(t.schema for t in tables))
    if clashes:
        tables = [_render_columns(t, clashes) for t in tables]
    return pa.concat_tables(tables, promote_options="permissive")


def _render_columns(table: pa.Table, names: set[str]) -> pa.Table:
    for name in names & set(table.column_names):
        index = table.schema.get_field_index(name)
        table = table.set_column(index, name, render_as_string(table.column(index)))
    return table
