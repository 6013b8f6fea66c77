"""Metric math (spec §2.6): the core functions on small aligned series, and the errors."""

from __future__ import annotations

import math

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from core.metric_errors import MetricMathError
from query.metrics.math import MathContext, evaluate_expressions
from query.metrics.math_parse import (
    Binary,
    Call,
    Keyword,
    Negate,
    Number,
    Reference,
    check_query_id,
    parse_expression,
    references,
)
from query.metrics.series import Series

T0 = 1_767_225_600_000
START, END = T0, T0 + 6 * 60_000  # six one-minute buckets: minutes 0..5


def at(minutes: float) -> int:
    return T0 + int(minutes * 60_000)


def series(points: dict[int, float], period_s: int = 60, label: str = "") -> Series:
    return Series.of({at(m): v for m, v in points.items()}, period_s, label)


METRICS = {
    "m1": series({0: 1, 1: 2, 3: 4}, label="Requests"),
    "m2": series({0: 10, 2: 0, 3: 2}, label="Errors"),
    "other": series({1: 5, 4: 7}, label="Other"),
}


def evaluate(
    expression: str, metrics: dict[str, Series] | None = None, **expressions: str
) -> object:
    context = MathContext(
        METRICS if metrics is None else metrics, {"e": expression, **expressions}, START, END, END
    )
    return evaluate_expressions(context, ["e"])["e"]


def points(value: object) -> dict[float, float]:
    assert isinstance(value, Series)
    return {(t - T0) / 60_000: v for t, v in zip(value.timestamps, value.values, strict=True)}


CASES: list[tuple[str, str, dict[float, float]]] = [
    # name, expression, expected points by minute
    ("reference", "m1", {0: 1, 1: 2, 3: 4}),
    ("scalar-broadcast", "m1 * 2 + 1", {0: 3, 1: 5, 3: 9}),
    ("scalar-left", "10 - m1", {0: 9, 1: 8, 3: 6}),
    ("add-missing-counts-as-zero", "m1 + m2", {0: 11, 1: 2, 2: 0, 3: 6}),
    ("subtract", "m1 - m2", {0: -9, 1: 2, 2: 0, 3: 2}),
    ("divide-by-zero-drops-point", "m1 / m2", {0: 0.1, 3: 2}),
    ("divide-by-scalar-zero", "m1 / 0", {}),
    ("power", "m1 ^ 2", {0: 1, 1: 4, 3: 16}),
    ("power-right-associative", "2 ^ 3 ^ 2 * m1 / m1", {0: 512, 1: 512, 3: 512}),
    ("negative-power-domain-error", "(0 - m1) ^ 0.5", {}),
    ("unary-minus", "-m1", {0: -1, 1: -2, 3: -4}),
    ("unary-minus-before-power", "-m1 ^ 2", {0: -1, 1: -4, 3: -16}),
    ("precedence", "1 + m1 * 2 ^ 2", {0: 5, 1: 9, 3: 17}),
    ("compare", "m1 > 1", {0: 0, 1: 1, 3: 1}),
    ("compare-series", "m1 >= m2", {0: 0, 1: 1, 2: 1, 3: 1}),
    ("equal", "m1 == 2", {0: 0, 1: 1, 3: 0}),
    ("and-missing-is-zero", "m1 AND m2", {0: 1, 1: 0, 2: 0, 3: 1}),
    ("and-symbol", "m1 && m2", {0: 1, 1: 0, 2: 0, 3: 1}),
    ("or", "m1 OR m2", {0: 1, 1: 1, 2: 0, 3: 1}),
    ("or-symbol", "m1 || m2", {0: 1, 1: 1, 2: 0, 3: 1}),
    ("and-binds-tighter-than-or", "m2 || m1 && 0", {0: 1, 2: 0, 3: 1, 1: 0}),
    ("sum-of-array", "SUM(METRICS())", {0: 11, 1: 7, 2: 0, 3: 6, 4: 7}),
    ("avg-of-array-missing-is-zero", "AVG([m1, m2])", {0: 5.5, 1: 1, 2: 0, 3: 3}),
    ("min-of-array-present-points", "MIN([m1, m2])", {0: 1, 1: 2, 2: 0, 3: 2}),
    ("max-of-array", 'MAX(METRICS("m"))', {0: 10, 1: 2, 2: 0, 3: 4}),
    ("metrics-filter", "SUM(METRICS('oth'))", {1: 5, 4: 7}),
    ("sum-of-series-is-scalar", "m1 / SUM(m1)", {0: 1 / 7, 1: 2 / 7, 3: 4 / 7}),
    ("avg-of-series", "m1 - AVG(m1)", {0: -4 / 3, 1: -1 / 3, 3: 5 / 3}),
    ("min-max-of-series", "TIME_SERIES(MAX(m1) - MIN(m1))", {m: 3 for m in range(6)}),
    ("fill-scalar", "FILL(m1, 0)", {0: 1, 1: 2, 2: 0, 3: 4, 4: 0, 5: 0}),
    ("fill-series", "FILL(m1, m2)", {0: 1, 1: 2, 2: 0, 3: 4}),
    ("fill-repeat", "FILL(m2, REPEAT)", {0: 10, 1: 10, 2: 0, 3: 2, 4: 2, 5: 2}),
    ("fill-repeat-not-before-first", "FILL(other, REPEAT)", {1: 5, 2: 5, 3: 5, 4: 7, 5: 7}),
    ("fill-linear", "FILL(other, LINEAR)", {1: 5, 2: 5 + 2 / 3, 3: 5 + 4 / 3, 4: 7}),
    ("diff", "DIFF(m1)", {1: 1, 3: 2}),
    ("rate-per-second", "RATE(m1)", {1: 1 / 60, 3: 2 / 120}),
    ("if-else", "IF(m1 > 1, m1, 100)", {0: 100, 1: 2, 3: 4}),
    ("if-then-missing-is-zero", "IF(m1, m2)", {0: 10, 1: 0, 3: 2}),
    ("if-else-missing-is-no-point", "IF(m1 < 3, 1, m2)", {0: 1, 1: 1, 3: 2}),
    ("if-no-else", "IF(m1 > 1, 7)", {1: 7, 3: 7}),
    ("if-scalar-condition", "IF(1, m1, m2)", {0: 1, 1: 2, 3: 4}),
    ("if-scalar-condition-false", "IF(0, m1, m2)", {0: 10, 2: 0, 3: 2}),
    ("abs", "ABS(m2 - 5)", {0: 5, 2: 5, 3: 3}),
    ("ceil-floor", "CEIL(m1 / 3) + FLOOR(m1 / 3)", {0: 1, 1: 1, 3: 3}),
    ("time-series", "TIME_SERIES(2)", {m: 2 for m in range(6)}),
    ("period", "m1 * 0 + PERIOD(m1)", {0: 60, 1: 60, 3: 60}),
    ("reference-to-expression", "e2 * 2", {0: 22, 1: 4, 2: 0, 3: 12}),
    ("scalar-expression-in-between", "m1 * e3", {0: 7, 1: 14, 3: 28}),
]


