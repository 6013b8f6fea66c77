"""What a function's compiler needs from the expression compiler. No I/O here."""

from __future__ import annotations

from typing import Protocol

from query import nodes as n
from query.periods import Bucket
from query.values import Params, Value

__all__ = ["Context", "arguments"]


class Context(Protocol):
    """What a function needs from the compiler."""

    params: Params

    def value(self, expr: n.Expr) -> Value: ...

    def timestamp(self, span: n.Span) -> Value: ...

    def bucket(self, period: n.Period) -> Bucket: ...

    def setting(self, name: str) -> int: ...

    def regex(self, pattern: str, span: n.Span) -> str:
        """Check a regex (spec §8.5), have RE2 compile it before the query runs, bind it."""
        ...


def arguments(ctx: Context, call: n.Call) -> list[Value]:
    return [ctx.value(a) for a in call.args if not isinstance(a, n.Period | n.Star)]
