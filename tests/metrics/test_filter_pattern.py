"""Filter patterns (spec §4.3): every case runs through the Python matcher and through DuckDB."""

from __future__ import annotations

import re
from typing import Any

import duckdb
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from core.errors import BadRequest
from ingest.filter_pattern import (
    FilterPatternError,
    JsonPattern,
    MatchAll,
    SpacePattern,
    TextPattern,
    check_metric_transformation,
    compile_filter_sql,
    dimension_values,
    match,
    metric_sample,
    metric_selectors,
    parse_filter_pattern,
)

APACHE = '127.0.0.1 - frank [10/Oct/2000:13:55:36 -0700] "GET /apache_pb.gif HTTP/1.0" 404 2326'
APACHE_OK = '10.0.0.2 - - [10/Oct/2000:13:55:37 -0700] "GET /index.html HTTP/1.1" 200 15000'
APACHE_403 = '10.0.0.3 - bob [10/Oct/2000:13:55:38 -0700] "POST /admin HTTP/1.1" 403 99'
ORDER = '{"eventType": "UpdateTrail", "user": {"name": "ann", "id": 7}, "latency": 120.5, "tags": ["a", "b"], "ok": true, "gone": null, "code": "200", "n-1": {"x.y": 3}}'


def sql_matches(duck: duckdb.DuckDBPyConnection, pattern: str, message: str) -> bool:
    predicate, params = compile_filter_sql(pattern)
    row = duck.execute(
        f"SELECT {predicate} FROM (SELECT ?::VARCHAR AS message) AS events", [*params, message]
    ).fetchone()
    assert row is not None
    return bool(row[0])