@pytest.mark.parametrize(
    ("expression", "expected"), [c[1:] for c in CASES], ids=[c[0] for c in CASES]
)
def test_expressions(expression: str, expected: dict[float, float]) -> None:
    result = evaluate(expression, e2="m1 + m2", e3="SUM(m1)")
    assert points(result) == pytest.approx(expected)


def test_arrays_keep_member_labels() -> None:
    result = evaluate("METRICS() * 2")
    assert isinstance(result, tuple)
    assert [s.label for s in result] == ["Requests", "Errors", "Other"]
    assert points(result[1]) == {0: 20, 2: 0, 3: 4}
    doubled = evaluate("FILL(METRICS('m'), 0)")
    assert isinstance(doubled, tuple) and [len(s.values) for s in doubled] == [6, 6]


def test_empty_inputs() -> None:
    assert points(evaluate("SUM(METRICS('none'))")) == {}
    assert points(evaluate("m1 * 0 + SUM(empty)", {"m1": METRICS["m1"], "empty": series({})})) == {
        0: 0,
        1: 0,
        3: 0,
    }
    assert points(evaluate("m1 + AVG(empty)", {"m1": METRICS["m1"], "empty": series({})})) == {}


ERRORS: list[tuple[str, dict[str, str], str, int | None, str]] = [
    # name, expressions (the one evaluated is "e"), failing id, column, message fragment
    ("syntax-end", {"e": "m1 +"}, "e", 5, "ends too early"),
    ("syntax-unexpected", {"e": "m1 + * 2"}, "e", 6, "unexpected '*'"),
    ("syntax-character", {"e": "m1 % 2"}, "e", 4, "unexpected character '%'"),
    ("syntax-upper-case-id", {"e": "M1 + 1"}, "e", 1, "not a value"),
    ("syntax-unterminated-string", {"e": 'METRICS("abc'}, "e", 9, "unterminated string"),
    ("syntax-chained-compare", {"e": "m1 < 2 < 3"}, "e", 8, "unexpected '<'"),
    ("empty", {"e": "  "}, "e", 1, "empty"),
    ("too-long", {"e": "m1" + " + 1" * 600}, "e", 2049, "limit is 2048"),
    ("unknown-id", {"e": "m1 + nope"}, "e", 6, "unknown id 'nope'"),
    ("unknown-id-in-referenced", {"e": "e2 + 1", "e2": "m1 * zz"}, "e2", 6, "unknown id 'zz'"),
    ("self-reference", {"e": "e + 1"}, "e", None, "circular reference: e -> e"),
    (
        "circular",
        {"e": "e2 * 2", "e2": "e3 + 1", "e3": "e"},
        "e3",
        None,
        "circular reference: e -> e2 -> e3 -> e",
    ),
    ("scalar-result", {"e": "SUM(m1)"}, "e", None, "single number"),
    ("two-arrays", {"e": "METRICS() + METRICS()"}, "e", 11, "two arrays"),
    ("mismatched-periods", {"e": "m1 + slow"}, "e", 4, "different periods (60 s and 300 s)"),
    ("mismatched-periods-in-array", {"e": "SUM([m1, slow])"}, "e", 1, "different periods"),
    ("unknown-function", {"e": "FLOR(m1)"}, "e", 1, 'did you mean "FLOOR"'),
    (
        "advanced-function",
        {"e": "SORT(METRICS(), SUM, DESC)"},
        "e",
        1,
        "not supported by watchkeep yet",
    ),
    ("aws-only", {"e": "SERVICE_QUOTA(m1)"}, "e", 1, "AWS-only"),
    ("arity", {"e": "DIFF(m1, m2)"}, "e", 1, "DIFF takes 1 arguments, not 2"),
    ("fill-bad-keyword", {"e": "FILL(m1, NEAREST)"}, "e", 10, "REPEAT or LINEAR"),
    ("metrics-needs-string", {"e": "SUM(METRICS(m1))"}, "e", 13, "optional string"),
    (
        "string-outside-metrics",
        {"e": "m1 + 'x'"},
        "e",
        6,
        "only allowed as the argument of METRICS",
    ),
    ("aggregate-of-scalar", {"e": "m1 * SUM(5)"}, "e", 10, "SUM expects a time series"),
    ("time-series-of-series", {"e": "TIME_SERIES(m1)"}, "e", 13, "expects a number"),
    ("period-of-array", {"e": "TIME_SERIES(PERIOD(METRICS()))"}, "e", 20, "a single time series"),
    ("array-of-numbers", {"e": "SUM([m1, 2])"}, "e", 10, "holds time series"),
    ("if-array", {"e": "IF(METRICS(), 1)"}, "e", 1, "not arrays"),
]


