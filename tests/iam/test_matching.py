"""Wildcard matching and condition tests: tables, plus hypothesis against a reference matcher."""

from __future__ import annotations

import functools
import time
from datetime import UTC, datetime

import pytest
from hypothesis import given
from hypothesis import strategies as st

from iam.matching import PatternSet, RequestContext, compile_condition, wildcard_match

NOW = datetime(2026, 1, 5, 12, 0, tzinfo=UTC)


def reference_match(pattern: str, value: str) -> bool:
    """The obvious recursive definition: '*' any run, '?' one character, the rest literal."""

    @functools.cache
    def match(i: int, j: int) -> bool:
        if i == len(pattern):
            return j == len(value)
        if pattern[i] == "*":
            return match(i + 1, j) or (j < len(value) and match(i, j + 1))
        if j == len(value):
            return False
        return (pattern[i] == "?" or pattern[i] == value[j]) and match(i + 1, j + 1)

    return match(0, 0)


# (pattern, value, ignore_case, expected)
WILDCARDS = [
    ("*", "", False, True),
    ("*", "arn:watchkeep:logs:local:1:log-group:a/b", False, True),
    ("prod-*", "prod-", False, True),
    ("prod-*", "prod-api", False, True),
    ("prod-*", "xprod-api", False, False),
    ("prod-*", "Prod-api", False, False),
    ("*-api", "prod-api", False, True),
    ("*-api", "prod-api2", False, False),
    ("log-group:prod-*", "log-group:prod-a:log-stream:s/1", False, True),
    ("a*b*c", "abc", False, True),
    ("a*b*c", "aXbYbZc", False, True),
    ("a*b*c", "acb", False, False),
    ("a**b", "ab", False, True),
    ("ab*ba", "aba", False, False),
    ("app-?", "app-1", False, True),
    ("app-?", "app-", False, False),
    ("app-?", "app-12", False, False),
    ("app-?", "app-:", False, True),
    ("?*?", "a", False, False),
    ("?*?", "ab", False, True),
    ("a?c*", "a/c", False, True),
    ("[ab]", "a", False, False),
    ("[ab]", "[ab]", False, True),
    ("[!a]*", "b", False, False),
    ("[!a]*", "[!a]x", False, True),
    ("x.y", "xzy", False, False),
    ("x+y", "x+y", False, True),
    ("a\\b", "a\\b", False, True),
    ("line*", "line\nbreak", False, True),
    ("logs:*", "LOGS:CreateLogGroup", True, True),
    ("LOGS:createloggroup", "logs:CreateLogGroup", True, True),
    ("logs:Get?ogEvents", "logs:GETLOGEVENTS", True, True),
    ("logs:createloggroup", "logs:CreateLogGroup", False, False),
    ("logs:k*", "logs:\u212a", True, False),  # the Kelvin sign is not an ASCII 'K'
]


@pytest.mark.parametrize(
    ("pattern", "value", "ignore_case", "expected"),
    WILDCARDS,
    ids=[f"{p!r}-{v!r}{'-ci' if ci else ''}" for p, v, ci, _ in WILDCARDS],
)
def test_wildcard_match(pattern: str, value: str, ignore_case: bool, expected: bool) -> None:
    assert wildcard_match(pattern, value, ignore_case=ignore_case) is expected
    assert PatternSet([pattern], ignore_case=ignore_case).matches(value) is expected


ALPHABET = "ab:/[]!.*?"


@st.composite
def pattern_and_value(draw: st.DrawFn) -> tuple[str, str]:
    """A pattern and a value that often matches it: each '*' and '?' filled in at random."""
    pattern = draw(st.text(ALPHABET, max_size=12))
    if draw(st.booleans()):
        return pattern, draw(st.text(ALPHABET, max_size=16))
    parts = []
    for char in pattern:
        if char == "*":
            parts.append(draw(st.text(ALPHABET, max_size=4)))
        elif char == "?":
            parts.append(draw(st.text(ALPHABET, min_size=1, max_size=1)))
        else:
            parts.append(char)
    return pattern, "".join(parts)


@given(pattern_and_value())
def test_wildcard_match_agrees_with_reference(case: tuple[str, str]) -> None:
    pattern, value = case
    assert wildcard_match(pattern, value) == reference_match(pattern, value)


@given(st.text("aAbB:*?", max_size=10), st.text("aAbB:", max_size=12))
def test_ignore_case_agrees_with_reference_on_lowered(pattern: str, value: str) -> None:
    expected = reference_match(pattern.lower(), value.lower())
    assert wildcard_match(pattern, value, ignore_case=True) == expected


@given(st.lists(st.text(ALPHABET, max_size=8), min_size=1, max_size=4), st.text(ALPHABET))
def test_pattern_set_is_any_of_its_patterns(patterns: list[str], value: str) -> None:
    expected = any(reference_match(p, value) for p in patterns)
    assert PatternSet(patterns, ignore_case=False).matches(value) == expected


def test_many_stars_do_not_backtrack() -> None:
    # As a regex, '.*a.*a…c' against a long run of 'a' takes exponential time.
    pattern, value = "*a" * 15 + "*c", "a" * 5000
    started = time.perf_counter()
    assert not wildcard_match(pattern, value)
    assert time.perf_counter() - started < 0.5