MATCH_CASES: list[tuple[str, str, str, bool]] = [
    # name, pattern, message, matches
    ("empty-matches-all", "", "anything at all", True),
    ("blank-matches-all", "   ", "", True),
    ("term-substring", "ERROR", "ERRORCODE 5", True),
    ("term-case-sensitive", "ERROR", "error here", False),
    ("terms-all-required", "ERROR disk", "ERROR net", False),
    ("terms-all-present", "ERROR disk", "disk ERROR", True),
    ("quoted-phrase", '"Failed to process"', "x Failed to process y", True),
    ("quoted-phrase-order", '"Failed to process"', "process to Failed", False),
    ("quoted-escape", r'"say \"hi\""', 'they say "hi" loudly', True),
    ("quoted-empty", '""', "whatever", True),
    ("exclude", '"ERROR" -"Exiting"', "ERROR Exiting now", False),
    ("exclude-absent", '"ERROR" -"Exiting"', "ERROR still running", True),
    ("optional-either", "?ERROR ?WARN", "a WARN b", True),
    ("optional-none", "?ERROR ?WARN", "INFO only", False),
    ("mixed-required-and-optional", "disk ?ERROR ?WARN -ignored", "disk WARN", True),
    ("mixed-missing-required", "disk ?ERROR ?WARN", "net WARN", False),
    ("mixed-excluded", "disk ?ERROR ?WARN -ignored", "disk WARN ignored", False),
    ("json-string-equal", '{ $.eventType = "UpdateTrail" }', ORDER, True),
    ("json-bare-string", "{ $.eventType = UpdateTrail }", ORDER, True),
    ("json-string-differs", '{ $.eventType = "Other" }', ORDER, False),
    ("json-not-equal", '{ $.eventType != "Other" }', ORDER, True),
    ("json-wildcard-suffix", "{ $.eventType = *Trail }", ORDER, True),
    ("json-wildcard-prefix", "{ $.eventType = Update* }", ORDER, True),
    ("json-wildcard-both", '{ $.eventType = "*dateTr*" }', ORDER, True),
    ("json-wildcard-any", "{ $.user.name = * }", ORDER, True),
    ("json-wildcard-any-number", "{ $.latency = * }", ORDER, True),
    ("json-wildcard-any-null", "{ $.gone = * }", ORDER, True),
    ("json-wildcard-any-missing", "{ $.nothing = * }", ORDER, False),
    ("json-wildcard-any-object", "{ $.user = * }", ORDER, False),
    ("json-object-equal-false", '{ $.user = "x" }', ORDER, False),
    ("json-object-not-equal-false", '{ $.user != "x" }', ORDER, False),
    ("json-array-not-equal-false", '{ $.tags != "x" }', ORDER, False),
    ("json-missing-not-equal-false", '{ $.nothing != "x" }', ORDER, False),
    ("json-nested", "{ $.user.id = 7 }", ORDER, True),
    ("json-array-index", '{ $.tags[1] = "b" }', ORDER, True),
    ("json-array-index-out-of-range", "{ $.tags[5] NOT EXISTS }", ORDER, True),
    ("json-quoted-keys", '{ $["n-1"]["x.y"] = 3 }', ORDER, True),
    ("json-dashed-key", '{ $.n-1["x.y"] >= 3 }', ORDER, True),
    ("json-number-gt", "{ $.latency > 100 }", ORDER, True),
    ("json-number-le", "{ $.latency <= 120.5 }", ORDER, True),
    ("json-number-lt-false", "{ $.latency < 120.5 }", ORDER, False),
    ("json-number-scientific", "{ $.latency > 1.2e2 }", ORDER, True),
    ("json-number-negative", "{ $.latency > -5 }", ORDER, True),
    ("json-number-not-equal", "{ $.latency != 1 }", ORDER, True),
    ("json-numeric-string", "{ $.code = 200 }", ORDER, True),
    ("json-numeric-string-gt", "{ $.code > 199.5 }", ORDER, True),
    ("json-number-vs-quoted-text", '{ $.user.id = "7" }', ORDER, False),
    ("json-text-not-numeric", "{ $.eventType > 5 }", ORDER, False),
    ("json-number-ne-on-text", "{ $.eventType != 5 }", ORDER, True),
    ("json-is-true", "{ $.ok IS TRUE }", ORDER, True),
    ("json-is-false", "{ $.ok IS FALSE }", ORDER, False),
    ("json-is-null", "{ $.gone IS NULL }", ORDER, True),
    ("json-is-null-missing", "{ $.nothing IS NULL }", ORDER, False),
    ("json-not-exists", "{ $.nothing NOT EXISTS }", ORDER, True),
    ("json-not-exists-null", "{ $.gone NOT EXISTS }", ORDER, False),
    ("json-keywords-any-case", "{ $.gone is null }", ORDER, True),
    ("json-and", "{ $.ok IS TRUE && $.user.id = 7 }", ORDER, True),
    ("json-or", '{ $.user.id = 8 || $.eventType = "UpdateTrail" }', ORDER, True),
    ("json-and-binds-tighter", "{ $.user.id = 8 && $.ok IS TRUE || $.latency > 100 }", ORDER, True),
    (
        "json-and-binds-tighter-2",
        "{ $.latency > 100 || $.user.id = 8 && $.ok IS FALSE }",
        ORDER,
        True,
    ),
    ("json-parentheses", "{ ($.latency > 100 || $.user.id = 8) && $.ok IS FALSE }", ORDER, False),
    (
        "json-brief-example",
        '{ $.user.name = "ann" && ($.latency > 500 || $.gone IS NULL) }',
        ORDER,
        True,
    ),
    ("json-on-text-event", "{ $.a NOT EXISTS }", "plain text", False),
    ("json-on-array-event", "{ $.a NOT EXISTS }", "[1, 2]", False),
    ("json-duplicate-key-first-wins", "{ $.a = 1 }", '{"a": 1, "a": 2}', True),
    ("json-nan-not-numeric", "{ $.a > 1 }", '{"a": NaN}', False),
    (
        "space-all-fields",
        "[ip, user, username, timestamp, request, status_code, bytes]",
        APACHE,
        True,
    ),
    ("space-wrong-count", "[ip, user, username, timestamp, request, status_code]", APACHE, False),
    (
        "space-status-wildcard",
        "[ip, user, username, timestamp, request, status_code = 4*, bytes]",
        APACHE,
        True,
    ),
    (
        "space-status-wildcard-miss",
        "[ip, user, username, timestamp, request, status_code = 4*, bytes]",
        APACHE_OK,
        False,
    ),
    (
        "space-and-in-slot",
        "[ip, user, username, timestamp, request, status_code = 4* && status_code != 403, bytes]",
        APACHE_403,
        False,
    ),
    (
        "space-and-in-slot-404",
        "[ip, user, username, timestamp, request, status_code = 4* && status_code != 403, bytes]",
        APACHE,
        True,
    ),
    (
        "space-or-in-slot",
        "[ip, user, username, timestamp, request, status_code = 200 || status_code = 403, bytes]",
        APACHE_403,
        True,
    ),
    (
        "space-bytes-gt",
        "[ip, user, username, timestamp, request, status_code, bytes > 1000]",
        APACHE_OK,
        True,
    ),
    (
        "space-bytes-gt-miss",
        "[ip, user, username, timestamp, request, status_code, bytes > 1000]",
        APACHE_403,
        False,
    ),
    (
        "space-request-contains",
        "[ip, user, username, timestamp, request = *html*, status_code, bytes]",
        APACHE_OK,
        True,
    ),
    (
        "space-quotes-stripped",
        '[ip, user, username, timestamp, request = "GET /index.html HTTP/1.1", status_code, bytes]',
        APACHE_OK,
        True,
    ),
    ("space-brackets-stripped", "[ip, user, username, timestamp = 10/Oct*, ...]", APACHE_OK, True),
    ("space-ellipsis-tail", "[..., status_code = 404, bytes]", APACHE, True),
    ("space-ellipsis-head", "[ip = 10.*, ...]", APACHE_OK, True),
    ("space-ellipsis-middle", "[ip, ..., status_code = 200, bytes]", APACHE_OK, True),
    ("space-ellipsis-empty-middle", "[a, ..., b]", "x y", True),
    ("space-ellipsis-too-few", "[a, ..., b, c]", "x y", False),
    ("space-numeric-equal", "[a, b = 5]", "x 5.0", True),
    ("space-numeric-vs-dash", "[a, b > 1]", "x -", False),
    ("space-numeric-ne-dash", "[a, b != 1]", "x -", True),
    ("space-runs-of-spaces", "[a, b]", "  x   y  ", True),
    ("space-tabs", "[a, b = y]", "x\ty", True),
    ("space-empty", "[]", "", True),
]