@pytest.mark.parametrize(
    ("expressions", "failing_id", "column", "fragment"),
    [c[1:] for c in ERRORS],
    ids=[c[0] for c in ERRORS],
)
def test_errors(
    expressions: dict[str, str], failing_id: str, column: int | None, fragment: str
) -> None:
    metrics = dict(METRICS) | {"slow": series({0: 1}, period_s=300)}
    context = MathContext(metrics, expressions, START, END, END)
    with pytest.raises(MetricMathError) as caught:
        evaluate_expressions(context, ["e"])
    error = caught.value
    assert fragment in error.message
    assert error.code == "InvalidParameterValueException"
    assert error.details.get("id") == failing_id
    assert error.details.get("column") == column


def test_parse_shapes_and_references() -> None:
    expr = parse_expression("-a ^ 2 + FILL(b, REPEAT) * 3")
    assert expr == Binary(
        "+",
        Negate(Binary("^", Reference("a", 2), Number(2.0, 6), 4), 1),
        Binary(
            "*", Call("FILL", (Reference("b", 15), Keyword("REPEAT", 18)), 10), Number(3.0, 28), 26
        ),
        8,
    )
    assert references(expr) == {"a", "b"}


def test_each_expression_is_evaluated_once() -> None:
    context = MathContext(
        METRICS, {"e1": "m1 * 2", "e2": "e1 + e1", "e3": "e1 * e2"}, START, END, END
    )
    results = evaluate_expressions(context)
    assert points(results["e3"]) == {0: 8, 1: 32, 3: 128}


@settings(max_examples=400, deadline=None)
@given(
    st.text(alphabet=st.sampled_from(list("m1e2 +-*/^()[],<>=!&|ANDORSUMFILL\"'.5xX")), max_size=30)
)
def test_arbitrary_text_only_raises_the_math_error(text: str) -> None:
    context = MathContext(METRICS, {"e": text}, START, END, END)
    try:
        result = evaluate_expressions(context, ["e"])["e"]
    except MetricMathError:
        return
    members = result if isinstance(result, tuple) else (result,)
    assert all(math.isfinite(v) for s in members for v in s.values)


@pytest.mark.parametrize("text", ["-" * 1000 + "m1", "2^" * 600 + "m1", "m1" + "+1" * 1000])
def test_deep_nesting_is_a_math_error(text: str) -> None:
    with pytest.raises(MetricMathError, match="nested too deeply"):
        evaluate(text)


@pytest.mark.parametrize("query_id", ["m1", "errorRate", "a_B_9", "x" * 255])
def test_valid_query_ids(query_id: str) -> None:
    assert check_query_id(query_id) == query_id


@pytest.mark.parametrize("query_id", ["", "M1", "1m", "_m", "m-1", "m 1", "x" * 256, "é"])
def test_invalid_query_ids(query_id: str) -> None:
    with pytest.raises(MetricMathError, match="invalid query id"):
        check_query_id(query_id)
