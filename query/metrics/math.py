"""Evaluate metric-math expressions over the series of one GetMetricData request (spec §2.6).

The caller fetches every ``MetricStat`` query first (``query.metrics.statistics``), then asks
for the expressions it returns; expressions that other expressions name are evaluated on
demand, once. A value is a scalar (float; NaN is a missing scalar), a ``Series`` or a tuple of
series (TS[]). No I/O here.

Decisions (WK): combining two series whose periods differ is an error, as is combining two
arrays; ``[m1, m2]`` builds an array, as in CloudWatch; SUM of an empty series is 0 and AVG,
MIN, MAX of one are a missing scalar.
"""

from __future__ import annotations

import difflib
import math
import operator
from bisect import bisect_left
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Union

from core.metric_errors import MetricMathError
from query.metrics import math_parse as n
from query.metrics.series import Series, align, map_values
from query.metrics.window import plan_window

__all__ = ["MathContext", "SeriesResult", "Value", "evaluate_expressions"]

Value = Union[float, Series, tuple[Series, ...]]  # noqa: UP007 - a runtime alias
SeriesResult = Union[Series, tuple[Series, ...]]  # noqa: UP007

ADVANCED_FUNCTIONS = frozenset(
    "SEARCH SORT SLICE FIRST LAST REMOVE_EMPTY RUNNING_SUM STDDEV LOG LOG10 DIFF_TIME "
    "DATAPOINT_COUNT METRIC_COUNT MINUTE HOUR DAY DATE MONTH YEAR EPOCH CONCAT "
    "ANOMALY_DETECTION_BAND".split()
)
AWS_ONLY_FUNCTIONS = frozenset({"INSIGHT_RULE_METRIC", "SERVICE_QUOTA", "LAMBDA"})

_ARITHMETIC: dict[str, Callable[[float, float], float]] = {
    "+": operator.add,
    "-": operator.sub,
    "*": operator.mul,
    "/": operator.truediv,
    "^": math.pow,
    "==": lambda a, b: float(a == b),
    "!=": lambda a, b: float(a != b),
    "<": lambda a, b: float(a < b),
    "<=": lambda a, b: float(a <= b),
    ">": lambda a, b: float(a > b),
    ">=": lambda a, b: float(a >= b),
    "AND": lambda a, b: float(a != 0 and b != 0),
    "OR": lambda a, b: float(a != 0 or b != 0),
}


@dataclass(frozen=True, slots=True)
class MathContext:
    """What expressions can see: the fetched metric series (in request order) and the window."""

    metrics: Mapping[str, Series]
    expressions: Mapping[str, str]
    start_ms: int
    end_ms: int
    now_ms: int
    default_period_s: int = 60


def evaluate_expressions(
    context: MathContext, ids: Iterable[str] | None = None
) -> dict[str, SeriesResult]:
    """Evaluate the expressions ``ids`` (default: all); each must give a TS or TS[]."""
    evaluator = _Evaluator(context)
    results: dict[str, SeriesResult] = {}
    for query_id in context.expressions if ids is None else ids:
        try:
            value = evaluator.query(query_id)
        except RecursionError:
            raise MetricMathError(n.TOO_DEEP, query_id=query_id) from None
        if isinstance(value, float):
            raise MetricMathError(
                "the expression gives a single number, not a time series; "
                "TIME_SERIES(...) turns a number into one",
                query_id=query_id,
            )
        results[query_id] = value
    return results