@pytest.mark.parametrize(
    ("pattern", "message", "expected"),
    [case[1:] for case in MATCH_CASES],
    ids=[case[0] for case in MATCH_CASES],
)
def test_match_in_python_and_sql(
    duck: duckdb.DuckDBPyConnection, pattern: str, message: str, expected: bool
) -> None:
    assert match(pattern, message).matched is expected
    assert sql_matches(duck, pattern, message) is expected


FIELD_CASES: list[tuple[str, str, str, tuple[str, ...], dict[str, Any] | None]] = [
    (
        "space-named-and-numbered",
        "[ip, user, username, timestamp, request, status_code, bytes]",
        APACHE,
        (),
        {
            "$ip": "127.0.0.1",
            "$1": "127.0.0.1",
            "$user": "-",
            "$2": "-",
            "$username": "frank",
            "$3": "frank",
            "$timestamp": "10/Oct/2000:13:55:36 -0700",
            "$4": "10/Oct/2000:13:55:36 -0700",
            "$request": "GET /apache_pb.gif HTTP/1.0",
            "$5": "GET /apache_pb.gif HTTP/1.0",
            "$status_code": "404",
            "$6": "404",
            "$bytes": "2326",
            "$7": "2326",
        },
    ),
    (
        "space-ellipsis-numbering",
        "[ip, ..., status, bytes]",
        APACHE,
        (),
        {
            "$ip": "127.0.0.1",
            "$1": "127.0.0.1",
            "$status": "404",
            "$3": "404",
            "$bytes": "2326",
            "$4": "2326",
        },
    ),
    (
        "json-pattern-selectors",
        "{ $.latency > 100 && $.user.name = * }",
        ORDER,
        (),
        {"$.latency": 120.5, "$.user.name": "ann"},
    ),
    (
        "json-extra-selectors",
        "{ $.ok IS TRUE }",
        ORDER,
        ("$.user.id", "$.tags[0]", "$.gone", "$.user", "$.nothing"),
        {"$.ok": True, "$.user.id": 7, "$.tags[0]": "a", "$.gone": None},
    ),
    ("json-no-match-no-fields", "{ $.ok IS FALSE }", ORDER, ("$.user.id",), None),
    ("text-has-no-fields", "ERROR", "ERROR x", (), {}),
]


@pytest.mark.parametrize(
    ("pattern", "message", "selectors", "fields"),
    [case[1:] for case in FIELD_CASES],
    ids=[case[0] for case in FIELD_CASES],
)
def test_fields_of_a_match(
    pattern: str, message: str, selectors: tuple[str, ...], fields: dict[str, Any] | None
) -> None:
    result = match(pattern, message, selectors=selectors)
    assert result.matched is (fields is not None)
    assert result.fields == (fields or {})


