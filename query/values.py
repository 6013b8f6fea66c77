"""Dynamic typing in SQL: value kinds, conversions between them, and the natural sort order.

Logs Insights is dynamically typed (spec §2.2). The compiler tracks the *static* kind of every
expression and emits SQL that converts where the spec says so: strings read as numbers only when
the whole string is number text (§2.2), numbers render as text by §2.4, timestamps are BIGINT
epoch milliseconds until they are shown. Parameters are collected by ``Params``: SQL fragments
carry markers, and ``Params.finish`` turns them into ``?`` in text order. No I/O here.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field
from enum import Enum
from typing import Any

__all__ = [
    "NUMBER_TEXT",
    "Kind",
    "Params",
    "Value",
    "natural_key",
    "order_columns",
    "quote",
    "reads_as_number",
    "sort_key",
    "sort_term",
    "sql_string",
    "to_bool",
    "to_num",
    "to_str",
]

# Spec §2.2 number-text, for RE2 (regexp_full_match) and Python alike.
NUMBER_TEXT = r"[-+]?(\d+\.?\d*|\.\d+)([eE][-+]?\d+)?"
_NUMBER = re.compile(NUMBER_TEXT, re.ASCII)

TIMESTAMP_FORMAT = "%Y-%m-%d %H:%M:%S.%g"


class Kind(Enum):
    """The static kind of an expression and the SQL type that carries it."""

    NUM = "DOUBLE"
    INT = "BIGINT"
    STR = "VARCHAR"
    BOOL = "BOOLEAN"
    TS = "TIMESTAMP_MS"  # carried as BIGINT epoch milliseconds
    NULL = "NULL"

    @property
    def numeric(self) -> bool:
        return self in (Kind.NUM, Kind.INT, Kind.BOOL, Kind.TS)


@dataclass(frozen=True, slots=True)
class Value:
    """A compiled expression: SQL text, its kind, and the Python value if it is a literal."""

    sql: str
    kind: Kind
    nullable: bool = True
    const: Any = None
    is_const: bool = False
    # Expensive to compute (a parse capture): DuckDB inlines a stage's columns into later
    # filters and evaluates each copy, so conversions read such a value only once.
    costly: bool = False


def reads_as_number(text: str) -> bool:
    return _NUMBER.fullmatch(text) is not None


def quote(name: str) -> str:
    """A quoted SQL identifier."""
    return '"' + name.replace('"', '""') + '"'


def sql_string(text: str) -> str:
    """A SQL string literal, for compiler constants only: query values go through ``Params``."""
    return "'" + text.replace("'", "''") + "'"


_MARK = "\x00"


@dataclass(slots=True)
class Params:
    """Query values as bound parameters, in the order their markers appear in the text."""

    values: list[Any] = field(default_factory=list)

    def add(self, value: Any) -> str:
        self.values.append(value)
        return f"{_MARK}{len(self.values) - 1}{_MARK}"

    def finish(self, text: str) -> tuple[str, list[Any]]:
        parts = text.split(_MARK)
        out: list[str] = []
        params: list[Any] = []
        for index, part in enumerate(parts):
            if index % 2:
                out.append("?")
                params.append(self.values[int(part)])
            else:
                out.append(part)
        return "".join(out), params


def literal(params: Params, value: Any) -> Value:
    """A literal from the query as a parameter."""
    if value is None:
        return Value("NULL", Kind.NULL, const=None, is_const=True)
    if isinstance(value, bool):
        return Value(params.add(value), Kind.BOOL, nullable=False, const=value, is_const=True)
    if isinstance(value, int | float):
        return Value(
            params.add(float(value)), Kind.NUM, nullable=False, const=float(value), is_const=True
        )
    return Value(params.add(str(value)), Kind.STR, nullable=False, const=str(value), is_const=True)


# ---- conversions ----------------------------------------------------------------------------


def _number_shape(sql: str) -> str:
    """Whether text that DuckDB's TRY_CAST reads as a DOUBLE is also spec §2.2 number-text.

    TRY_CAST also accepts surrounding whitespace, ``nan``, ``inf[inity]``, ``1_000`` and ``+-1``;
    a first character in ``[0-9+-.]``, a last one in ``[0-9.]``, no ``_`` and no ``+-`` start
    rule those out. This is
    about twice as fast as matching the number-text regex.
    """
    first, last = f"left({sql}, 1)", f"right({sql}, 1)"
    return (
        f"({first} BETWEEN '0' AND '9' OR {first} IN ('+', '-', '.')) "
        f"AND ({last} BETWEEN '0' AND '9' OR {last} = '.') AND NOT contains({sql}, '_') "
        f"AND NOT starts_with({sql}, '+-')"
    )


# The whole of a string that reads as a number, else '': one read of the value.
_NUMBER_MATCH = "regexp_extract({}, '^(?:" + NUMBER_TEXT + ")$', 0)"


def is_number_sql(value: Value) -> str:
    """SQL that is true when the value reads as a number (spec §2.2), null when it is null."""
    if value.kind is Kind.STR and value.costly:
        return f"({_NUMBER_MATCH.format(value.sql)} <> '')"
    if value.kind is Kind.STR:
        return f"({_number_shape(value.sql)} AND TRY_CAST({value.sql} AS DOUBLE) IS NOT NULL)"
    if value.kind is Kind.NULL:
        return "CAST(NULL AS BOOLEAN)"
    return f"({value.sql} IS NOT NULL)" if value.nullable else "true"


def to_num(value: Value, params: Params) -> str:
    """The value as a DOUBLE; null when it does not read as a number."""
    match value.kind:
        case Kind.NUM:
            return value.sql
        case Kind.INT | Kind.TS | Kind.BOOL:
            return f"CAST({value.sql} AS DOUBLE)"
        case Kind.STR:
            if value.is_const:
                text = str(value.const)
                return params.add(float(text)) if reads_as_number(text) else "CAST(NULL AS DOUBLE)"
            if value.costly:
                return f"TRY_CAST({_NUMBER_MATCH.format(value.sql)} AS DOUBLE)"
            return f"CASE WHEN {_number_shape(value.sql)} THEN TRY_CAST({value.sql} AS DOUBLE) END"
        case Kind.NULL:
            return "CAST(NULL AS DOUBLE)"


def render_double_sql(sql: str) -> str:
    """A DOUBLE as text: integral values below 2^53 without a fraction (spec §2.4)."""
    return (
        f"CASE WHEN {sql} = trunc({sql}) AND abs({sql}) < 9007199254740992 "
        f"THEN CAST(CAST({sql} AS BIGINT) AS VARCHAR) ELSE CAST({sql} AS VARCHAR) END"
    )


def to_str(value: Value) -> str:
    """The value as VARCHAR, rendered as results show it (spec §2.4)."""
    match value.kind:
        case Kind.STR:
            return value.sql
        case Kind.NUM:
            return render_double_sql(value.sql)
        case Kind.INT:
            return f"CAST({value.sql} AS VARCHAR)"
        case Kind.BOOL:
            return f"CASE WHEN {value.sql} THEN '1' WHEN NOT {value.sql} THEN '0' END"
        case Kind.TS:
            return f"strftime(epoch_ms({value.sql}), {sql_string(TIMESTAMP_FORMAT)})"
        case Kind.NULL:
            return "CAST(NULL AS VARCHAR)"


def to_bool(value: Value, params: Params) -> str:
    """The value as a condition (spec §7.3): numbers are true when non-zero, null is not true."""
    match value.kind:
        case Kind.BOOL:
            return value.sql
        case Kind.NUM | Kind.INT | Kind.TS:
            return f"({value.sql} <> 0)"
        case Kind.STR:
            return f"({to_num(value, params)} <> 0)"
        case Kind.NULL:
            return "CAST(NULL AS BOOLEAN)"


def unify(values: list[Value]) -> tuple[list[str], Kind]:
    """SQL for values that must share one type (coalesce, if, case): their kind, or text."""
    kinds = {v.kind for v in values} - {Kind.NULL}
    if len(kinds) == 1:
        kind = kinds.pop()
        return [
            v.sql if v.kind is kind else f"CAST(NULL AS {_sql_type(kind)})" for v in values
        ], kind
    if not kinds:
        return ["NULL" for _ in values], Kind.NULL
    if kinds <= {Kind.NUM, Kind.INT}:
        return [v.sql if v.kind is Kind.NUM else f"CAST({v.sql} AS DOUBLE)" for v in values], (
            Kind.NUM
        )
    return [to_str(v) for v in values], Kind.STR


def _sql_type(kind: Kind) -> str:
    return "BIGINT" if kind is Kind.TS else kind.value


# ---- natural order (spec §11) ---------------------------------------------------------------

# A digit run becomes "0" + its length (6 digits) + the digits, so that shorter runs sort first
# and equal lengths sort by value, while a digit run still compares with other text as a digit
# would. Every chunk ends with \x01, so a chunk that is a prefix of another sorts first.
_CHUNK_KEY = (
    "array_to_string(list_transform(regexp_extract_all({v}, '[0-9]+|[^0-9]+'), "
    "lambda c: CASE WHEN c[1] BETWEEN '0' AND '9' "
    "THEN '0' || lpad(CAST(length(c) AS VARCHAR), 6, '0') || c ELSE c END || chr(1)), '')"
)


def natural_key(value: Value) -> str:
    """A text key whose plain order is the natural order of non-number strings (spec §11.4)."""
    return _CHUNK_KEY.format(v=value.sql)


def sort_key(value: Value, params: Params) -> str:
    """One SQL value whose order is the natural order of ``value`` (spec §11), null if missing.

    Numbers, timestamps and booleans are their own key. A string's key is a struct: whether it
    reads as a number (non-numbers first), the number, then its text (numbers) or chunk key.
    """
    if value.kind is not Kind.STR:
        return value.sql
    return f"CASE WHEN {value.sql} IS NOT NULL THEN {natural_struct(value, params)} END"


def sort_term(key: str, *, descending: bool) -> str:
    """An ORDER BY term: missing values last in both directions (spec §11.1)."""
    return f"{key} {'DESC' if descending else 'ASC'} NULLS LAST"


def natural_struct(value: Value, params: Params) -> str:
    """One comparable key for the natural ascending order, for arg_min / arg_max."""
    number = to_num(value, params)
    return (
        f"{{'n': {number} IS NOT NULL, 'v': {number}, "
        f"'t': CASE WHEN {number} IS NOT NULL THEN {value.sql} ELSE {natural_key(value)} END}}"
    )


def order_columns(order: list[str], out: Callable[[str], str]) -> tuple[list[str], list[str]]:
    """Sort terms as hidden columns of the last stage, and ORDER BY terms that use them."""
    columns: list[str] = []
    terms: list[str] = []
    for index, term in enumerate(order):
        expr, direction = _split_term(term)
        name = out(f"r{index}")
        columns.append(f"{expr} AS {name}")
        terms.append(f"{name} {direction}")
    return columns, terms


def _split_term(term: str) -> tuple[str, str]:
    for suffix in (" ASC NULLS LAST", " DESC NULLS LAST", " ASC", " DESC"):
        if term.endswith(suffix):
            return term[: -len(suffix)], suffix.strip()
    return term, "ASC"
