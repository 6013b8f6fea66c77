"""Aggregate functions (spec §10) compiled to DuckDB aggregates. No I/O here.

Numeric aggregates read their inputs numerically and skip what does not read as a number;
``min``/``max`` of strings follow the natural order (§11) unless every input is a number.
"""

from __future__ import annotations

from collections.abc import Callable

from query import nodes as n
from query.context import Context
from query.errors import QueryError
from query.values import Kind, Value, natural_struct, render_double_sql, to_num

__all__ = ["compile_aggregate"]


def _operand(ctx: Context, call: n.Call) -> Value:
    arg = call.args[0]
    assert not isinstance(arg, n.Period | n.Star)
    return ctx.value(arg)


def _count(ctx: Context, call: n.Call) -> Value:
    if not call.args or isinstance(call.args[0], n.Star):
        return Value("count(*)", Kind.INT, nullable=False)
    return Value(f"count({_operand(ctx, call).sql})", Kind.INT, nullable=False)


def _count_distinct(ctx: Context, call: n.Call) -> Value:
    return Value(f"count(DISTINCT {_operand(ctx, call).sql})", Kind.INT, nullable=False)


def _numeric(sql_name: str) -> Callable[[Context, n.Call], Value]:
    def compile_numeric(ctx: Context, call: n.Call) -> Value:
        return Value(f"{sql_name}({to_num(_operand(ctx, call), ctx.params)})", Kind.NUM)

    return compile_numeric


def _extreme(smallest: bool) -> Callable[[Context, n.Call], Value]:
    plain, by_key = ("min", "arg_min") if smallest else ("max", "arg_max")

    def compile_extreme(ctx: Context, call: n.Call) -> Value:
        value = _operand(ctx, call)
        if value.kind is not Kind.STR:
            return Value(f"{plain}({value.sql})", value.kind)
        number = to_num(value, ctx.params)
        # All inputs numbers: numeric order, shown as a number. Else the natural order.
        natural = (
            f"{by_key}({value.sql}, {natural_struct(value, ctx.params)}) "
            f"FILTER (WHERE {value.sql} IS NOT NULL)"
        )
        numeric = render_double_sql(f"{plain}({number})")
        sql = f"CASE WHEN count({value.sql}) = count({number}) THEN {numeric} ELSE {natural} END"
        return Value(sql, Kind.STR)

    return compile_extreme


def _sorts(first: bool) -> Callable[[Context, n.Call], Value]:
    plain, by_key = ("min", "arg_min") if first else ("max", "arg_max")

    def compile_sorts(ctx: Context, call: n.Call) -> Value:
        value = _operand(ctx, call)
        if value.kind is not Kind.STR:
            return Value(f"{plain}({value.sql})", value.kind)
        key = natural_struct(value, ctx.params)
        sql = f"{by_key}({value.sql}, {key}) FILTER (WHERE {value.sql} IS NOT NULL)"
        return Value(sql, Kind.STR)

    return compile_sorts


def _pct(ctx: Context, call: n.Call) -> Value:
    value = _operand(ctx, call)
    rank = call.args[1]
    percent = _percent(rank)
    if percent is None:
        raise QueryError(
            "pct() takes a number from 0 to 100 as its second argument, e.g. pct(latency, 99).",
            rank.span,
        )
    fraction = ctx.params.add(percent / 100)
    if value.kind in (Kind.INT, Kind.TS, Kind.NUM):
        return Value(f"quantile_disc({value.sql}, {fraction})", value.kind)
    return Value(f"quantile_disc({to_num(value, ctx.params)}, {fraction})", Kind.NUM)


def _percent(arg: n.Arg) -> float | None:
    if isinstance(arg, n.Num) and 0 <= arg.value <= 100:
        return arg.value
    return None


def _timed(first: bool) -> Callable[[Context, n.Call], Value]:
    by_key = "arg_min" if first else "arg_max"

    def compile_timed(ctx: Context, call: n.Call) -> Value:
        value = _operand(ctx, call)
        ts = ctx.timestamp(call.span)
        sql = f"{by_key}({value.sql}, {ts.sql}) FILTER (WHERE {value.sql} IS NOT NULL)"
        return Value(sql, value.kind)

    return compile_timed


_AGGREGATES: dict[str, Callable[[Context, n.Call], Value]] = {
    "count": _count,
    "count_distinct": _count_distinct,
    "sum": _numeric("sum"),
    "avg": _numeric("avg"),
    "stddev": _numeric("stddev_samp"),
    "min": _extreme(smallest=True),
    "max": _extreme(smallest=False),
    "pct": _pct,
    "earliest": _timed(first=True),
    "latest": _timed(first=False),
    "sortsfirst": _sorts(first=True),
    "sortslast": _sorts(first=False),
}


def compile_aggregate(ctx: Context, call: n.Call) -> Value:
    """SQL for an aggregate call that ``query.check`` accepted."""
    return _AGGREGATES[call.name.lower()](ctx, call)