def test_parse_shapes() -> None:
    assert parse_filter_pattern("") == MatchAll()
    assert parse_filter_pattern('A "b c" -d ?e ?"f g"') == TextPattern(
        ("A", "b c"), ("e", "f g"), ("d",)
    )
    json_pattern = parse_filter_pattern('{ $.a["b"][0] = x }')
    assert isinstance(json_pattern, JsonPattern)
    assert [s.text for s in json_pattern.selectors] == ["$.a.b[0]"]
    space = parse_filter_pattern("[a, ..., b > 1]")
    assert isinstance(space, SpacePattern)
    assert [(s.name, s.position) for s in space.slots] == [("a", 1), (None, 2), ("b", 3)]


ERROR_CASES: list[tuple[str, str, int, str]] = [
    # name, pattern, column, message fragment
    ("unquoted-punctuation", "ERROR:", 6, "must be quoted"),
    ("unquoted-dash-inside", 'ok "x" a.b', 9, "must be quoted"),
    ("unterminated-quote", 'a "b', 3, "unterminated quoted string"),
    ("regex-unsupported", "%ab+c%", 1, "%regex% patterns are not supported"),
    ("json-unclosed", "{ $.a = 1", 10, "ends too early"),
    ("json-no-selector", "{ a = 1 }", 3, "a selector such as $.field"),
    ("json-no-operator", "{ $.a }", 7, "'='"),
    ("json-relational-text", "{ $.a > abc }", 9, "needs a number"),
    ("json-relational-quoted", '{ $.a > "5" }', 9, "needs a number"),
    ("json-bad-keyword", "{ $.a IS MAYBE }", 10, "'NULL'"),
    ("json-double-and", "{ $.a = 1 && && $.b = 2 }", 14, "unexpected '&&'"),
    ("json-trailing", "{ $.a = 1 } x", 13, "end of the pattern"),
    ("json-huge-index", "{ $.a[12345678901] = 1 }", 6, "too large"),
    ("space-unclosed", "[a, b", 6, "ends too early"),
    ("space-duplicate-name", "[a, a]", 5, "used twice"),
    ("space-two-ellipses", "[a, ..., b, ...]", 13, "one ... only"),
    ("space-other-name-in-slot", "[a, b = 1 && c = 2]", 14, "must all name it"),
    ("space-relational-text", "[a, b < x]", 9, "needs a number"),
    ("too-long", "a" * 1025, 1025, "limit is 1024"),
]


@pytest.mark.parametrize(
    ("pattern", "column", "fragment"),
    [case[1:] for case in ERROR_CASES],
    ids=[case[0] for case in ERROR_CASES],
)
def test_errors_name_the_column(pattern: str, column: int, fragment: str) -> None:
    with pytest.raises(FilterPatternError) as caught:
        parse_filter_pattern(pattern)
    error = caught.value
    assert error.code == "InvalidParameterException"
    assert error.status == 400
    assert error.details["column"] == column
    assert f"column {column}" in error.message
    assert fragment in error.message


def test_values_are_parameters_not_sql_text() -> None:
    sql, params = compile_filter_sql('{ $.a = "x\'); DROP TABLE t; --" }')
    assert "DROP" not in sql
    assert "x'); DROP TABLE t; --" in params


@settings(max_examples=400, deadline=None)
@given(st.text(max_size=60))
def test_any_text_parses_or_raises_the_pattern_error(text: str) -> None:
    try:
        parse_filter_pattern(text)
    except FilterPatternError as error:
        assert 1 <= error.details["column"] <= len(text) + 1


_alphabet = st.sampled_from(
    [
        "{",
        "}",
        "[",
        "]",
        "$",
        ".",
        "a",
        "b",
        "=",
        "!",
        ">",
        "<",
        "&",
        "|",
        "(",
        ")",
        '"',
        "*",
        "-",
        "?",
        " ",
        ",",
        "1",
        "5",
        "IS",
        "NULL",
        "NOT",
        "EXISTS",
        "...",
    ]
)


@settings(max_examples=300, deadline=None)
@given(st.lists(_alphabet, max_size=20).map("".join))
def test_pattern_like_text_parses_or_raises_the_pattern_error(text: str) -> None:
    try:
        parse_filter_pattern(text)
    except FilterPatternError:
        pass


