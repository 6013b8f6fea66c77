"""Filter pattern -> a SQL predicate over the raw ``message`` column, for FilterLogEvents.

The store runs the predicate in DuckDB; every value from the pattern is a ``?`` parameter.
Each piece mirrors a function of ``ingest.filter_pattern.matching``. No I/O here.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from ingest.filter_pattern.nodes import (
    FIELD_RE,
    NUMBER_RE,
    FieldAll,
    FieldAny,
    FieldCompare,
    FieldExpr,
    FilterPattern,
    JsonAll,
    JsonAny,
    JsonExpr,
    JsonPattern,
    JsonTest,
    MatchAll,
    Selector,
    SpacePattern,
    TextPattern,
    Value,
)
from ingest.filter_pattern.parse import parse_filter_pattern

_WRAPPED_RE = r'(?s)(".*"|\[.*\])'


@dataclass(frozen=True, slots=True)
class _Sql:
    """A piece of SQL and its ``?`` parameters; repeating a piece repeats its parameters."""

    text: str
    params: tuple[Any, ...] = ()


def _param(value: Any) -> _Sql:
    return _Sql("?", (value,))


def _literal_sql(text: str) -> _Sql:
    # Only for constants of this module (regexes), never for anything from the pattern.
    return _Sql("'" + text.replace("'", "''") + "'")


def _sql(template: str, *parts: _Sql | str) -> _Sql:
    """Fill each ``{}`` of ``template`` with a part, gathering parameters in text order."""
    pieces = template.split("{}")
    assert len(pieces) == len(parts) + 1, template
    text, params = pieces[0], list[Any]()
    for part, piece in zip(parts, pieces[1:], strict=True):
        part = _Sql(part) if isinstance(part, str) else part
        text += part.text + piece
        params += part.params
    return _Sql(text, tuple(params))


def _join(separator: str, parts: list[_Sql]) -> _Sql:
    return _sql(separator.join("{}" for _ in parts), *parts)


def compile_filter_sql(
    pattern: FilterPattern | str, column: str = "message"
) -> tuple[str, list[Any]]:
    """A boolean SQL predicate over the raw event text in ``column``, with ``?`` parameters."""
    if isinstance(pattern, str):
        pattern = parse_filter_pattern(pattern)
    if not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", column):
        raise ValueError(f"not a plain column name: {column!r}")
    message = _Sql(f'"{column}"')
    match pattern:
        case MatchAll():
            predicate = _Sql("TRUE")
        case TextPattern():
            predicate = _text_sql(pattern, message)
        case JsonPattern():
            # The THEN branch only runs on valid JSON, so json_type and friends cannot raise.
            predicate = _sql(
                "CASE WHEN json_valid({}) THEN coalesce(json_type({}) = 'OBJECT' AND {}, false) "
                "ELSE false END",
                message,
                message,
                _json_sql(pattern.condition, message),
            )
        case SpacePattern():
            predicate = _space_sql(pattern, message)
    return predicate.text, list(predicate.params)


def _text_sql(pattern: TextPattern, message: _Sql) -> _Sql:
    def contains(term: str) -> _Sql:
        return _sql("contains({}, {})", message, _param(term))

    parts = [contains(t) for t in pattern.required]
    if pattern.optional:
        parts.append(_sql("({})", _join(" OR ", [contains(t) for t in pattern.optional])))
    parts += [_sql("NOT {}", contains(t)) for t in pattern.excluded]
    return _join(" AND ", parts) if parts else _Sql("TRUE")


def _match_text_sql(value: Value, text: _Sql) -> _Sql:
    if value.wild_start and value.wild_end:
        return _sql("contains({}, {})", text, _param(value.text))
    if value.wild_start:
        return _sql("ends_with({}, {})", text, _param(value.text))
    if value.wild_end:
        return _sql("starts_with({}, {})", text, _param(value.text))
    return _sql("{} = {}", text, _param(value.text))


def _condition_sql(op: str, value: Value, is_string: _Sql, text: _Sql, number: _Sql) -> _Sql:
    """Mirror of ``_condition_holds``; every piece is coalesced so that NOT stays two-valued."""
    if value.number is not None:
        compare = "=" if op == "!=" else op
        holds = _sql(
            f"coalesce(isfinite({{}}) AND {{}} {compare} {{}}, false)",
            number,
            number,
            _param(value.number),
        )
        return _sql("NOT {}", holds) if op == "!=" else holds
    if value.any_scalar:
        equal = _Sql("TRUE")
    else:
        equal = _sql("coalesce({} AND {}, false)", is_string, _match_text_sql(value, text))
    return equal if op == "=" else _sql("NOT {}", equal)


def _json_sql(expr: JsonExpr, message: _Sql) -> _Sql:
    match expr:
        case JsonAll():
            return _sql(
                "({} AND {})", _json_sql(expr.left, message), _json_sql(expr.right, message)
            )
        case JsonAny():
            return _sql("({} OR {})", _json_sql(expr.left, message), _json_sql(expr.right, message))
    path = _param(_duckdb_path(expr.selector))
    kind = _sql("json_type({}, {})", message, path)
    text = _sql("json_extract_string({}, {})", message, path)
    if isinstance(expr, JsonTest):
        if expr.test == "NOT EXISTS":
            return _sql("({} IS NULL)", kind)
        if expr.test == "IS NULL":
            return _sql("coalesce({} = 'NULL', false)", kind)
        word = "true" if expr.test == "IS TRUE" else "false"
        return _sql(f"coalesce({{}} = 'BOOLEAN' AND {{}} = '{word}', false)", kind, text)
    scalar = _sql("coalesce({} NOT IN ('OBJECT', 'ARRAY'), false)", kind)
    number = _sql(
        "(CASE WHEN {} IN ('BIGINT', 'UBIGINT', 'HUGEINT', 'DOUBLE') OR "
        "({} = 'VARCHAR' AND regexp_full_match({}, {})) THEN TRY_CAST({} AS DOUBLE) END)",
        kind,
        kind,
        text,
        _literal_sql(NUMBER_RE),
        text,
    )
    is_string = _sql("{} = 'VARCHAR'", kind)
    return _sql("({} AND {})", scalar, _condition_sql(expr.op, expr.value, is_string, text, number))


def _duckdb_path(selector: Selector) -> str:
    # Every key quoted, so that keys holding '.', '-' or '@' keep their meaning.
    return "$" + "".join(f"[{p}]" if isinstance(p, int) else f'."{p}"' for p in selector.path)


def _space_sql(pattern: SpacePattern, message: _Sql) -> _Sql:
    fields = _sql("regexp_extract_all({}, {})", message, _literal_sql(FIELD_RE))
    split = next((i for i, s in enumerate(pattern.slots) if s.name is None), None)
    if split is None:
        parts = [_sql(f"len({{}}) = {len(pattern.slots)}", fields)]
        indexed = [(slot, i + 1) for i, slot in enumerate(pattern.slots)]
    else:
        head, tail = pattern.slots[:split], pattern.slots[split + 1 :]
        parts = [_sql(f"len({{}}) >= {len(head) + len(tail)}", fields)]
        indexed = [(slot, i + 1) for i, slot in enumerate(head)]
        indexed += [(slot, i - len(tail)) for i, slot in enumerate(tail)]
    for slot, index in indexed:
        if slot.condition is not None:
            token = _sql(f"{{}}[{index}]", fields)
            text = _sql(
                "(CASE WHEN regexp_full_match({}, {}) THEN {}[2:-2] ELSE {} END)",
                token,
                _literal_sql(_WRAPPED_RE),
                token,
                token,
            )
            parts.append(_field_sql(slot.condition, text))
    return _sql("({})", _join(" AND ", parts))


def _field_sql(expr: FieldExpr, text: _Sql) -> _Sql:
    match expr:
        case FieldAll():
            return _sql("({} AND {})", _field_sql(expr.left, text), _field_sql(expr.right, text))
        case FieldAny():
            return _sql("({} OR {})", _field_sql(expr.left, text), _field_sql(expr.right, text))
        case FieldCompare():
            number = _sql(
                "(CASE WHEN regexp_full_match({}, {}) THEN TRY_CAST({} AS DOUBLE) END)",
                text,
                _literal_sql(NUMBER_RE),
                text,
            )
            return _condition_sql(expr.op, expr.value, _Sql("TRUE"), text, number)
