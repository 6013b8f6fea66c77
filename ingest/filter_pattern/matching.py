"""Matching one event in Python, as metric filters do at ingest (spec §4.2-4.3).

``match`` must agree with the SQL of ``ingest.filter_pattern.sql`` on every event; a property
test keeps the two equal. No I/O here.
"""

from __future__ import annotations

import json
import math
import operator
import re
from collections.abc import Callable, Iterable
from functools import lru_cache
from typing import Any

from ingest.filter_pattern.nodes import (
    FIELD_RE,
    NUMBER,
    FieldAll,
    FieldAny,
    FieldCompare,
    FieldExpr,
    FilterPattern,
    JsonAll,
    JsonAny,
    JsonCompare,
    JsonExpr,
    JsonPattern,
    JsonTest,
    MatchAll,
    MatchResult,
    Selector,
    Slot,
    SpacePattern,
    TextPattern,
    Value,
)
from ingest.filter_pattern.parse import parse_filter_pattern, parse_selector

_FIELD = re.compile(FIELD_RE)
_COMPARE: dict[str, Callable[[float, float], bool]] = {
    "=": operator.eq,
    "!=": operator.ne,
    "<": operator.lt,
    "<=": operator.le,
    ">": operator.gt,
    ">=": operator.ge,
}
_MISSING = object()


def to_number(value: Any) -> float | None:
    """The number a field holds: a finite JSON number or a string that is entirely a number."""
    if isinstance(value, bool) or value is None:
        return None
    try:
        if isinstance(value, int | float):
            number = float(value)
        elif isinstance(value, str) and NUMBER.fullmatch(value):
            number = float(value)
        else:
            return None
    except OverflowError:  # an integer too large for a double
        return None
    return number if math.isfinite(number) else None


def _text_matches(value: Value, text: str) -> bool:
    if value.wild_start and value.wild_end:
        return value.text in text
    if value.wild_start:
        return text.endswith(value.text)
    if value.wild_end:
        return text.startswith(value.text)
    return text == value.text


def _condition_holds(op: str, value: Value, scalar: Any) -> bool:
    """``scalar`` is a JSON scalar or a field's text; objects and arrays never get here."""
    if value.number is not None:
        number = to_number(scalar)
        if op == "!=":
            return number is None or number != value.number
        return number is not None and _COMPARE[op](number, value.number)
    equal = value.any_scalar or (isinstance(scalar, str) and _text_matches(value, scalar))
    return equal if op == "=" else not equal


def _first_wins(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    # DuckDB's JSON functions read the first of duplicated keys; json.loads keeps the last.
    document: dict[str, Any] = {}
    for key, item in pairs:
        document.setdefault(key, item)
    return document


# Several metric filters test each event in turn: parse it once. Small, as events may be 1 MiB.
@lru_cache(maxsize=8)
def _load_object(message: str) -> dict[str, Any] | None:
    if not message.lstrip().startswith("{"):
        return None
    try:
        document = json.loads(message, object_pairs_hook=_first_wins)
    except (ValueError, RecursionError):
        return None
    return document if isinstance(document, dict) else None


def _select(document: Any, selector: Selector) -> Any:
    for step in selector.path:
        if isinstance(step, int) and isinstance(document, list) and step < len(document):
            document = document[step]
        elif isinstance(step, str) and isinstance(document, dict) and step in document:
            document = document[step]
        else:
            return _MISSING
    return document


def _json_holds(expr: JsonExpr, document: dict[str, Any]) -> bool:
    match expr:
        case JsonAll():
            return _json_holds(expr.left, document) and _json_holds(expr.right, document)
        case JsonAny():
            return _json_holds(expr.left, document) or _json_holds(expr.right, document)
        case JsonTest():
            found = _select(document, expr.selector)
            if expr.test == "NOT EXISTS":
                return found is _MISSING
            expected = {"IS NULL": None, "IS TRUE": True, "IS FALSE": False}[expr.test]
            return found is expected
        case JsonCompare():
            found = _select(document, expr.selector)
            if found is _MISSING or isinstance(found, dict | list):
                return False
            return _condition_holds(expr.op, expr.value, found)


def _field_holds(expr: FieldExpr, text: str) -> bool:
    match expr:
        case FieldAll():
            return _field_holds(expr.left, text) and _field_holds(expr.right, text)
        case FieldAny():
            return _field_holds(expr.left, text) or _field_holds(expr.right, text)
        case FieldCompare():
            return _condition_holds(expr.op, expr.value, text)


def _unwrap(token: str) -> str:
    if len(token) >= 2 and (token[0], token[-1]) in (('"', '"'), ("[", "]")):
        return token[1:-1]
    return token


def _assign(pattern: SpacePattern, message: str) -> list[tuple[Slot, str]] | None:
    """Pair each named slot with its field, or None when the field count does not fit."""
    fields = [_unwrap(t) for t in _FIELD.findall(message)]
    split = next((i for i, s in enumerate(pattern.slots) if s.name is None), None)
    if split is None:
        if len(fields) != len(pattern.slots):
            return None
        return list(zip(pattern.slots, fields, strict=True))
    head, tail = pattern.slots[:split], pattern.slots[split + 1 :]
    if len(fields) < len(head) + len(tail):
        return None
    tail_fields = fields[len(fields) - len(tail) :]
    return list(zip(head, fields, strict=False)) + list(zip(tail, tail_fields, strict=True))


def match(
    pattern: FilterPattern | str, message: str, *, selectors: Iterable[str] = ()
) -> MatchResult:
    """Test one event; on a match, return the values of its fields (see ``MatchResult``).

    ``selectors`` names extra JSON selectors to read (a metric filter's value and dimensions),
    keyed in ``fields`` exactly as given.
    """
    if isinstance(pattern, str):
        pattern = parse_filter_pattern(pattern)
    match pattern:
        case MatchAll():
            return MatchResult(True)
        case TextPattern():
            matched = (
                all(term in message for term in pattern.required)
                and (not pattern.optional or any(term in message for term in pattern.optional))
                and not any(term in message for term in pattern.excluded)
            )
            return MatchResult(matched)
        case JsonPattern():
            document = _load_object(message)
            if document is None or not _json_holds(pattern.condition, document):
                return MatchResult(False)
            wanted = [(s.text, s) for s in pattern.selectors]
            wanted += [(text, parse_selector(text)) for text in selectors]
            found = {key: _select(document, s) for key, s in wanted}
            return MatchResult(
                True,
                {
                    k: v
                    for k, v in found.items()
                    if v is not _MISSING and not isinstance(v, dict | list)
                },
            )
        case SpacePattern():
            pairs = _assign(pattern, message)
            if pairs is None or not all(
                slot.condition is None or _field_holds(slot.condition, text) for slot, text in pairs
            ):
                return MatchResult(False)
            fields: dict[str, Any] = {}
            for slot, text in pairs:
                fields[f"${slot.name}"] = fields[f"${slot.position}"] = text
            return MatchResult(True, fields)