# ---- Python and SQL agree on generated patterns and events ---------------------------------

_words = st.sampled_from(["a", "b", "ab", "5", "10", "-3", "1e1", "x y", "", "true", "null"])
_json_scalars = (
    st.none() | st.booleans() | st.integers(-20, 20) | st.sampled_from([0.5, 10.0, -2.5]) | _words
)
_json_values = st.recursive(
    _json_scalars,
    lambda inner: (
        st.lists(inner, max_size=3)
        | st.dictionaries(st.sampled_from(["a", "b", "c"]), inner, max_size=3)
    ),
    max_leaves=6,
)
_json_events = st.dictionaries(st.sampled_from(["a", "b", "c"]), _json_values, max_size=3).map(
    lambda d: __import__("json").dumps(d)
)
_text_events = st.lists(
    st.sampled_from(["a", "b", "ab", "5", "10", "-3", "1e1", '"x y"', "[p q]", "-", "2.5", "a*"]),
    max_size=5,
).map(" ".join)

_selector = st.sampled_from(["$.a", "$.b", "$.a.b", "$.a[0]", "$.c[1]", "$.b.c"])
_value = st.sampled_from(
    ["5", "-3", "10", "1e1", "2.5", "a", "ab", "*", "a*", "*b", "*b*", '"x y"', '"5"', "true"]
)
_number = st.sampled_from(["5", "-3", "10", "1e1", "2.5", "0"])
_op = st.sampled_from(["=", "!="])
_rel = st.sampled_from(["<", "<=", ">", ">="])
_json_test = (
    st.tuples(_selector, _op, _value).map(" ".join)
    | st.tuples(_selector, _rel, _number).map(" ".join)
    | st.tuples(_selector, st.sampled_from(["IS NULL", "IS TRUE", "IS FALSE", "NOT EXISTS"])).map(
        " ".join
    )
)
_json_condition = st.recursive(
    _json_test,
    lambda inner: st.tuples(inner, st.sampled_from(["&&", "||"]), inner).map(
        lambda t: f"({' '.join(t)})"
    ),
    max_leaves=4,
)
_json_patterns = _json_condition.map(lambda c: "{ " + c + " }")


def _slot(name: str) -> st.SearchStrategy[str]:
    compare = st.tuples(st.just(name), _op, _value).map(" ".join) | st.tuples(
        st.just(name), _rel, _number
    ).map(" ".join)
    joined = st.tuples(compare, st.sampled_from(["&&", "||"]), compare).map(" ".join)
    return st.just(name) | compare | joined


_space_patterns = st.integers(0, 4).flatmap(
    lambda n: st.tuples(*[_slot(f"f{i}") for i in range(n)], st.integers(-1, n)).map(
        lambda t: (
            "["
            + ", ".join(
                list(t[:-1])[: t[-1]] + ["..."] + list(t[:-1])[t[-1] :]
                if t[-1] >= 0
                else list(t[:-1])
            )
            + "]"
        )
    )
)
_text_patterns = st.lists(
    st.tuples(
        st.sampled_from(["", "-", "?"]), st.sampled_from(["a", "b", "5", '"x y"', '"a*"', "ab"])
    ).map("".join),
    max_size=4,
).map(" ".join)


@settings(
    max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    st.one_of(
        st.tuples(_json_patterns, _json_events | _text_events),
        st.tuples(_space_patterns, _text_events),
        st.tuples(_text_patterns, _text_events),
    )
)
def test_python_matcher_and_sql_agree(
    duck: duckdb.DuckDBPyConnection, case: tuple[str, str]
) -> None:
    pattern, message = case
    assert match(pattern, message).matched is sql_matches(duck, pattern, message), (
        pattern,
        message,
    )


# ---- metric filters: what a match publishes (spec §4.1-4.2) ---------------------------------

