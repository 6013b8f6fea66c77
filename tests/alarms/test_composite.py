"""Composite rules (spec §5.11): grammar, precedence, evaluation, syntax errors with columns."""

from __future__ import annotations

import pytest

from alarms.composite import RuleSyntaxError, evaluate_rule, parse_rule
from alarms.evaluate import evaluate_composite
from alarms.rules import CompositeAlarm

STATES = {"a": "ALARM", "b": "OK", "c": "INSUFFICIENT_DATA", "my alarm": "ALARM"}

RULES = [
    ("ALARM(a)", True),
    ("OK(a)", False),
    ("OK(b)", True),
    ("INSUFFICIENT_DATA(c)", True),
    ("NOT ALARM(b)", True),
    ("NOT ALARM(c)", True),
    ("ALARM(a) AND OK(b)", True),
    ("ALARM(a) AND ALARM(b)", False),
    ("ALARM(b) OR ALARM(a)", True),
    ("ALARM(b) OR ALARM(c)", False),
    ("ALARM(b) AND ALARM(c) OR ALARM(a)", True),  # AND binds tighter than OR
    ("ALARM(b) AND (ALARM(c) OR ALARM(a))", False),
    ("NOT ALARM(a) OR OK(b)", True),  # NOT binds tighter than OR
    ("NOT (ALARM(a) OR OK(b))", False),
    ("NOT NOT ALARM(a)", True),
    ("alarm(a) and not ok(b)", False),  # case-insensitive keywords
    ("alarm(a) and not alarm(b)", True),
    ("TRUE", True),
    ("false", False),
    ("TRUE AND FALSE", False),
    ('ALARM("my alarm")', True),
    ("ALARM(arn:aws:cloudwatch:us-east-1:123456789012:alarm:a)", True),
    ("ALARM(unknown)", False),
    ("AT_LEAST(2, ALARM, (a, b, my-x))", False),
    ("AT_LEAST(1, ALARM, (a, b))", True),
    ("AT_LEAST(2, NOT ALARM, (a, b, c))", True),
    ("AT_LEAST(50%, OK, (a, b))", True),
    ("AT_LEAST(51%, OK, (a, b))", False),
]


@pytest.mark.parametrize("text, expected", RULES, ids=[r for r, _ in RULES])
def test_evaluate_rule(text: str, expected: bool) -> None:
    assert evaluate_rule(parse_rule(text).expr, STATES) is expected


def test_children_in_order_of_first_mention() -> None:
    rule = parse_rule('(ALARM(x) OR ALARM(y)) AND NOT ALARM(x) AND OK("z z")')
    assert rule.children == ("x", "y", "z z")


def test_keyword_named_child_is_a_reference() -> None:
    assert parse_rule("ALARM(and) OR ALARM(OK)").children == ("and", "OK")


ERRORS = [
    ("", "empty", 1),
    ("ALARM(a", "ends too early", 8),
    ("ALARM(a) AND", "ends too early", 13),
    ("ALARM(a) XOR ALARM(b)", "unexpected", 10),
    ("ALARM()", "unexpected", 7),
    ("BROKEN(a)", "unexpected", 1),
    ("ALARM(a) ALARM(b)", "unexpected", 10),
]


@pytest.mark.parametrize("text, fragment, column", ERRORS, ids=[e[0] or "empty" for e in ERRORS])
def test_syntax_errors(text: str, fragment: str, column: int) -> None:
    with pytest.raises(RuleSyntaxError) as info:
        parse_rule(text)
    assert fragment in info.value.reason
    assert info.value.column == column


def test_limits() -> None:
    with pytest.raises(RuleSyntaxError, match="101 alarms"):
        parse_rule(" OR ".join(f"ALARM(a{i})" for i in range(101)))
    with pytest.raises(RuleSyntaxError, match="limit is 10240"):
        parse_rule("TRUE OR " * 1300 + "TRUE")


def test_evaluate_composite() -> None:
    comp = CompositeAlarm.model_validate({"name": "c", "rule": "ALARM(a) AND NOT ALARM(d)"})
    result = evaluate_composite(comp, {"a": "ALARM", "d": "OK"}, "INSUFFICIENT_DATA", 0)
    assert result.state == "ALARM" and result.transition
    assert result.reason_data["triggeringAlarms"] == [
        {"name": "a", "state": {"value": "ALARM"}},
        {"name": "d", "state": {"value": "OK"}},
    ]
    again = evaluate_composite(comp, {"a": "ALARM", "d": "ALARM"}, "ALARM", 0)
    assert again.state == "OK" and again.transition
