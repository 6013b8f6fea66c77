"""Filter pattern text -> nodes: the lark grammar, a Transformer, and the checks it cannot make.

Syntax errors name the 1-based column where the pattern goes wrong. No I/O here.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable
from functools import lru_cache
from typing import Any

from lark import Lark, Token, Transformer
from lark.exceptions import UnexpectedCharacters, UnexpectedInput, UnexpectedToken, VisitError

from ingest.filter_pattern.nodes import (
    MAX_PATTERN_CHARS,
    NUMBER,
    FieldAll,
    FieldAny,
    FieldCompare,
    FieldExpr,
    FilterPattern,
    FilterPatternError,
    JsonAll,
    JsonAny,
    JsonCompare,
    JsonExpr,
    JsonPattern,
    JsonTest,
    MatchAll,
    Selector,
    Slot,
    SpacePattern,
    TextPattern,
    Value,
)

_SELECTOR_PART = re.compile(r'\.([A-Za-z0-9_@:\-]+)|\[([0-9]+)\]|\["([^"\\\r\n]+)"\]')
_SIMPLE_KEY = re.compile(r"[A-Za-z0-9_@:\-]+")
_MAX_INDEX_DIGITS = 9

_PARSER = Lark.open(
    "grammar.lark",
    rel_to=__file__,
    parser="lalr",
    lexer="contextual",
    strict=True,
    maybe_placeholders=False,
)


@lru_cache(maxsize=1024)
def parse_filter_pattern(text: str) -> FilterPattern:
    """Parse a filter pattern; raise ``FilterPatternError`` naming the column where it fails."""
    if len(text) > MAX_PATTERN_CHARS:
        raise FilterPatternError(
            f"the pattern is {len(text)} characters long; the limit is {MAX_PATTERN_CHARS}",
            MAX_PATTERN_CHARS + 1,
        )
    try:
        tree = _PARSER.parse(text)
    except UnexpectedInput as exc:
        raise _syntax_error(exc, text) from None
    try:
        pattern: FilterPattern = _Build().transform(tree)
    except VisitError as exc:
        # parse_selector refuses oversized array indexes; lark wraps what it raises.
        if isinstance(exc.orig_exc, FilterPatternError):
            raise exc.orig_exc from None
        raise
    _check(pattern)
    return pattern


def parse_selector(text: str, column: int = 1) -> Selector:
    """A JSON selector such as ``$.a.b[0]``, as a metric value or dimension names it."""
    pos, path = 1, list[str | int]()
    if not text.startswith("$") or len(text) == 1:
        raise FilterPatternError(f"{text!r} is not a JSON selector such as $.latency", column)
    while pos < len(text):
        part = _SELECTOR_PART.match(text, pos)
        if part is None:
            raise FilterPatternError(f"unexpected {text[pos]!r} in selector {text!r}", column + pos)
        key, index, quoted = part.groups()
        if index is not None:
            if len(index) > _MAX_INDEX_DIGITS:
                raise FilterPatternError(f"array index {index} is too large", column + pos)
            path.append(int(index))
        else:
            path.append(key if key is not None else quoted)
        pos = part.end()
    normal = "$" + "".join(
        f"[{p}]" if isinstance(p, int) else f".{p}" if _SIMPLE_KEY.fullmatch(p) else f'["{p}"]'
        for p in path
    )
    return Selector(tuple(path), normal, column)


def _column(token: Token) -> int:
    return (token.start_pos or 0) + 1


def _unquote(text: str) -> str:
    # Only \" and \\ are escapes: a pattern is not a programming language string.
    return re.sub(r'\\(["\\])', r"\1", text[1:-1])


class _Build(Transformer[Token, Any]):
    def start(self, children: list[Any]) -> FilterPattern:
        return children[0] if children else MatchAll()

    def text_pattern(self, terms: list[tuple[str, str]]) -> TextPattern:
        def kind(wanted: str) -> tuple[str, ...]:
            return tuple(text for k, text in terms if k == wanted)

        return TextPattern(kind("required"), kind("optional"), kind("excluded"))

    def _term(self, token: Token) -> str:
        return _unquote(token) if token.type == "STRING" else str(token)

    def required_term(self, children: list[Token]) -> tuple[str, str]:
        return "required", self._term(children[0])

    def excluded_term(self, children: list[Token]) -> tuple[str, str]:
        return "excluded", self._term(children[0])

    def optional_term(self, children: list[Token]) -> tuple[str, str]:
        return "optional", self._term(children[0])

    def json_pattern(self, children: list[JsonExpr]) -> JsonPattern:
        return JsonPattern(children[0])

    def json_any(self, children: list[JsonExpr]) -> JsonAny:
        return JsonAny(children[0], children[1])

    def json_all(self, children: list[JsonExpr]) -> JsonAll:
        return JsonAll(children[0], children[1])

    def json_compare(self, children: list[Any]) -> JsonCompare:
        token, op, value = children
        return JsonCompare(parse_selector(str(token), _column(token)), str(op), value)

    def _test(self, children: list[Token], test: str) -> JsonTest:
        return JsonTest(parse_selector(str(children[0]), _column(children[0])), test)

    def json_is_null(self, children: list[Token]) -> JsonTest:
        return self._test(children, "IS NULL")

    def json_is_true(self, children: list[Token]) -> JsonTest:
        return self._test(children, "IS TRUE")

    def json_is_false(self, children: list[Token]) -> JsonTest:
        return self._test(children, "IS FALSE")

    def json_not_exists(self, children: list[Token]) -> JsonTest:
        return self._test(children, "NOT EXISTS")

    def space_pattern(self, children: list[Slot]) -> SpacePattern:
        # Slots learn their position here, where the order is known.
        return SpacePattern(
            tuple(Slot(s.name, s.condition, i, s.column) for i, s in enumerate(children, start=1))
        )

    def ellipsis_slot(self, children: list[Token]) -> Slot:
        return Slot(None, None, 0, _column(children[0]))

    def named_slot(self, children: list[Token]) -> Slot:
        return Slot(str(children[0]), None, 0, _column(children[0]))

    def conditional_slot(self, children: list[FieldExpr]) -> Slot:
        first = _first_compare(children[0])
        return Slot(first.name, children[0], 0, first.column)

    def field_any(self, children: list[FieldExpr]) -> FieldAny:
        return FieldAny(children[0], children[1])

    def field_all(self, children: list[FieldExpr]) -> FieldAll:
        return FieldAll(children[0], children[1])

    def field_compare(self, children: list[Any]) -> FieldCompare:
        name, op, value = children
        return FieldCompare(str(name), str(op), value, _column(name))

    def value(self, children: list[Token]) -> Value:
        token = children[0]
        column = _column(token)
        if token.type == "STRING":
            raw, number = _unquote(token), None
        else:
            raw = str(token)
            number = float(raw) if NUMBER.fullmatch(raw) else None
            if number is not None and not math.isfinite(number):
                number = None
        if number is not None:
            return Value(raw, number, False, False, column)
        wild_start = raw.startswith("*")
        text = raw[1:] if wild_start else raw
        wild_end = text.endswith("*")
        return Value(text[:-1] if wild_end else text, None, wild_start, wild_end, column)


def _first_compare(expr: FieldExpr) -> FieldCompare:
    while not isinstance(expr, FieldCompare):
        expr = expr.left
    return expr


def _field_compares(expr: FieldExpr) -> Iterable[FieldCompare]:
    if isinstance(expr, FieldCompare):
        yield expr
    else:
        yield from _field_compares(expr.left)
        yield from _field_compares(expr.right)


def _check(pattern: FilterPattern) -> None:
    """Rules the grammar cannot express: numeric operators, one name per slot, one ``...``."""
    compares: list[tuple[str, Value]] = []
    if isinstance(pattern, JsonPattern):
        stack: list[JsonExpr] = [pattern.condition]
        while stack:
            node = stack.pop()
            if isinstance(node, JsonAll | JsonAny):
                stack += [node.right, node.left]
            elif isinstance(node, JsonCompare):
                compares.append((node.op, node.value))
    if isinstance(pattern, SpacePattern):
        seen: set[str] = set()
        ellipses = [s for s in pattern.slots if s.name is None]
        if len(ellipses) > 1:
            raise FilterPatternError(
                "a space-delimited pattern may hold one ... only", ellipses[1].column
            )
        for slot in pattern.slots:
            if slot.name is None:
                continue
            if slot.name in seen:
                raise FilterPatternError(f"the field name {slot.name!r} is used twice", slot.column)
            seen.add(slot.name)
            for compare in _field_compares(slot.condition) if slot.condition else ():
                if compare.name != slot.name:
                    raise FilterPatternError(
                        f"conditions in one field must all name it: expected {slot.name!r}, "
                        f"found {compare.name!r}",
                        compare.column,
                    )
                compares.append((compare.op, compare.value))
    for op, value in compares:
        if op not in ("=", "!=") and value.number is None:
            raise FilterPatternError(
                f"the operator {op} needs a number, such as 5 or 1.5e3", value.column
            )


_DESCRIBE = {
    "TERM": "a term",
    "STRING": 'a "quoted" value',
    "SELECTOR": "a selector such as $.field",
    "NAME": "a field name",
    "BARE": "a value",
    "ELLIPSIS": "...",
    "$END": "the end of the pattern",
}


def _syntax_error(exc: UnexpectedInput, text: str) -> FilterPatternError:
    terminals = _expected(exc)
    expected = sorted({_DESCRIBE.get(t, _literal(t)) for t in terminals})
    wanted = ", ".join(expected) if expected else "something else"
    if isinstance(exc, UnexpectedToken) and exc.token.type == "$END":
        return FilterPatternError(
            f"the pattern ends too early: expected {wanted}", len(text) + 1, expected=expected
        )
    if isinstance(exc, UnexpectedToken):
        offset, found = (exc.token.start_pos or 0), str(exc.token)
    else:
        offset = exc.pos_in_stream or 0
        found = text[offset]
    column = offset + 1
    if found == '"' and isinstance(exc, UnexpectedCharacters):
        return FilterPatternError('unterminated quoted string: close it with "', column)
    if found.startswith("%"):
        return FilterPatternError("%regex% patterns are not supported yet", column)
    shown = found if len(found) <= 30 else found[:27] + "..."
    shown = repr(shown) if shown.isprintable() else repr(shown.encode("unicode_escape").decode())
    if "TERM" in terminals:
        return FilterPatternError(
            f"unexpected {shown}: a term with characters other than letters, digits and "
            'underscore must be quoted, e.g. "ERROR:"',
            column,
            expected=expected,
        )
    return FilterPatternError(f"unexpected {shown}: expected {wanted}", column, expected=expected)


def _expected(exc: UnexpectedInput) -> set[str]:
    if isinstance(exc, UnexpectedCharacters):
        return set(exc.allowed or ())
    if isinstance(exc, UnexpectedToken) and exc.interactive_parser is not None:
        # LALR's expected set merges states; ask the parser what it really accepts.
        accepted: set[str] = exc.interactive_parser.accepts()  # type: ignore[no-untyped-call]
        return accepted or set(exc.expected)
    return set(getattr(exc, "expected", ()) or ())


def _literal(terminal: str) -> str:
    try:
        return repr(_PARSER.get_terminal(terminal).pattern.value)
    except KeyError:  # pragma: no cover - every terminal is named in the grammar
        return terminal.lower()
