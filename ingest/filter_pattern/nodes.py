"""The nodes of a parsed filter pattern, its error, and the lexical rules every pass shares.

Nodes hold data; ``parse``, ``matching`` and ``sql`` hold behaviour. No I/O here.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from core.errors import BadRequest

MAX_PATTERN_CHARS = 1024  # spec §4.1

# The same regexes run in Python (re) and in DuckDB (RE2); they use no construct on which the
# two engines differ (no \d or \s, which are Unicode-aware in Python).
NUMBER_RE = r"[+-]?([0-9]+[.]?[0-9]*|[.][0-9]+)([eE][+-]?[0-9]+)?"
FIELD_RE = r'"[^"]*"|\[[^\]]*\]|[^ \t\r\n]+'
NUMBER = re.compile(NUMBER_RE)


class FilterPatternError(BadRequest):
    """Raised when a filter pattern, or a selector naming one of its fields, is invalid."""

    def __init__(self, message: str, column: int, **extra: Any) -> None:
        super().__init__(
            f"Invalid filter pattern at column {column}: {message}",
            details={"column": column, **extra},
        )
        self.column = column


@dataclass(frozen=True, slots=True)
class Value:
    """The right side of a condition. ``number`` is set for a bare number, else text compares."""

    text: str
    number: float | None
    wild_start: bool
    wild_end: bool
    column: int

    @property
    def any_scalar(self) -> bool:
        return self.text == "" and (self.wild_start or self.wild_end)


@dataclass(frozen=True, slots=True)
class Selector:
    path: tuple[str | int, ...]
    text: str  # normalised: $.a[0]["b c"]
    column: int


@dataclass(frozen=True, slots=True)
class JsonCompare:
    selector: Selector
    op: str
    value: Value


@dataclass(frozen=True, slots=True)
class JsonTest:
    selector: Selector
    test: str  # "IS NULL", "IS TRUE", "IS FALSE", "NOT EXISTS"


@dataclass(frozen=True, slots=True)
class JsonAll:
    left: JsonExpr
    right: JsonExpr


@dataclass(frozen=True, slots=True)
class JsonAny:
    left: JsonExpr
    right: JsonExpr


JsonExpr = JsonCompare | JsonTest | JsonAll | JsonAny


@dataclass(frozen=True, slots=True)
class FieldCompare:
    name: str
    op: str
    value: Value
    column: int


@dataclass(frozen=True, slots=True)
class FieldAll:
    left: FieldExpr
    right: FieldExpr


@dataclass(frozen=True, slots=True)
class FieldAny:
    left: FieldExpr
    right: FieldExpr


FieldExpr = FieldCompare | FieldAll | FieldAny


@dataclass(frozen=True, slots=True)
class Slot:
    """One field of a space-delimited pattern; ``name`` is None for ``...``."""

    name: str | None
    condition: FieldExpr | None
    position: int  # 1-based, as in $1
    column: int


@dataclass(frozen=True, slots=True)
class MatchAll:
    """The empty pattern: every event matches."""


@dataclass(frozen=True, slots=True)
class TextPattern:
    required: tuple[str, ...]
    optional: tuple[str, ...]  # at least one must occur, when there are any
    excluded: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class JsonPattern:
    condition: JsonExpr

    @property
    def selectors(self) -> tuple[Selector, ...]:
        return tuple(_selectors(self.condition))


@dataclass(frozen=True, slots=True)
class SpacePattern:
    slots: tuple[Slot, ...]


FilterPattern = MatchAll | TextPattern | JsonPattern | SpacePattern


@dataclass(frozen=True, slots=True)
class MatchResult:
    """Whether an event matched and, if it did, the values its fields hold.

    ``fields`` is keyed the way a metric filter names a value: ``$.a.b`` (a scalar: str, int,
    float, bool or None), ``$status`` and ``$7`` (the text of a space-delimited field).
    """

    matched: bool
    fields: dict[str, Any] = field(default_factory=dict)


def _selectors(expr: JsonExpr) -> Iterable[Selector]:
    match expr:
        case JsonCompare() | JsonTest():
            yield expr.selector
        case JsonAll() | JsonAny():
            yield from _selectors(expr.left)
            yield from _selectors(expr.right)
