"""``parse(text) -> Query``: the Lark grammar, a Transformer to ``query.nodes``, syntax errors.

The Transformer only builds nodes, without recursion (a query may nest thousands of levels before
it is refused). Rules of the language that the grammar cannot express (which functions exist,
periods, ``limit`` bounds...) are checked by ``query.check`` and ``query.compile``: lark would wrap
an exception raised here in ``VisitError``. The one exception is nesting depth
(``query.nesting``), checked here once the nodes exist, so that no deeper ``Query`` reaches a
recursive pass. No I/O here.
"""

from __future__ import annotations

import re
from dataclasses import replace
from typing import Any

from lark import Lark, Token, v_args
from lark.exceptions import UnexpectedInput
from lark.tree import Meta
from lark.visitors import Transformer_NonRecursive

from query import nodes as n
from query.errors import QuerySyntaxError
from query.nesting import check_depth
from query.syntax_errors import point, syntax_error, token_span

__all__ = ["MAX_QUERY_CHARS", "parse"]

MAX_QUERY_CHARS = 10_000

_PARSER = Lark.open(
    "grammar.lark",
    rel_to=__file__,
    parser="lalr",
    lexer="contextual",
    propagate_positions=True,
    strict=True,
    maybe_placeholders=False,
)

_ESCAPE = re.compile(r"\\([\\\"'])")


def parse(text: str) -> n.Query:
    """Parse a query into nodes; raise ``QuerySyntaxError`` with line, column and expectations."""
    if len(text) > MAX_QUERY_CHARS:
        raise QuerySyntaxError(
            f"The query is {len(text)} characters long; the limit is {MAX_QUERY_CHARS}.",
            point(text, MAX_QUERY_CHARS),
        )
    if not _strip_comments(text).strip():
        raise QuerySyntaxError(
            "The query is empty: write at least one command, e.g. fields @timestamp, @message.",
            n.Span(1, 1, 0, len(text)),
        )
    try:
        tree = _PARSER.parse(text)
    except UnexpectedInput as exc:
        raise syntax_error(exc, text) from None
    commands = _Build(text).transform(tree)
    query = n.Query(commands=tuple(commands), text=text)
    check_depth(query)
    return query


def _strip_comments(text: str) -> str:
    return "\n".join(line for line in text.splitlines() if not line.lstrip().startswith("#"))


# ---- tree -> nodes --------------------------------------------------------------------------


def _span(meta: Meta) -> n.Span:
    return n.Span(meta.line, meta.column, meta.start_pos, meta.end_pos)


def _name(token: Token) -> str:
    text = str(token)
    return text[1:-1] if token.type == "BACKTICK" else text


def _string(token: Token) -> str:
    return _ESCAPE.sub(r"\1", str(token)[1:-1])


def _regex(token: Token) -> str:
    return str(token)[1:-1].replace("\\/", "/")


