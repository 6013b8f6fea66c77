"""Composite alarm rules (spec §5.11): parse ``composite.lark`` into nodes, evaluate them.

``parse_rule(text)`` gives a ``Rule`` (the expression and its child names) or raises
``RuleSyntaxError`` with the column where the text fails. ``evaluate_rule(rule, states)`` is
true or false for the children's current states. ``evaluate_composite`` turns that into an
``Evaluation`` (spec §5.11.2: a composite is OK or ALARM once evaluated). No I/O here.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal, assert_never

from lark import Lark, Token, Transformer, UnexpectedInput, v_args
from lark.exceptions import UnexpectedCharacters, UnexpectedEOF, UnexpectedToken, VisitError

from core.errors import BadRequest

__all__ = [
    "MAX_CHILDREN",
    "MAX_ELEMENTS",
    "MAX_RULE_CHARS",
    "AtLeast",
    "Const",
    "Rule",
    "RuleSyntaxError",
    "StateIs",
    "alarm_name",
    "evaluate_rule",
    "parse_rule",
]

State = Literal["OK", "ALARM", "INSUFFICIENT_DATA"]
MAX_RULE_CHARS = 10_240
MAX_CHILDREN = 100
MAX_ELEMENTS = 500
MAX_PARENTS = 150  # composites one alarm may be a child of

_PARSER = Lark.open(
    "composite.lark",
    rel_to=__file__,
    parser="lalr",
    lexer="contextual",
    propagate_positions=True,
    strict=True,
    maybe_placeholders=True,
)


class RuleSyntaxError(BadRequest):
    """Raised when a composite rule does not parse or breaks a limit of spec §5.11.1."""

    def __init__(self, message: str, *, column: int) -> None:
        super().__init__(f"{message} (at column {column})", details={"column": column})
        self.reason = message
        self.column = column


@dataclass(frozen=True, slots=True)
class Const:
    value: bool
    column: int


@dataclass(frozen=True, slots=True)
class StateIs:
    """``ALARM(x)``, ``OK(x)``, ``INSUFFICIENT_DATA(x)``."""

    state: State
    alarm: str
    column: int


@dataclass(frozen=True, slots=True)
class AtLeast:
    """``AT_LEAST(t, [NOT] S, (a, b, ...))``; ``percent`` when t was written ``t%``."""

    threshold: int
    percent: bool
    negate: bool
    state: State
    alarms: tuple[str, ...]
    column: int


@dataclass(frozen=True, slots=True)
class Not:
    operand: Expr
    column: int


@dataclass(frozen=True, slots=True)
class And:
    left: Expr
    right: Expr
    column: int


@dataclass(frozen=True, slots=True)
class Or:
    left: Expr
    right: Expr
    column: int


Expr = Const | StateIs | AtLeast | Not | And | Or


@dataclass(frozen=True, slots=True)
class Rule:
    text: str
    expr: Expr
    children: tuple[str, ...]  # distinct alarm names, in order of first mention


def alarm_name(ref: str) -> str:
    """The alarm name of a reference: a name, or an alarm ARN (``arn:...:alarm:NAME``)."""
    if ref.startswith("arn:"):
        parts = ref.split(":", 6)
        if len(parts) == 7 and parts[5] == "alarm":
            return parts[6]
    return ref


def parse_rule(text: str) -> Rule:
    """Parse a rule; raise ``RuleSyntaxError`` with the 1-based column where it fails."""
    if len(text) > MAX_RULE_CHARS:
        raise RuleSyntaxError(
            f"the rule is {len(text)} characters long; the limit is {MAX_RULE_CHARS}",
            column=MAX_RULE_CHARS + 1,
        )
    if not text.strip():
        raise RuleSyntaxError("the rule is empty; write e.g. ALARM(my-alarm)", column=1)
    if "\n" in text:  # a folded YAML scalar keeps newlines only at its end
        text = " ".join(text.split("\n"))
    try:
        tree = _PARSER.parse(text)
    except UnexpectedInput as exc:
        raise _syntax_error(exc, text) from None
    try:
        expr: Expr = _Build().transform(tree)
    except (RecursionError, VisitError):
        raise RuleSyntaxError("the rule nests too deeply", column=1) from None
    children, elements = _count(expr)
    if len(children) > MAX_CHILDREN:
        raise RuleSyntaxError(
            f"the rule names {len(children)} alarms; the limit is {MAX_CHILDREN}", column=1
        )
    parens = text.count("(")
    if elements + parens > MAX_ELEMENTS:
        raise RuleSyntaxError(
            f"the rule has {elements + parens} elements; the limit is {MAX_ELEMENTS}", column=1
        )
    return Rule(text, expr, tuple(children))


def evaluate_rule(expr: Expr, states: Mapping[str, str]) -> bool:
    """Truth of ``expr`` for the children's states (an unknown child is INSUFFICIENT_DATA)."""
    match expr:
        case Const():
            return expr.value
        case StateIs():
            return states.get(expr.alarm, "INSUFFICIENT_DATA") == expr.state
        case AtLeast():
            hits = sum(
                (states.get(name, "INSUFFICIENT_DATA") == expr.state) != expr.negate
                for name in expr.alarms
            )
            needed = (
                math.ceil(expr.threshold * len(expr.alarms) / 100)
                if expr.percent
                else expr.threshold
            )
            return hits >= needed
        case Not():
            return not evaluate_rule(expr.operand, states)
        case And():
            return evaluate_rule(expr.left, states) and evaluate_rule(expr.right, states)
        case Or():
            return evaluate_rule(expr.left, states) or evaluate_rule(expr.right, states)
        case _:
            assert_never(expr)


