"""``parse_expression(text) -> Expr``: the metric-math grammar (``math.lark``) and its nodes.

The Transformer only builds nodes; which functions exist and what they accept is checked when
the expression is evaluated (``query.metrics.math``). No I/O here.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

from lark import Lark, Token, Transformer, v_args
from lark.exceptions import UnexpectedCharacters, UnexpectedInput, UnexpectedToken, VisitError
from lark.tree import Meta

from core.metric_errors import MetricMathError

__all__ = [
    "MAX_EXPRESSION_CHARS",
    "Array",
    "Binary",
    "Call",
    "Expr",
    "Keyword",
    "Negate",
    "Number",
    "Reference",
    "String",
    "check_query_id",
    "parse_expression",
    "references",
]

MAX_EXPRESSION_CHARS = 2_048  # spec §2.4
_QUERY_ID = re.compile(r"[a-z][A-Za-z0-9_]{0,254}")
TOO_DEEP = "the expression is nested too deeply: split it into several queries"


@dataclass(frozen=True, slots=True)
class Number:
    value: float
    column: int


@dataclass(frozen=True, slots=True)
class Reference:
    """The ``Id`` of another query of the request."""

    name: str
    column: int


@dataclass(frozen=True, slots=True)
class String:
    text: str
    column: int


@dataclass(frozen=True, slots=True)
class Keyword:
    """An upper-case word used as an argument, such as REPEAT or LINEAR in FILL."""

    name: str
    column: int


@dataclass(frozen=True, slots=True)
class Call:
    name: str
    args: tuple[Expr, ...]
    column: int


@dataclass(frozen=True, slots=True)
class Array:
    """``[m1, m2]``: an array of time series."""

    items: tuple[Expr, ...]
    column: int


@dataclass(frozen=True, slots=True)
class Negate:
    operand: Expr
    column: int


@dataclass(frozen=True, slots=True)
class Binary:
    """Arithmetic (``+ - * / ^``), comparison (``== != < > <= >=``) or logic (AND, OR)."""

    op: str
    left: Expr
    right: Expr
    column: int


Expr = Number | Reference | String | Keyword | Call | Array | Negate | Binary

_PARSER = Lark.open(
    "math.lark",
    rel_to=__file__,
    parser="lalr",
    lexer="contextual",
    propagate_positions=True,
    strict=True,
    maybe_placeholders=False,
)
_LOGIC = {"&&": "AND", "||": "OR"}


def check_query_id(query_id: str) -> str:
    """Spec §2.4: 1-255 letters, digits and underscores, starting with a lower-case letter."""
    if not _QUERY_ID.fullmatch(query_id):
        raise MetricMathError(
            f"invalid query id {query_id[:60]!r}: use 1 to 255 letters, digits and underscores, "
            "starting with a lower-case letter (e.g. m1, errorRate)"
        )
    return query_id


@lru_cache(maxsize=1024)
def parse_expression(text: str) -> Expr:
    """Parse one expression; raise ``MetricMathError`` with the column where it fails."""
    if len(text) > MAX_EXPRESSION_CHARS:
        raise MetricMathError(
            f"the expression is {len(text)} characters long; the limit is {MAX_EXPRESSION_CHARS}",
            column=MAX_EXPRESSION_CHARS + 1,
        )
    if not text.strip():
        raise MetricMathError("the expression is empty", column=1)
    try:
        tree = _PARSER.parse(text)
    except UnexpectedInput as exc:
        raise _syntax_error(exc, text) from None
    try:
        expr: Expr = _Build().transform(tree)
    except (RecursionError, VisitError):
        # Only nesting deeper than Python's recursion limit gets here (-------m1, a^a^a^...).
        raise MetricMathError(TOO_DEEP, column=1) from None
    return expr


def references(expr: Expr) -> set[str]:
    """Every query id the expression names directly."""
    match expr:
        case Reference():
            return {expr.name}
        case Call() | Array():
            items = expr.args if isinstance(expr, Call) else expr.items
            return set().union(*(references(e) for e in items)) if items else set()
        case Negate():
            return references(expr.operand)
        case Binary():
            return references(expr.left) | references(expr.right)
        case _:
            return set()


def _column(item: Meta | Token) -> int:
    return (item.start_pos or 0) + 1


@v_args(meta=True)
class _Build(Transformer[Token, Expr]):
    def number(self, meta: Meta, children: list[Token]) -> Number:
        return Number(float(children[0]), _column(meta))

    def reference(self, meta: Meta, children: list[Token]) -> Reference:
        return Reference(str(children[0]), _column(meta))

    def string(self, meta: Meta, children: list[Token]) -> String:
        return String(str(children[0])[1:-1], _column(meta))

    def keyword(self, meta: Meta, children: list[Token]) -> Keyword:
        return Keyword(str(children[0]), _column(meta))

    def call(self, meta: Meta, children: list[Any]) -> Call:
        return Call(str(children[0]), tuple(children[1:]), _column(meta))

    def array(self, meta: Meta, children: list[Expr]) -> Array:
        return Array(tuple(children), _column(meta))

    def negate(self, meta: Meta, children: list[Any]) -> Negate:
        return Negate(children[1], _column(meta))

    def binary(self, meta: Meta, children: list[Any]) -> Binary:
        left, op, right = children
        # The operator's own column: "m1 / m2" fails at the "/", not at m1.
        return Binary(_LOGIC.get(str(op), str(op)), left, right, _column(op))


_DESCRIBE = {
    "ID": "a query id",
    "NAME": "a function name",
    "NUMBER": "a number",
    "STRING": "a string",
    "$END": "the end of the expression",
    "COMPARE": "a comparison",
    "LPAR": "'('",
    "RPAR": "')'",
    "LSQB": "'['",
    "RSQB": "']'",
    "COMMA": "','",
}


def _syntax_error(exc: UnexpectedInput, text: str) -> MetricMathError:
    if isinstance(exc, UnexpectedToken):
        accepted: set[str] = set(exc.expected)
        if exc.interactive_parser is not None:
            accepted = exc.interactive_parser.accepts() or accepted  # type: ignore[no-untyped-call]
        expected = sorted({_describe(t) for t in accepted})
        if exc.token.type == "$END":
            return MetricMathError(
                f"the expression ends too early: expected {', '.join(expected)}",
                column=len(text) + 1,
                expected=expected,
            )
        found = str(exc.token)
        return MetricMathError(
            f"unexpected {found[:30]!r}: expected {', '.join(expected)}",
            column=(exc.token.start_pos or 0) + 1,
            expected=expected,
        )
    assert isinstance(exc, UnexpectedCharacters)
    offset = exc.pos_in_stream or 0
    char = text[offset]
    if char in "\"'":
        return MetricMathError(f"unterminated string: close it with {char}", column=offset + 1)
    hint = ""
    if char.isalpha():
        hint = ": query ids start with a lower-case letter, function names are upper case"
    return MetricMathError(f"unexpected character {char!r}{hint}", column=offset + 1)


def _describe(terminal: str) -> str:
    if terminal in _DESCRIBE:
        return _DESCRIBE[terminal]
    try:
        pattern = _PARSER.get_terminal(terminal).pattern
    except KeyError:  # pragma: no cover - every terminal is named in the grammar
        return terminal.lower()
    return repr(pattern.value) if pattern.type == "str" else terminal.lower()
