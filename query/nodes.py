"""The syntax tree of a Logs Insights query: plain frozen records, one per construct.

Nodes hold data only; ``query.check`` and ``query.compile`` hold the behaviour. Every node
carries the ``Span`` of the source text it came from, so errors point at line and column and
unaliased expressions are named by their text (spec §6.4). No I/O here.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Span:
    """Where a node sits in the query: 1-based line and column, 0-based character offsets."""

    line: int
    column: int
    start: int
    end: int


# ---- expressions ----------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Str:
    value: str
    span: Span


@dataclass(frozen=True, slots=True)
class Num:
    value: float
    text: str
    span: Span


@dataclass(frozen=True, slots=True)
class Bool:
    value: bool
    span: Span


@dataclass(frozen=True, slots=True)
class Regex:
    """A ``/…/`` literal; ``pattern`` is the text between the slashes with ``\\/`` undone."""

    pattern: str
    span: Span


@dataclass(frozen=True, slots=True)
class Field:
    name: str
    span: Span


@dataclass(frozen=True, slots=True)
class Period:
    """A period argument such as ``5m``, kept as written; units are checked by the compiler."""

    quantity: int
    unit: str
    span: Span


@dataclass(frozen=True, slots=True)
class Star:
    """The ``*`` of ``count(*)``."""

    span: Span


@dataclass(frozen=True, slots=True)
class Call:
    name: str
    args: tuple[Arg, ...]
    span: Span


@dataclass(frozen=True, slots=True)
class Neg:
    operand: Expr
    span: Span


@dataclass(frozen=True, slots=True)
class Arith:
    """``+ - * / % ^``."""

    op: str
    left: Expr
    right: Expr
    span: Span


@dataclass(frozen=True, slots=True)
class Compare:
    """``= != < <= > >=``."""

    op: str
    left: Expr
    right: Expr
    span: Span


@dataclass(frozen=True, slots=True)
class Like:
    """``like "text"``, ``like /re/`` and ``=~ /re/``, optionally negated."""

    subject: Expr
    pattern: Str | Regex
    negated: bool
    span: Span


@dataclass(frozen=True, slots=True)
class In:
    subject: Expr
    items: tuple[Str | Num | Bool, ...]
    negated: bool
    span: Span


@dataclass(frozen=True, slots=True)
class Not:
    operand: Expr
    span: Span


@dataclass(frozen=True, slots=True)
class And:
    left: Expr
    right: Expr
    span: Span


@dataclass(frozen=True, slots=True)
class Or:
    left: Expr
    right: Expr
    span: Span


Literal = Str | Num | Bool
Expr = Str | Num | Bool | Field | Call | Neg | Arith | Compare | Like | In | Not | And | Or
Arg = Expr | Period | Star


# ---- commands -------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Projection:
    """``expr [as alias]``; ``text`` is the expression's source text, trimmed."""

    expr: Expr
    alias: str | None
    text: str
    span: Span

    @property
    def name(self) -> str:
        """The column name (spec §6.4): the alias, the field name, or the source text."""
        if self.alias is not None:
            return self.alias
        if isinstance(self.expr, Field):
            return self.expr.name
        return self.text


@dataclass(frozen=True, slots=True)
class Fields:
    items: tuple[Projection, ...]
    span: Span


@dataclass(frozen=True, slots=True)
class Display:
    items: tuple[Projection, ...]
    span: Span


@dataclass(frozen=True, slots=True)
class Filter:
    condition: Expr
    span: Span


@dataclass(frozen=True, slots=True)
class Stats:
    aggregates: tuple[Projection, ...]
    groups: tuple[Projection, ...]
    span: Span


@dataclass(frozen=True, slots=True)
class SortKey:
    expr: Expr
    descending: bool
    span: Span


@dataclass(frozen=True, slots=True)
class Sort:
    keys: tuple[SortKey, ...]
    span: Span


@dataclass(frozen=True, slots=True)
class Limit:
    """``limit n``; ``count`` is the number as written, ``modifier`` a word such as ``any``."""

    count: str
    modifier: str | None
    span: Span


@dataclass(frozen=True, slots=True)
class ParseGlob:
    source: Field | None
    pattern: Str
    names: tuple[str, ...]
    span: Span


@dataclass(frozen=True, slots=True)
class ParseRegex:
    """``parse [source] /re/``; ``names`` holds an ``as`` list, which v1 refuses."""

    source: Field | None
    pattern: Regex
    names: tuple[str, ...]
    span: Span


@dataclass(frozen=True, slots=True)
class Dedup:
    exprs: tuple[Expr, ...]
    span: Span


@dataclass(frozen=True, slots=True)
class Unsupported:
    """An advanced command (spec §7.9) that parses but is not implemented yet."""

    command: str
    span: Span


Command = (
    Fields | Display | Filter | Stats | Sort | Limit | ParseGlob | ParseRegex | Dedup | Unsupported
)


@dataclass(frozen=True, slots=True)
class Query:
    commands: tuple[Command, ...]
    text: str
