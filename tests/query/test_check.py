"""Rules of the language found before any data is read (spec §6.2, §9, §10, §12.2, §14.1)."""

from __future__ import annotations

import pytest

from query.errors import QueryError
from query.run import validate_query

ERRORS = [
    # (id, query, line, column, fragment of the message)
    ("limit-zero", "limit 0", 1, 1, "from 1 to 10,000; 0 is not one"),
    ("limit-too-big", "fields a | limit 10001", 1, 12, "10001 is not one"),
    ("limit-fraction", "limit 1.5", 1, 1, "1.5 is not one"),
    ("limit-any", "limit any 5", 1, 1, '"limit any" at line 1, column 1 is not supported'),
    (
        "unknown-function",
        "fields cout(x)",
        1,
        8,
        'Unknown function "cout" at line 1, column 8. Did you mean "count"?',
    ),
    ("unknown-aggregate", "stats median(x)", 1, 7, 'Unknown function "median"'),
    (
        "out-of-scope-function",
        "fields jsonParse(@message)",
        1,
        8,
        "jsonParse() at line 1, column 8 is not supported",
    ),
    (
        "too-many-args",
        "fields abs(1, 2)",
        1,
        8,
        "abs() at line 1, column 8 takes 1 argument, not 2",
    ),
    ("too-few-args", "fields concat()", 1, 8, "takes at least 1 argument"),
    ("aggregate-in-fields", "fields count(*)", 1, 8, "cannot be used outside stats"),
    ("aggregate-in-filter", "filter sum(x) > 1", 1, 8, "cannot be used outside stats"),
    ("aggregate-after-by", "stats count(*) by max(x)", 1, 19, "cannot be used after by"),
    ("nested-aggregate", "stats avg(count(*))", 1, 11, "nested inside avg()"),
    (
        "stats-without-aggregate",
        "stats x by y",
        1,
        7,
        '"x" at line 1, column 7 is not an aggregate',
    ),
    ("bare-field-beside-aggregate", "stats sum(x) + y", 1, 16, 'The field "y"'),
    ("star-outside-count", "stats sum(*)", 1, 11, "only allowed as count(*)"),
    ("unknown-period-unit", "stats count(*) by bin(5x)", 1, 23, 'Unknown period unit "x"'),
    ("zero-period", "stats count(*) by bin(0m)", 1, 23, "must be a positive number"),
    ("period-elsewhere", "fields abs(5m)", 1, 12, "only allowed in bin()"),
    ("bin-needs-period", "stats count(*) by bin(x)", 1, 19, "needs a period"),
    ("pct-out-of-range", "stats pct(x, 101)", 1, 14, "a number from 0 to 100"),
    ("lookahead", "filter x like /a(?=b)/", 1, 15, "lookahead"),
    ("lookbehind", "filter x =~ /(?<!a)b/", 1, 13, "lookbehind"),
    ("backreference", r"filter x like /(a)\1/", 1, 15, "backreference"),
    ("parse-regex-needs-names", r"parse @message /(\d+)/", 1, 16, "no named group"),
    ("parse-regex-with-as", r"parse @message /(?<a>\d+)/ as b", 1, 1, "'as' after a regex"),
    ("glob-count-mismatch", 'parse @message "* - *" as a', 1, 16, "has 2 * but 1 field names"),
    (
        "three-stats",
        "stats count(*) as a | stats count(*) as b | stats count(*) as c",
        1,
        45,
        "at most two stats",
    ),
    (
        "sort-before-second-stats",
        "stats count(*) as c by x | sort c | stats sum(c)",
        1,
        28,
        "sort must come after the second",
    ),
    (
        "limit-before-second-stats",
        "stats count(*) as c by x | limit 2 | stats sum(c)",
        1,
        28,
        "limit must come after",
    ),
    (
        "second-stats-unknown-field",
        "stats count(*) as c by x | stats sum(@message)",
        1,
        38,
        'The field "@message"',
    ),
    (
        "bin-in-second-stats",
        "stats count(*) as c by x | stats sum(c) by bin(1h)",
        1,
        44,
        "reads @timestamp",
    ),
    (
        "unknown-field-after-stats",
        "stats count(*) as c | display d",
        1,
        31,
        'The field "d" at line 1, column 31 does not exist after stats',
    ),
    ("display-after-dedup", "dedup a | display a", 1, 11, "Only limit may follow dedup"),
    ("filter-after-dedup", "dedup a | limit 3 | filter a", 1, 21, "Only limit may follow dedup"),
    (
        "unsupported-pattern",
        "pattern @message",
        1,
        1,
        '"pattern" at line 1, column 1 is not supported',
    ),
    ("unsupported-source", "SOURCE logGroups(namePrefix: ['a']) | fields a", 1, 1, '"SOURCE"'),
    ("unsupported-filterindex", "filterIndex region = 'eu'", 1, 1, '"filterIndex"'),
    ("bad-cidr", "filter isIpInSubnet(ip, '10.0.0.0/33')", 1, 25, "CIDR string literal"),
    ("v6-cidr-for-v4-function", "filter isIpv4InSubnet(ip, '::1/128')", 1, 27, "an IPv4 CIDR"),
    ("regex-replace-needs-literal", "fields regexReplace(a, b, 'x')", 1, 8, "as a string literal"),
    ("regex-replace-lookaround", "fields regexReplace(a, '(?!x)', 'y')", 1, 24, "lookahead"),
    (
        "duplicate-group-names",
        r"parse @message /(?<a>x)(?<a>y)/",
        1,
        16,
        'names the group "a" twice',
    ),
]


@pytest.mark.parametrize(
    ("query", "line", "column", "fragment"), [c[1:] for c in ERRORS], ids=[c[0] for c in ERRORS]
)
def test_malformed_queries(query: str, line: int, column: int, fragment: str) -> None:
    with pytest.raises(QueryError) as caught:
        validate_query(query)
    error = caught.value
    assert fragment in error.message
    assert (error.line, error.column) == (line, column), error.message
    assert error.code == "MalformedQueryException"
    location = error.details["queryCompileError"]["location"]
    assert location["startCharOffset"] == column - 1
    assert location["endCharOffset"] > location["startCharOffset"]


ACCEPTED = [
    ("period-spellings", "stats count(*) by bin(2hrs), bin(30SEC), bin(1Mo), bin(1qtr), bin(1y)"),
    ("period-cap-quirk", "stats count(*) by bin(300s)"),
    (
        "datefloor-in-second-stats",
        "stats count(*) as c by bin(5m) as t | stats max(c) by datefloor(t, 1h)",
    ),
    ("aggregate-arithmetic", "stats sum(bytes) / count(*) as avg_bytes, avg(bytes / 1024)"),
    ("field-beside-aggregate-if-grouped", "stats count(*) + x by x"),
    ("filter-between-stats", "stats count(*) as c by x | filter c > 1 | stats avg(c)"),
    ("unknown-field-before-stats", "filter nosuchfield = 1 | fields alsonothing"),
    ("keywords-as-backtick-names", "fields `in`, `by`, `not`"),
    ("extended-functions", "fields round(x, 2), if(a, 1, 2), case(a, 1, b, 2, 3), toNumber('1')"),
]


@pytest.mark.parametrize("query", [c[1] for c in ACCEPTED], ids=[c[0] for c in ACCEPTED])
def test_accepted_queries(query: str) -> None:
    validate_query(query)


def test_period_cap_warns() -> None:
    _, compiled = validate_query("stats count(*) by bin(300s)")
    assert compiled.warnings == ("period 300s is capped at 60s, as in CloudWatch",)
    assert "% 60000" in compiled.sql