SPACE = "[ip, user, username, timestamp, request, status_code, bytes]"
PUBLISH_CASES: list[
    tuple[str, str, str, str, dict[str, str], float | None, dict[str, str] | None]
] = [
    # name, pattern, message, metric value, dimensions, sample, dimension values
    ("constant", "ERROR", "ERROR x", "1", {}, 1.0, {}),
    ("json-selector", "{ $.latency > 0 }", ORDER, "$.latency", {}, 120.5, {}),
    (
        "json-selector-not-in-pattern",
        "{ $.ok IS TRUE }",
        ORDER,
        "$.user.id",
        {"User": "$.user.name"},
        7.0,
        {"User": "ann"},
    ),
    ("json-numeric-string", "{ $.ok IS TRUE }", ORDER, "$.code", {}, 200.0, {}),
    ("json-value-not-a-number", "{ $.ok IS TRUE }", ORDER, "$.eventType", {}, None, {}),
    (
        "json-dimension-number",
        "{ $.ok IS TRUE }",
        ORDER,
        "1",
        {"Id": "$.user.id", "Ok": "$.ok"},
        1.0,
        {"Id": "7", "Ok": "true"},
    ),
    ("json-dimension-missing", "{ $.ok IS TRUE }", ORDER, "1", {"X": "$.nothing"}, 1.0, None),
    ("json-dimension-object", "{ $.ok IS TRUE }", ORDER, "1", {"X": "$.user"}, 1.0, None),
    ("json-dimension-null", "{ $.ok IS TRUE }", ORDER, "1", {"X": "$.gone"}, 1.0, None),
    (
        "space-by-name",
        SPACE,
        APACHE,
        "$bytes",
        {"Status": "$status_code"},
        2326.0,
        {"Status": "404"},
    ),
    (
        "space-by-position",
        SPACE,
        APACHE,
        "$7",
        {"Request": "$5"},
        2326.0,
        {"Request": "GET /apache_pb.gif HTTP/1.0"},
    ),
    ("space-dash-is-not-a-number", SPACE, APACHE, "$user", {}, None, {}),
]


@pytest.mark.parametrize(
    ("pattern", "message", "metric_value", "dimensions", "sample", "dimension_values_"),
    [case[1:] for case in PUBLISH_CASES],
    ids=[case[0] for case in PUBLISH_CASES],
)
def test_what_a_match_publishes(
    pattern: str,
    message: str,
    metric_value: str,
    dimensions: dict[str, str],
    sample: float | None,
    dimension_values_: dict[str, str] | None,
) -> None:
    check_metric_transformation(pattern, metric_value, dimensions)
    result = match(pattern, message, selectors=metric_selectors(metric_value, dimensions))
    assert result.matched
    assert metric_sample(result, metric_value) == sample
    assert dimension_values(result, dimensions) == dimension_values_


TRANSFORMATION_ERRORS: list[tuple[str, str, str, dict[str, str], float | None, str]] = [
    ("json-selector-on-text", "ERROR", "$.latency", {}, None, "JSON { } pattern"),
    ("field-on-json", "{ $.a = 1 }", "$bytes", {}, None, "must be a number"),
    ("unknown-field", SPACE, "$size", {}, None, "names no field"),
    ("position-out-of-range", SPACE, "$8", {}, None, "names no field"),
    ("ellipsis-position", "[a, ..., b]", "$2", {}, None, "names no field"),
    (
        "constant-dimension",
        SPACE,
        "1",
        {"Status": "404"},
        None,
        "must be a number, a JSON selector",
    ),
    ("dimensions-on-text", "ERROR", "1", {"Level": "$level"}, None, "dimensions need"),
    ("dimensions-on-empty", "", "1", {"Level": "$.level"}, None, "dimensions need"),
    (
        "default-with-dimensions",
        SPACE,
        "1",
        {"Status": "$status_code"},
        0.0,
        "cannot be used together",
    ),
    (
        "too-many-dimensions",
        SPACE,
        "1",
        {"A": "$1", "B": "$2", "C": "$3", "D": "$4"},
        None,
        "3 dimensions at most",
    ),
    ("value-too-long", "{ $.a = 1 }", "$." + "a" * 100, {}, None, "100 characters"),
    ("bad-selector", "{ $.a = 1 }", "$.a b", {}, None, "Invalid filter pattern"),
]


@pytest.mark.parametrize(
    ("pattern", "metric_value", "dimensions", "default_value", "fragment"),
    [case[1:] for case in TRANSFORMATION_ERRORS],
    ids=[case[0] for case in TRANSFORMATION_ERRORS],
)
def test_transformation_errors(
    pattern: str,
    metric_value: str,
    dimensions: dict[str, str],
    default_value: float | None,
    fragment: str,
) -> None:
    with pytest.raises(BadRequest, match=re.escape(fragment)):
        check_metric_transformation(pattern, metric_value, dimensions, default_value=default_value)