class _Evaluator:
    def __init__(self, context: MathContext) -> None:
        self.context = context
        self.done: dict[str, Value] = {}
        self.stack: list[str] = []
        self.grids: dict[int, list[int]] = {}

    # ---- queries and references

    def query(self, query_id: str, column: int | None = None) -> Value:
        context = self.context
        if query_id in context.metrics:
            return context.metrics[query_id]
        if query_id in self.done:
            return self.done[query_id]
        if query_id not in context.expressions:
            known = ", ".join([*context.metrics, *context.expressions]) or "none"
            raise MetricMathError(
                f"unknown id {query_id!r}; the ids of this request are: {known}",
                query_id=self.stack[-1] if self.stack else None,
                column=column,
            )
        if query_id in self.stack:
            cycle = " -> ".join([*self.stack[self.stack.index(query_id) :], query_id])
            raise MetricMathError(f"circular reference: {cycle}", query_id=self.stack[-1])
        self.stack.append(query_id)
        try:
            value = self.eval(n.parse_expression(context.expressions[query_id]))
        except MetricMathError as error:
            if error.query_id is not None:
                raise
            raise MetricMathError(error.reason, query_id=query_id, column=error.column) from None
        finally:
            self.stack.pop()
        self.done[query_id] = value
        return value

    def error(self, message: str, node: n.Expr) -> MetricMathError:
        return MetricMathError(message, column=node.column)

    def eval(self, node: n.Expr) -> Value:
        match node:
            case n.Number():
                return node.value
            case n.Reference():
                return self.query(node.name, node.column)
            case n.String():
                raise self.error("a string is only allowed as the argument of METRICS", node)
            case n.Keyword():
                raise self.error(
                    f"{node.name} is not a value: did you mean {node.name}(...)?", node
                )
            case n.Array():
                members: list[Series] = []
                for item in node.items:
                    value = self.eval(item)
                    if isinstance(value, float):
                        raise self.error("an array holds time series, not numbers", item)
                    members += [value] if isinstance(value, Series) else value
                return tuple(members)
            case n.Negate():
                return self.combine("*", -1.0, self.eval(node.operand), node)
            case n.Binary():
                return self.combine(node.op, self.eval(node.left), self.eval(node.right), node)
            case n.Call():
                return self.call(node)

    # ---- operators

    def combine(self, op: str, left: Value, right: Value, node: n.Expr) -> Value:
        """Spec §2.6: element-wise, scalars broadcast, arrays apply to each member."""
        function = _ARITHMETIC[op]
        if isinstance(left, tuple) and isinstance(right, tuple):
            raise self.error(f"{op} cannot combine two arrays of time series", node)
        if isinstance(left, tuple):
            return tuple(self.series_of(self.combine(op, m, right, node)) for m in left)
        if isinstance(right, tuple):
            return tuple(self.series_of(self.combine(op, left, m, node)) for m in right)
        if isinstance(left, float) and isinstance(right, float):
            if math.isnan(left) or math.isnan(right):
                return math.nan
            try:
                result = function(left, right)
            except (ArithmeticError, ValueError):
                return math.nan  # a missing scalar: broadcast, it drops every point
            return result if math.isfinite(result) else math.nan
        if isinstance(left, Series) and isinstance(right, Series):
            self.same_period(node, left, right)
            return align(left, right, function)
        series, scalar = (left, right) if isinstance(left, Series) else (right, left)
        assert isinstance(series, Series) and isinstance(scalar, float)
        if math.isnan(scalar):
            return Series((), (), series.period_s, series.label)
        if series is left:
            return map_values(series, lambda v: function(v, scalar))
        return map_values(series, lambda v: function(scalar, v))

    def series_of(self, value: Value) -> Series:
        assert isinstance(value, Series)
        return value

    def same_period(self, node: n.Expr, *series: Series) -> None:
        periods = sorted({s.period_s for s in series})
        if len(periods) > 1:
            raise self.error(
                "cannot combine time series of different periods "
                f"({' s and '.join(map(str, periods))} s)",
                node,
            )

    # ---- functions

    def call(self, node: n.Call) -> Value:
        name = node.name
        if name in AWS_ONLY_FUNCTIONS:
            raise self.error(f"{name} reads AWS-only data and is not available in watchkeep", node)
        if name in ADVANCED_FUNCTIONS:
            raise self.error(f"{name} is not supported by watchkeep yet", node)
        handler = _FUNCTIONS.get(name)
        if handler is None:
            close = difflib.get_close_matches(name, [*_FUNCTIONS, *ADVANCED_FUNCTIONS], n=1)
            hint = f'; did you mean "{close[0]}"?' if close else ""
            raise self.error(f"unknown function {name}{hint}", node)
        low, high, function = handler
        if not low <= len(node.args) <= high:
            count = str(low) if low == high else f"{low} to {high}"
            raise self.error(f"{name} takes {count} arguments, not {len(node.args)}", node)
        return function(self, node)

    def grid(self, period_s: int) -> list[int]:
        """Every bucket of the window at this period: what FILL and TIME_SERIES fill."""
        if period_s not in self.grids:
            c = self.context
            self.grids[period_s] = plan_window(
                c.start_ms, c.end_ms, period_s, c.now_ms
            ).bucket_starts()
        return self.grids[period_s]

    def empty(self) -> Series:
        return Series((), (), self.context.default_period_s)

    def series_arg(
        self, node: n.Call, index: int, *, arrays: bool = True
    ) -> Series | tuple[Series, ...]:
        value = self.eval(node.args[index])
        if isinstance(value, float) or (isinstance(value, tuple) and not arrays):
            wanted = "a time series or an array of them" if arrays else "a single time series"
            raise self.error(
                f"{node.name} expects {wanted} as argument {index + 1}", node.args[index]
            )
        return value

    def scalar_arg(self, node: n.Call, index: int) -> float:
        value = self.eval(node.args[index])
        if not isinstance(value, float):
            raise self.error(
                f"{node.name} expects a number as argument {index + 1}", node.args[index]
            )
        return value