def _count(expr: Expr) -> tuple[list[str], int]:
    names: dict[str, None] = {}
    elements = 0
    stack: list[Expr] = [expr]
    while stack:
        node = stack.pop()
        match node:
            case Const():
                elements += 1
            case StateIs():
                names.setdefault(node.alarm)
                elements += 1
            case AtLeast():
                for name in node.alarms:
                    names.setdefault(name)
                elements += len(node.alarms)
            case Not():
                stack.append(node.operand)
            case And() | Or():
                stack.extend((node.right, node.left))
    # Keep the order of first mention, which a depth-first walk from the left gives.
    return list(names), elements


def _column(item: Any) -> int:
    return int(getattr(item, "column", None) or 1)


def _state(token: Token) -> State:
    upper = token.upper()
    if upper == "ALARM":
        return "ALARM"
    if upper == "OK":
        return "OK"
    return "INSUFFICIENT_DATA"


@v_args(meta=True)
class _Build(Transformer[Token, Expr]):
    def or_(self, meta: Any, children: list[Expr]) -> Expr:
        return Or(children[0], children[1], _column(meta))

    def and_(self, meta: Any, children: list[Expr]) -> Expr:
        return And(children[0], children[1], _column(meta))

    def not_(self, meta: Any, children: list[Expr]) -> Expr:
        return Not(children[0], _column(meta))

    def true(self, meta: Any, children: list[Token]) -> Expr:
        return Const(True, _column(meta))

    def false(self, meta: Any, children: list[Token]) -> Expr:
        return Const(False, _column(meta))

    def ref(self, meta: Any, children: list[Token]) -> str:
        text = str(children[0])
        if text.startswith('"'):
            text = text[1:-1]
        return alarm_name(text)

    def threshold(self, meta: Any, children: list[Token | None]) -> tuple[int, bool]:
        return int(str(children[0])), children[1] is not None

    def state_fn(self, meta: Any, children: list[Any]) -> Expr:
        return StateIs(_state(children[0]), children[1], _column(meta))

    def at_least(self, meta: Any, children: list[Any]) -> Expr:
        (threshold, percent), negate, state, *refs = children
        return AtLeast(threshold, percent, negate is not None, _state(state), tuple(refs), 1)


_DESCRIBE = {
    "_OR": "OR",
    "_AND": "AND",
    "_NOT": "NOT",
    "NOT_STATE": "NOT",
    "TRUE": "TRUE",
    "FALSE": "FALSE",
    "_AT_LEAST": "AT_LEAST",
    "STATE": "ALARM(...), OK(...) or INSUFFICIENT_DATA(...)",
    "LPAR": '"("',
    "RPAR": '")"',
    "COMMA": '","',
    "INT": "a number",
    "PERCENT": '"%"',
    "REF": "an alarm name",
    "QUOTED": "a quoted alarm name",
}


def _syntax_error(exc: UnexpectedInput, text: str) -> RuleSyntaxError:
    column = max(1, getattr(exc, "column", 0) or 0)
    if isinstance(exc, UnexpectedEOF):
        return RuleSyntaxError("the rule ends too early", column=len(text) + 1)
    expected = sorted({_DESCRIBE.get(name, name) for name in getattr(exc, "expected", set())})
    hint = f"; expected {', '.join(expected)}" if expected else ""
    if isinstance(exc, UnexpectedToken):
        if exc.token.type == "$END":
            return RuleSyntaxError(f"the rule ends too early{hint}", column=len(text) + 1)
        return RuleSyntaxError(f"unexpected {str(exc.token)!r}{hint}", column=column)
    if isinstance(exc, UnexpectedCharacters):
        char = text[exc.pos_in_stream] if exc.pos_in_stream is not None else "?"
        return RuleSyntaxError(f"unexpected character {char!r}", column=column)
    return RuleSyntaxError("the rule does not parse", column=column)
