"""How deeply an expression may nest, and chains of one operator (spec §14.1 [decision]).

Every pass over an expression (``check``, the compiler, DuckDB's own parser and binder) walks it
recursively, so nesting needs a bound that all of them can afford. The rule, checked by ``parse``
before any other pass sees the query:

* An expression may be at most ``MAX_EXPRESSION_DEPTH`` (50) levels deep. Each function call,
  unary operator (``-``, ``not``, ``!``), comparison, ``like``, ``in`` and binary operation adds
  one level to the operands it holds; names and literals add none, and neither do parentheses.
* A **chain**, the left operand of an operation being an operation of the same kind, adds a
  single level however long it is: ``a + b - c * d`` (arithmetic), ``x = 1 or x = 2 or x = 3``,
  ``a and b and c``. A flat chain of thousands of terms is a legitimate query; passes walk its
  operands in a loop (``chain``) and the compiler gives DuckDB SQL whose depth does not grow with
  its length (a flat ``AND``/``OR`` list, ``list_reduce`` for long arithmetic).

The limit is far above what people write by hand (``if(a, 1, if(b, 2, ...))`` ten deep is a lot)
and low enough that every pass stays well inside Python's default recursion limit and DuckDB's
``max_expression_depth`` of 1,000: one level costs DuckDB at most about a dozen levels of its own
(type conversions, ``CASE``, and a short arithmetic chain nested in SQL); tests/query/
test_nesting.py holds both to it. The size of the SQL, which conversions between text and numbers
can make grow exponentially with nesting, has its own bound (``expressions.MAX_EXPRESSION_SQL``).
No I/O here.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import TypeVar, cast

from query import nodes as n
from query.errors import QueryError

__all__ = ["MAX_EXPRESSION_DEPTH", "TOO_DEEP", "chain", "check_depth", "depth", "operands"]

MAX_EXPRESSION_DEPTH = 50
TOO_DEEP = "nested too deeply"

_Link = TypeVar("_Link", bound=n.Arith | n.And | n.Or)


def chain(expr: _Link) -> tuple[list[n.Expr], list[_Link]]:
    """The operands of the chain rooted at ``expr``, left to right, and its links in order.

    ``1 + 2 * 3 - 4`` is ``[1, 2 * 3, 4]`` with the links ``+`` then ``-``: folding the operands
    from the left with the links' operators gives the expression back.
    """
    links = [expr]
    while type(links[-1].left) is type(expr):
        links.append(cast(_Link, links[-1].left))
    links.reverse()
    return [links[0].left, *(link.right for link in links)], links


def operands(expr: n.Expr) -> list[n.Expr]:
    """The expressions ``expr`` holds, a chain's operands flattened; a call's arguments are not
    included (they are ``Arg``s, which may be periods or ``*``)."""
    match expr:
        case n.Arith() | n.And() | n.Or():
            return chain(expr)[0]
        case n.Neg(operand) | n.Not(operand):
            return [operand]
        case n.Compare(_, left, right):
            return [left, right]
        case n.Like(subject) | n.In(subject):
            return [subject]
        case _:
            return []


def _inside(expr: n.Expr) -> list[n.Expr]:
    if isinstance(expr, n.Call):
        return [a for a in expr.args if not isinstance(a, n.Period | n.Star)]
    return operands(expr)


def depth(expr: n.Expr) -> int:
    """The number of levels of ``expr`` (see the module docstring); without recursion."""
    deepest = 0
    stack = [(expr, 0)]
    while stack:
        node, above = stack.pop()
        inside = _inside(node)
        if not inside and not isinstance(node, n.Call):
            continue
        level = above + 1
        deepest = max(deepest, level)
        stack.extend((child, level) for child in inside)
    return deepest


def _expressions(command: n.Command) -> Iterator[n.Expr]:
    match command:
        case n.Fields(items) | n.Display(items):
            yield from (item.expr for item in items)
        case n.Filter(condition):
            yield condition
        case n.Stats(aggregates, groups):
            yield from (item.expr for item in (*aggregates, *groups))
        case n.Sort(keys):
            yield from (key.expr for key in keys)
        case n.Dedup(exprs):
            yield from exprs
        case _:
            pass  # parse and the rest hold no expressions, only names and patterns


def check_depth(query: n.Query) -> None:
    """Raise ``QueryError`` for the first expression nested deeper than the limit."""
    for command in query.commands:
        for expr in _expressions(command):
            levels = depth(expr)
            if levels > MAX_EXPRESSION_DEPTH:
                span = expr.span
                raise QueryError(
                    f"The expression at line {span.line}, column {span.column} is {TOO_DEEP}: "
                    f"{levels} levels, and the limit is {MAX_EXPRESSION_DEPTH}. Each function "
                    "call, operator or comparison inside another adds a level (a chain such as "
                    "a + b - c or x = 1 or x = 2 adds one however long it is). Simplify it, or "
                    "compute a part in an earlier command: fields ... as part.",
                    span,
                )