def _each(value: Series | tuple[Series, ...], function: Callable[[Series], Series]) -> Value:
    return tuple(function(s) for s in value) if isinstance(value, tuple) else function(value)


def _metrics(ev: _Evaluator, node: n.Call) -> Value:
    text = ""
    if node.args:
        arg = node.args[0]
        if not isinstance(arg, n.String):
            raise ev.error('METRICS takes an optional string, e.g. METRICS("errors")', arg)
        text = arg.text
    return tuple(s for query_id, s in ev.context.metrics.items() if text in query_id)


def _aggregate(name: str) -> Callable[[_Evaluator, n.Call], Value]:
    def aggregate(ev: _Evaluator, node: n.Call) -> Value:
        value = ev.series_arg(node, 0)
        if isinstance(value, Series):  # over every point of the window: a scalar
            if not value.values:
                return 0.0 if name == "SUM" else math.nan
            return _REDUCE[name](list(value.values), 1)
        if not value:
            return ev.empty()
        ev.same_period(node, *value)
        columns: dict[int, list[float]] = {}
        for member in value:
            for t, v in zip(member.timestamps, member.values, strict=True):
                columns.setdefault(t, []).append(v)
        # SUM and AVG count a missing member point as 0; MIN and MAX use the points present.
        return Series.of(
            {t: _REDUCE[name](vs, len(value)) for t, vs in columns.items()}, value[0].period_s
        )

    return aggregate


_REDUCE: dict[str, Callable[[list[float], int], float]] = {
    "SUM": lambda vs, members: math.fsum(vs),
    "AVG": lambda vs, members: math.fsum(vs) / max(members, len(vs)),
    "MIN": lambda vs, members: min(vs),
    "MAX": lambda vs, members: max(vs),
}


def _fill(ev: _Evaluator, node: n.Call) -> Value:
    target = ev.series_arg(node, 0)
    how = node.args[1]
    if isinstance(how, n.Keyword):
        if how.name not in ("REPEAT", "LINEAR"):
            raise ev.error(
                f"FILL takes a number, a time series, REPEAT or LINEAR, not {how.name}", how
            )
        return _each(target, lambda s: _fill_series(s, how.name, ev.grid(s.period_s)))
    value = ev.eval(how)
    if isinstance(value, tuple):
        raise ev.error("FILL cannot fill from an array of time series", how)
    return _each(target, lambda s: _fill_series(s, value, ev.grid(s.period_s)))


def _fill_series(series: Series, how: str | float | Series, grid: list[int]) -> Series:
    have = series.points()
    filled = dict(have)
    empty = [t for t in grid if t not in have]
    if isinstance(how, float):
        filled |= {t: how for t in empty}
    elif isinstance(how, Series):
        source = how.points()
        filled |= {t: source[t] for t in empty if t in source}
    elif how == "REPEAT":
        last = None
        for t in grid:
            if t in have:
                last = have[t]
            elif last is not None:
                filled[t] = last
    else:  # LINEAR: only between two real values
        times = series.timestamps
        for t in empty:
            after = bisect_left(times, t)
            if 0 < after < len(times):
                t0, t1 = times[after - 1], times[after]
                v0, v1 = series.values[after - 1], series.values[after]
                filled[t] = v0 + (v1 - v0) * (t - t0) / (t1 - t0)
    return Series.of(filled, series.period_s, series.label)


