"""The fields a query starts with: system fields, promoted columns, the overflow map.

DESIGN.md (Contracts) fixes the ``logs`` relation; this maps each field name of the language
(spec §3) to the SQL that reads it. No I/O here.
"""

from __future__ import annotations

from collections.abc import Mapping

from query.compile_options import CompileOptions
from query.expressions import Scope
from query.values import Kind, Params, Value, quote

__all__ = ["FIELDS_MAP", "SYSTEM_COLUMNS", "base_scope", "internal_prefix", "ptr"]

SYSTEM_COLUMNS = frozenset(
    ("log_group", "log_stream", "ts_ms", "ingest_ms", "seq", "message", "message_bytes")
)
FIELDS_MAP = "fields"


def internal_prefix(schema: Mapping[str, str]) -> str:
    """A prefix for internal column names that no column of the schema starts with."""
    prefix = "$"
    while any(name.startswith(prefix) for name in schema):
        prefix += "$"
    return prefix


def ptr() -> Value:
    return Value(
        "to_base64(encode(CAST(seq AS VARCHAR) || ':' || log_group))", Kind.STR, nullable=False
    )


def base_scope(schema: Mapping[str, str], params: Params, options: CompileOptions) -> Scope:
    fields: dict[str, Value] = {
        "@timestamp": Value("ts_ms", Kind.TS, nullable=False),
        "@message": Value("message", Kind.STR, nullable=False),
        "@logStream": Value("log_stream", Kind.STR, nullable=False),
        "@log": Value(f"({params.add(options.account_id + ':')} || log_group)", Kind.STR, False),
        "@ingestionTime": Value("ingest_ms", Kind.TS, nullable=False),
        "@ptr": ptr(),
    }
    for name, arrow_type in schema.items():
        if name in SYSTEM_COLUMNS or name == FIELDS_MAP or name in fields:
            continue
        fields[name] = _column_value(name, arrow_type)
    has_map = FIELDS_MAP in schema
    return Scope(fields=fields, raw=True, field_map=quote(FIELDS_MAP) if has_map else None)


def _column_value(name: str, arrow_type: str) -> Value:
    column = quote(name)
    if arrow_type in ("double", "float", "halffloat"):
        return Value(column, Kind.NUM)
    if arrow_type == "bool":
        return Value(column, Kind.BOOL)
    if arrow_type.startswith(("int", "uint")):
        return Value(f"CAST({column} AS BIGINT)", Kind.INT)
    if arrow_type in ("string", "large_string"):
        return Value(column, Kind.STR)
    return Value(f"CAST({column} AS VARCHAR)", Kind.STR)