@v_args(meta=True)
class _Build(Transformer_NonRecursive[Token, list[n.Command]]):
    def __init__(self, text: str) -> None:
        super().__init__()
        self._text = text

    def start(self, meta: Meta, children: list[n.Command]) -> list[n.Command]:
        return children

    # ---- commands

    def fields_cmd(self, meta: Meta, children: list[n.Projection]) -> n.Fields:
        return n.Fields(tuple(children), _span(meta))

    def display_cmd(self, meta: Meta, children: list[n.Projection]) -> n.Display:
        return n.Display(tuple(children), _span(meta))

    def filter_cmd(self, meta: Meta, children: list[n.Expr]) -> n.Filter:
        return n.Filter(children[0], _span(meta))

    def stats_cmd(self, meta: Meta, children: list[Any]) -> n.Stats:
        groups: tuple[n.Projection, ...] = ()
        if children and isinstance(children[-1], tuple):
            groups = children.pop()
        return n.Stats(tuple(children), groups, _span(meta))

    def group_by(self, meta: Meta, children: list[n.Projection]) -> tuple[n.Projection, ...]:
        return tuple(children)

    def sort_cmd(self, meta: Meta, children: list[n.SortKey]) -> n.Sort:
        return n.Sort(tuple(children), _span(meta))

    def sort_key(self, meta: Meta, children: list[Any]) -> n.SortKey:
        # Spec §7.5: without a direction word the order is descending.
        descending = not (len(children) > 1 and children[1].type == "ASC")
        return n.SortKey(children[0], descending, _span(meta))

    def limit_cmd(self, meta: Meta, children: list[Token]) -> n.Limit:
        modifier = str(children[0]) if len(children) > 1 else None
        return n.Limit(str(children[-1]), modifier, _span(meta))

    def parse_glob(self, meta: Meta, children: list[Any]) -> n.ParseGlob:
        source, rest = _parse_source(children)
        pattern = n.Str(_string(rest[0]), token_span(rest[0]))
        return n.ParseGlob(source, pattern, tuple(f.name for f in rest[1:]), _span(meta))

    def parse_regex(self, meta: Meta, children: list[Any]) -> n.ParseRegex:
        source, rest = _parse_source(children)
        pattern = n.Regex(_regex(rest[0]), token_span(rest[0]))
        return n.ParseRegex(source, pattern, tuple(f.name for f in rest[1:]), _span(meta))

    def dedup_cmd(self, meta: Meta, children: list[n.Expr]) -> n.Dedup:
        return n.Dedup(tuple(children), _span(meta))

    def source_cmd(self, meta: Meta, children: list[Any]) -> n.Unsupported:
        return n.Unsupported("SOURCE", _span(meta))

    def source_arg(self, meta: Meta, children: list[Any]) -> None:
        return None

    def filterindex_cmd(self, meta: Meta, children: list[Any]) -> n.Unsupported:
        return n.Unsupported("filterIndex", _span(meta))

    def pattern_cmd(self, meta: Meta, children: list[Any]) -> n.Unsupported:
        return n.Unsupported("pattern", _span(meta))

    def diff_cmd(self, meta: Meta, children: list[Any]) -> n.Unsupported:
        return n.Unsupported("diff", _span(meta))

    def anomaly_cmd(self, meta: Meta, children: list[Any]) -> n.Unsupported:
        return n.Unsupported("anomaly", _span(meta))

    def unmask_cmd(self, meta: Meta, children: list[Any]) -> n.Unsupported:
        return n.Unsupported("unmask", _span(meta))

    def projection(self, meta: Meta, children: list[Any]) -> n.Projection:
        expr: n.Expr = children[0]
        alias = children[1].name if len(children) > 1 else None
        text = self._text[expr.span.start : expr.span.end].strip()
        return n.Projection(expr, alias, text, _span(meta))

    def name(self, meta: Meta, children: list[Token]) -> n.Field:
        return n.Field(_name(children[0]), _span(meta))

    # ---- expressions

    def or_(self, meta: Meta, children: list[n.Expr]) -> n.Or:
        return n.Or(children[0], children[1], _span(meta))

    def and_(self, meta: Meta, children: list[n.Expr]) -> n.And:
        return n.And(children[0], children[1], _span(meta))

    def not_(self, meta: Meta, children: list[Any]) -> n.Not:
        return n.Not(children[1], _span(meta))

    def compare(self, meta: Meta, children: list[Any]) -> n.Compare:
        return n.Compare(str(children[1]), children[0], children[2], _span(meta))

    def like(self, meta: Meta, children: list[Any]) -> n.Like:
        token: Token = children[-1]
        pattern: n.Str | n.Regex
        if token.type == "REGEX":
            pattern = n.Regex(_regex(token), token_span(token))
        else:
            pattern = n.Str(_string(token), token_span(token))
        return n.Like(children[0], pattern, len(children) == 3, _span(meta))

    def match(self, meta: Meta, children: list[Any]) -> n.Like:
        token: Token = children[2]
        pattern = n.Regex(_regex(token), token_span(token))
        return n.Like(children[0], pattern, False, _span(meta))

    def in_(self, meta: Meta, children: list[Any]) -> n.In:
        return n.In(children[0], children[-1], len(children) == 3, _span(meta))

    def literal_list(self, meta: Meta, children: list[n.Literal]) -> tuple[n.Literal, ...]:
        return tuple(children)

    def list_item(self, meta: Meta, children: list[Token]) -> n.Literal:
        token = children[-1]
        span = _span(meta)
        if token.type == "STRING":
            return n.Str(_string(token), span)
        if token.type in ("TRUE", "FALSE"):
            return n.Bool(token.type == "TRUE", span)
        negative = len(children) == 2
        value = float(token)
        return n.Num(-value if negative else value, ("-" if negative else "") + token, span)

    def arith(self, meta: Meta, children: list[Any]) -> n.Arith:
        return n.Arith(str(children[1]), children[0], children[2], _span(meta))

    def power(self, meta: Meta, children: list[Any]) -> n.Arith:
        return n.Arith("^", children[0], children[2], _span(meta))

    def neg(self, meta: Meta, children: list[Any]) -> n.Neg:
        return n.Neg(children[1], _span(meta))

    def paren(self, meta: Meta, children: list[n.Expr]) -> n.Expr:
        # Keep the parentheses in the span: an unaliased `(a + b)` is named "(a + b)".
        return replace(children[0], span=_span(meta))

    def field(self, meta: Meta, children: list[Token]) -> n.Field:
        return n.Field(_name(children[0]), _span(meta))

    def call(self, meta: Meta, children: list[Any]) -> n.Call:
        return n.Call(str(children[0]), tuple(children[1:]), _span(meta))

    def period(self, meta: Meta, children: list[Token]) -> n.Period:
        text = str(children[0])
        digits = len(text) - len(text.lstrip("0123456789"))
        return n.Period(int(text[:digits]), text[digits:], _span(meta))

    def star(self, meta: Meta, children: list[Token]) -> n.Star:
        return n.Star(_span(meta))

    def string(self, meta: Meta, children: list[Token]) -> n.Str:
        return n.Str(_string(children[0]), _span(meta))

    def number(self, meta: Meta, children: list[Token]) -> n.Num:
        return n.Num(float(children[0]), str(children[0]), _span(meta))

    def true(self, meta: Meta, children: list[Token]) -> n.Bool:
        return n.Bool(True, _span(meta))

    def false(self, meta: Meta, children: list[Token]) -> n.Bool:
        return n.Bool(False, _span(meta))

    def __default__(self, data: Any, children: list[Any], meta: Meta) -> Any:
        raise AssertionError(f"no transformer for rule {data!r}")  # pragma: no cover


def _parse_source(children: list[Any]) -> tuple[n.Field | None, list[Any]]:
    """Split a parse command's children into the optional source field and the rest."""
    if isinstance(children[0], n.Field):
        return children[0], children[1:]
    return None, children
