"""Expressions (spec §8) to SQL: field resolution, operators, and calls. No I/O here.

A field name resolves through the ``Scope``: system fields and fields made by earlier commands,
then promoted columns of the schema, then the ``fields`` map of the long tail, else missing.
After ``stats`` only the fields it produced exist, and naming another one is an error (§6.2).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Protocol

from query import nodes as n
from query.context import Context
from query.errors import QueryError
from query.functions import compile_scalar
from query.nesting import chain
from query.periods import Bucket, resolve_period
from query.regex import analyze_regex
from query.signatures import AGGREGATES
from query.values import (
    Kind,
    Params,
    Value,
    is_number_sql,
    literal,
    reads_as_number,
    to_bool,
    to_num,
    to_str,
)

__all__ = ["ExpressionCompiler", "Scope"]

# Converting text to a number (or back) repeats the SQL of the value several times, so SQL can
# grow exponentially with nesting: ``concat(1 + concat(1 + ...))`` passes 2 GB at five levels.
# Twice the largest that a plain 10,000-character query needs (about 2 MB: ``concat(a, b) in``
# a list of 5,000 numbers repeats the subject for each of them).
MAX_EXPRESSION_SQL = 4_000_000
# Arithmetic chains longer than this compile to one list_reduce (``_reduce``); shorter ones nest.
LONG_CHAIN = 8
_OPERATORS = {"=": "=", "!=": "<>", "<": "<", "<=": "<=", ">": ">", ">=": ">="}


@dataclass(slots=True)
class Scope:
    """The fields a record has at one point of the pipeline, as SQL over the current stage."""

    fields: dict[str, Value]
    raw: bool
    field_map: str | None = None


class Host(Protocol):
    """The compiler, as expressions see it."""

    params: Params
    scope: Scope

    def regex(self, pattern: str, span: n.Span) -> str: ...

    def setting(self, name: str) -> int: ...

    def warn(self, message: str) -> None: ...


class ExpressionCompiler(Context):
    def __init__(self, host: Host, aggregate: Callable[[Context, n.Call], Value]) -> None:
        self.host = host
        self.params = host.params
        self._aggregate = aggregate
        self._extra: Mapping[str, Value] = {}
        self._aggregates = False

    # ---- entry points

    def value(
        self,
        expr: n.Expr,
        *,
        extra: Mapping[str, Value] | None = None,
        aggregates: bool | None = None,
    ) -> Value:
        """Compile ``expr``; ``extra`` holds aliases of the command being compiled."""
        saved = (self._extra, self._aggregates)
        if extra is not None:
            self._extra = extra
        if aggregates is not None:
            self._aggregates = aggregates
        try:
            return self._expr(expr)
        finally:
            self._extra, self._aggregates = saved

    def field(self, name: str, span: n.Span | None = None) -> Value:
        if name in self._extra:
            return self._extra[name]
        scope = self.host.scope
        if name in scope.fields:
            return scope.fields[name]
        if not scope.raw:
            where = "" if span is None else f" at line {span.line}, column {span.column}"
            known = ", ".join(sorted(scope.fields)) or "none"
            raise QueryError(
                f'The field "{name}"{where} does not exist after stats; the fields that stats '
                f"produced are: {known}.",
                span or n.Span(1, 1, 0, 0),
            )
        if scope.field_map is None:
            return Value("CAST(NULL AS VARCHAR)", Kind.STR)
        return Value(f"{scope.field_map}[{self.params.add(name)}]", Kind.STR)

    # ---- Context for functions

    def timestamp(self, span: n.Span) -> Value:
        scope = self.host.scope
        value = self._extra.get("@timestamp") or scope.fields.get("@timestamp")
        if value is None or value.kind is not Kind.TS:
            raise QueryError(
                f"This function at line {span.line}, column {span.column} reads @timestamp, "
                "which does not exist after stats: carry a time forward from the first stats "
                "(e.g. by bin(5m) as t) and use datefloor(t, 1h).",
                span,
            )
        return value

    def bucket(self, period: n.Period) -> Bucket:
        bucket = resolve_period(period)
        if bucket.warning:
            self.host.warn(bucket.warning)
        return bucket

    def setting(self, name: str) -> int:
        return self.host.setting(name)

    def regex(self, pattern: str, span: n.Span) -> str:
        info = analyze_regex(pattern, span)
        return self.host.regex(info.pattern, span)

    # ---- expressions

    def _expr(self, expr: n.Expr) -> Value:
        value = self._build(expr)
        if len(value.sql) > MAX_EXPRESSION_SQL:
            span = expr.span
            raise QueryError(
                f"The expression at line {span.line}, column {span.column} compiles to more than "
                f"{MAX_EXPRESSION_SQL:,} characters of SQL: each level that turns text into a "
                "number or back repeats the levels inside it. Compute the inner part in an "
                "earlier command (fields ... as part) and use its name instead.",
                span,
            )
        return value

    def _build(self, expr: n.Expr) -> Value:
        match expr:
            case n.Str(value) | n.Bool(value):
                return literal(self.params, value)
            case n.Num(value):
                return literal(self.params, value)
            case n.Field(name, span):
                return self.field(name, span)
            case n.Call():
                return self._call(expr)
            case n.Neg(operand):
                return Value(f"(-{to_num(self._expr(operand), self.params)})", Kind.NUM)
            case n.Arith():
                return self._arith(expr)
            case n.Compare(op, left, right):
                return self._compare(op, self._expr(left), self._expr(right))
            case n.Like():
                return self._like(expr)
            case n.In():
                return self._in(expr)
            case n.Not(operand):
                return Value(f"(NOT {to_bool(self._expr(operand), self.params)})", Kind.BOOL)
            case n.And() | n.Or():
                return self._logic(expr)

    def _call(self, call: n.Call) -> Value:
        if call.name.lower() in AGGREGATES:
            assert self._aggregates, "check() refuses aggregates outside stats"
            saved = self._aggregates
            self._aggregates = False
            try:
                return self._aggregate(self, call)
            finally:
                self._aggregates = saved
        return compile_scalar(self, call)

    def _logic(self, expr: n.And | n.Or) -> Value:
        terms, _ = chain(expr)
        op = "AND" if isinstance(expr, n.And) else "OR"
        sql = [to_bool(self._expr(t), self.params) for t in terms]
        # A chain is one flat list (DuckDB then keeps it one level deep however long it is).
        return Value(f"({f' {op} '.join(sql)})", Kind.BOOL)

    def _arith(self, expr: n.Arith) -> Value:
        terms, links = chain(expr)
        values = [to_num(self._expr(t), self.params) for t in terms]
        if len(values) > LONG_CHAIN:
            return Value(_reduce(values, [link.op for link in links]), Kind.NUM)
        sql = values[0]
        for link, b in zip(links, values[1:], strict=True):
            sql = _arith_sql(link.op, sql, b)
        return Value(sql, Kind.NUM)

    def _compare(self, op: str, a: Value, b: Value) -> Value:
        """Spec §8.3: numeric when both sides read as numbers, else by code points."""
        sql_op = _OPERATORS[op]
        if Kind.NULL in (a.kind, b.kind):
            return Value("CAST(NULL AS BOOLEAN)", Kind.BOOL)
        if a.kind.numeric or b.kind.numeric:
            if a.kind is Kind.TS and b.kind is Kind.TS or a.kind is b.kind is Kind.INT:
                return Value(f"({a.sql} {sql_op} {b.sql})", Kind.BOOL)
            return Value(f"({to_num(a, self.params)} {sql_op} {to_num(b, self.params)})", Kind.BOOL)
        # Both strings.
        text = f"({a.sql} {sql_op} {b.sql})"
        for const, other in ((a, b), (b, a)):
            if const.is_const:
                if not reads_as_number(str(const.const)):
                    return Value(text, Kind.BOOL)
                numeric = f"({to_num(a, self.params)} {sql_op} {to_num(b, self.params)})"
                return Value(
                    f"CASE WHEN {is_number_sql(other)} THEN {numeric} ELSE {text} END", Kind.BOOL
                )
        numeric = f"(CAST({a.sql} AS DOUBLE) {sql_op} CAST({b.sql} AS DOUBLE))"
        both = f"{is_number_sql(a)} AND {is_number_sql(b)}"
        return Value(f"CASE WHEN {both} THEN {numeric} ELSE {text} END", Kind.BOOL)

    def _like(self, expr: n.Like) -> Value:
        subject = to_str(self._expr(expr.subject))
        pattern = expr.pattern
        if isinstance(pattern, n.Regex):
            test = f"regexp_matches({subject}, {self.regex(pattern.pattern, pattern.span)})"
        else:
            # Literal substring: SQL LIKE would treat % and _ as wildcards (spec §8.5).
            test = f"contains({subject}, {self.params.add(pattern.value)})"
        return Value(f"(NOT {test})" if expr.negated else test, Kind.BOOL)

    def _in(self, expr: n.In) -> Value:
        subject = self._expr(expr.subject)
        items = [literal(self.params, item.value) for item in expr.items]
        if not items:
            test = f"CASE WHEN {subject.sql} IS NULL THEN NULL ELSE false END"
        elif subject.kind is Kind.STR and all(
            i.kind is Kind.STR and not reads_as_number(str(i.const)) for i in items
        ):
            test = f"{subject.sql} IN ({', '.join(i.sql for i in items)})"
        elif subject.kind is Kind.NUM and all(i.kind is Kind.NUM for i in items):
            test = f"{subject.sql} IN ({', '.join(i.sql for i in items)})"
        else:
            test = "(" + " OR ".join(self._compare("=", subject, i).sql for i in items) + ")"
        return Value(f"(NOT {test})" if expr.negated else f"({test})", Kind.BOOL)


def _arith_sql(op: str, a: str, b: str) -> str:
    match op:
        case "/":
            # Division by zero is null (spec §8.2), not DuckDB's infinity.
            return f"({a} / nullif({b}, 0))"
        case "%":
            return f"({a} % nullif({b}, 0))"
        case "^":
            return f"pow({a}, {b})"
        case _:
            return f"({a} {op} {b})"


_OP_CODES = {"+": 1, "-": 2, "*": 3, "/": 4, "%": 5, "^": 6}
# ``q['v']``, not ``q.v``: DuckDB would read ``q.v`` as field v of a column q, if one exists.
_ACC, _NEXT = "p['v']", "q['v']"
_STEP = (
    "lambda p, q: {'o': 0, 'v': CASE q['o'] "
    + " ".join(f"WHEN {c} THEN {_arith_sql(op, _ACC, _NEXT)}" for op, c in _OP_CODES.items())
    + " END}"
)


def _reduce(values: list[str], ops: list[str]) -> str:
    """A long arithmetic chain as a left fold in one ``list_reduce``: nested operators would
    cost DuckDB one level of its ``max_expression_depth`` (1,000) each. The same operations in
    the same order on the same DOUBLEs, so the same results and nulls."""
    items = [f"{{'o': 0, 'v': {values[0]}}}"]
    items += [f"{{'o': {_OP_CODES[op]}, 'v': {v}}}" for op, v in zip(ops, values[1:], strict=True)]
    return f"list_reduce([{', '.join(items)}], {_STEP})['v']"