def _difference(per_second: bool) -> Callable[[_Evaluator, n.Call], Value]:
    def difference(ev: _Evaluator, node: n.Call) -> Value:
        def one(s: Series) -> Series:
            t, v = s.timestamps, s.values
            steps = range(1, len(t))
            if per_second:
                return Series.of(
                    ((t[i], (v[i] - v[i - 1]) * 1000 / (t[i] - t[i - 1])) for i in steps),
                    s.period_s,
                    s.label,
                )
            return Series.of(((t[i], v[i] - v[i - 1]) for i in steps), s.period_s, s.label)

        return _each(ev.series_arg(node, 0), one)

    return difference


def _if(ev: _Evaluator, node: n.Call) -> Value:
    condition, then = ev.eval(node.args[0]), ev.eval(node.args[1])
    otherwise = ev.eval(node.args[2]) if len(node.args) == 3 else None
    if any(isinstance(v, tuple) for v in (condition, then, otherwise)):
        raise ev.error("IF takes single time series or numbers, not arrays", node)
    if isinstance(condition, float):  # a scalar condition picks a whole operand
        if math.isnan(condition):
            return ev.empty()
        chosen = then if condition != 0 else otherwise
        return ev.empty() if chosen is None else chosen
    assert isinstance(condition, Series)
    ev.same_period(node, *(v for v in (condition, then, otherwise) if isinstance(v, Series)))
    # A picked series without a point: 0 for the "then" side, nothing for "else".
    then_at, else_at = _lookup(then, missing=0.0), _lookup(otherwise, missing=None)
    out: dict[int, float] = {}
    for t, c in zip(condition.timestamps, condition.values, strict=True):
        value = then_at(t) if c != 0 else else_at(t)
        if value is not None:
            out[t] = value
    return Series.of(out, condition.period_s, condition.label)


def _lookup(value: Value | None, missing: float | None) -> Callable[[int], float | None]:
    """The value an IF operand gives at a timestamp: a scalar everywhere, a series where set."""
    if value is None:
        return lambda t: None
    if isinstance(value, float):
        return lambda t: value
    assert isinstance(value, Series)
    points = value.points()
    return lambda t: points.get(t, missing)


def _elementwise(function: Callable[[float], float]) -> Callable[[_Evaluator, n.Call], Value]:
    def apply(ev: _Evaluator, node: n.Call) -> Value:
        value = ev.eval(node.args[0])
        if isinstance(value, float):
            return math.nan if math.isnan(value) else float(function(value))
        return _each(value, lambda s: map_values(s, lambda v: float(function(v))))

    return apply


def _time_series(ev: _Evaluator, node: n.Call) -> Value:
    value = ev.scalar_arg(node, 0)
    period = ev.context.default_period_s
    return Series.of(((t, value) for t in ev.grid(period)), period)


def _period(ev: _Evaluator, node: n.Call) -> Value:
    return float(ev.series_of(ev.series_arg(node, 0, arrays=False)).period_s)


_FUNCTIONS: dict[str, tuple[int, int, Callable[[_Evaluator, n.Call], Value]]] = {
    "METRICS": (0, 1, _metrics),
    "SUM": (1, 1, _aggregate("SUM")),
    "AVG": (1, 1, _aggregate("AVG")),
    "MIN": (1, 1, _aggregate("MIN")),
    "MAX": (1, 1, _aggregate("MAX")),
    "FILL": (2, 2, _fill),
    "DIFF": (1, 1, _difference(per_second=False)),
    "RATE": (1, 1, _difference(per_second=True)),
    "IF": (2, 3, _if),
    "ABS": (1, 1, _elementwise(abs)),
    "CEIL": (1, 1, _elementwise(math.ceil)),
    "FLOOR": (1, 1, _elementwise(math.floor)),
    "TIME_SERIES": (1, 1, _time_series),
    "PERIOD": (1, 1, _period),
}