def ctx(
    source_ip: str = "10.1.2.3",
    current_time: datetime = NOW,
    secure_transport: bool = True,
    username: str | None = "alice",
) -> RequestContext:
    return RequestContext(source_ip, current_time, secure_transport, username)


# (operator, key, values, context, expected)
CONDITIONS = [
    ("IpAddress", "wk:SourceIp", ["10.0.0.0/8"], ctx(), True),
    ("IpAddress", "wk:SourceIp", ["10.0.0.0/8"], ctx(source_ip="192.168.1.1"), False),
    ("IpAddress", "wk:SourceIp", ["192.168.0.0/16", "10.1.2.3"], ctx(), True),
    ("IpAddress", "wk:SourceIp", ["10.0.0.0/8"], ctx(source_ip="::ffff:10.9.9.9"), True),
    ("IpAddress", "wk:SourceIp", ["10.0.0.0/8"], ctx(source_ip="testclient"), False),
    ("IpAddress", "wk:SourceIp", ["2001:db8::/32"], ctx(source_ip="2001:db8::1"), True),
    ("IpAddress", "wk:SourceIp", ["2001:db8::/32"], ctx(source_ip="2001:db9::1"), False),
    ("IpAddress", "wk:SourceIp", ["::/0"], ctx(source_ip="10.1.2.3"), False),
    ("NotIpAddress", "wk:SourceIp", ["10.0.0.0/8"], ctx(), False),
    ("NotIpAddress", "wk:SourceIp", ["10.0.0.0/8"], ctx(source_ip="192.168.1.1"), True),
    ("NotIpAddress", "wk:SourceIp", ["192.168.0.0/16", "10.0.0.0/8"], ctx(), False),
    ("NotIpAddress", "wk:SourceIp", ["10.0.0.0/8"], ctx(source_ip="2001:db8::1"), True),
    ("NotIpAddress", "wk:SourceIp", ["10.0.0.0/8"], ctx(source_ip="testclient"), True),
    ("DateGreaterThan", "wk:CurrentTime", ["2026-01-01T00:00:00Z"], ctx(), True),
    ("DateGreaterThan", "wk:CurrentTime", ["2026-02-01"], ctx(), False),
    ("DateGreaterThan", "wk:CurrentTime", ["2026-02-01", "2025-01-01"], ctx(), True),
    ("DateGreaterThan", "wk:CurrentTime", ["2026-01-05T12:00:00Z"], ctx(), False),
    ("DateLessThan", "wk:CurrentTime", ["2026-01-05T12:00:01Z"], ctx(), True),
    ("DateLessThan", "wk:CurrentTime", ["2026-01-05T13:00:00+02:00"], ctx(), False),
    ("DateLessThan", "wk:CurrentTime", [1767614400 + 1], ctx(), True),
    ("DateLessThan", "wk:CurrentTime", ["1767614400"], ctx(), False),
    ("Bool", "wk:SecureTransport", ["true"], ctx(), True),
    ("Bool", "wk:SecureTransport", [False], ctx(), False),
    ("Bool", "wk:SecureTransport", ["FALSE"], ctx(secure_transport=False), True),
    ("StringEquals", "wk:username", ["alice"], ctx(), True),
    ("StringEquals", "wk:username", ["Alice"], ctx(), False),
    ("StringEquals", "wk:username", ["bob", "alice"], ctx(), True),
    ("StringNotEquals", "wk:username", ["bob", "carol"], ctx(), True),
    ("StringNotEquals", "wk:username", ["bob", "alice"], ctx(), False),
    ("StringLike", "wk:username", ["ali*"], ctx(), True),
    ("StringLike", "wk:username", ["ali?"], ctx(), False),
    ("StringLike", "wk:username", ["ALI*"], ctx(), False),
    ("StringLike", "wk:username", ["bo*", "?lice"], ctx(), True),
    ("StringNotLike", "wk:username", ["ops-*", "admin"], ctx(), True),
    ("StringNotLike", "wk:username", ["ops-*", "a*"], ctx(), False),
    ("StringEquals", "wk:username", ["alice"], ctx(username=None), False),
    ("StringLike", "wk:username", ["*"], ctx(username=None), True),
]


@pytest.mark.parametrize(
    ("operator", "key", "values", "context", "expected"),
    CONDITIONS,
    ids=[f"{op}-{vals}-{c.source_ip}-{c.username}" for op, _, vals, c, _ in CONDITIONS],
)
def test_condition(
    operator: str, key: str, values: list[object], context: RequestContext, expected: bool
) -> None:
    assert compile_condition(operator, key, values).test(context) is expected


def test_condition_keeps_values_as_written() -> None:
    condition = compile_condition("Bool", "wk:SecureTransport", [True, "false"])
    assert (condition.operator, condition.key, condition.values) == (
        "Bool",
        "wk:SecureTransport",
        ("true", "false"),
    )


def test_request_context_needs_an_aware_time() -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        RequestContext("10.0.0.1", datetime(2026, 1, 5, 12, 0), True, "alice")


def test_condition_needs_a_value() -> None:
    with pytest.raises(ValueError, match="at least one value"):
        compile_condition("DateLessThan", "wk:CurrentTime", [])
