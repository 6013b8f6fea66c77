"""The grammar: what parses into which nodes, and structured syntax errors (spec §4, §5, §14.1)."""

from __future__ import annotations

import pytest

from query import nodes as n
from query.errors import QuerySyntaxError
from query.parse import MAX_QUERY_CHARS, parse


def only_expr(text: str) -> n.Expr:
    command = parse(f"filter {text}").commands[0]
    assert isinstance(command, n.Filter)
    return command.condition


def shape(expr: n.Expr | n.Arg) -> str:
    """A compact, span-free rendering of an expression tree, for precedence tests."""
    match expr:
        case n.Field(name):
            return name
        case n.Str(value):
            return repr(value)
        case n.Num(_, text):
            return text
        case n.Bool(value):
            return str(value).lower()
        case n.Period(quantity, unit):
            return f"{quantity}{unit}"
        case n.Star():
            return "*"
        case n.Call(name, args):
            return f"{name}({', '.join(shape(a) for a in args)})"
        case n.Neg(operand):
            return f"(-{shape(operand)})"
        case n.Arith(op, left, right) | n.Compare(op, left, right):
            return f"({shape(left)} {op} {shape(right)})"
        case n.Like(subject, pattern, negated):
            word = "not like" if negated else "like"
            text = f"/{pattern.pattern}/" if isinstance(pattern, n.Regex) else repr(pattern.value)
            return f"({shape(subject)} {word} {text})"
        case n.In(subject, items, negated):
            word = "not in" if negated else "in"
            return f"({shape(subject)} {word} [{', '.join(shape(i) for i in items)}])"
        case n.Not(operand):
            return f"(not {shape(operand)})"
        case n.And(left, right):
            return f"({shape(left)} and {shape(right)})"
        case n.Or(left, right):
            return f"({shape(left)} or {shape(right)})"
    raise AssertionError(expr)


PRECEDENCE = [
    ("or-binds-loosest", "a = 1 or b = 2 and c = 3", "((a = 1) or ((b = 2) and (c = 3)))"),
    ("not-above-and", "not a = 1 and b", "((not (a = 1)) and b)"),
    ("bang-is-not", "!isPresent(x)", "(not isPresent(x))"),
    ("arith-over-compare", "a + 2 * 3 >= 4", "((a + (2 * 3)) >= 4)"),
    ("left-assoc", "a - b - c", "((a - b) - c)"),
    ("power-right-assoc", "2 ^ 3 ^ 2", "(2 ^ (3 ^ 2))"),
    ("unary-minus-below-power", "-2 ^ 2", "(-(2 ^ 2))"),
    ("not-like-regex", r"msg not like /a\/b/", "(msg not like /a/b/)"),
    ("match-operator", "msg =~ /x+/", "(msg like /x+/)"),
    ("in-mixed-list", "x in ['a', 1, -2, true]", "(x in ['a', 1, -2, true])"),
    ("not-in", "x not in []", "(x not in [])"),
    ("keywords-any-case", "a AND NOT b Or c", "((a and (not b)) or c)"),
    ("keyword-prefix-is-a-name", "index and order and notes", "((index and order) and notes)"),
    ("dotted-and-digit-segments", "hops.0.ip = labels.1", "(hops.0.ip = labels.1)"),
    ("backtick-name", "`content-type` = 'json'", "(content-type = 'json')"),
    ("at-names", "@@version = @timestamp", "(@@version = @timestamp)"),
    ("count-star-and-period", "count(*) > bin(5m)", "(count(*) > bin(5m))"),
    ("exponent-number-not-period", "f(1e3, .5, 2.)", "f(1e3, .5, 2.)"),
    ("string-escapes", r"""x = "a\"b\\c\d" """, r"""(x = 'a"b\\c\\d')"""),
    ("single-quotes", r"x = 'it\'s'", """(x = "it's")"""),
]


@pytest.mark.parametrize(
    ("text", "expected"), [c[1:] for c in PRECEDENCE], ids=[c[0] for c in PRECEDENCE]
)
def test_expression_shape(text: str, expected: str) -> None:
    assert shape(only_expr(text)) == expected


def test_commands_and_spans() -> None:
    query = parse(
        "fields @timestamp, (a + b) as total # a comment | not a pipe\n"
        "| parse @message '[*] *' as level, rest\n"
        "| parse msg /id=(?<id>\\d+)/\n"
        "| stats count(*), avg(total) as mean by bin(5m) as t, level\n"
        "| sort mean asc, t\n"
        "| limit 10"
    )
    fields, glob, regex, stats, sort, limit = query.commands
    assert isinstance(fields, n.Fields)
    assert [p.name for p in fields.items] == ["@timestamp", "total"]
    assert fields.items[1].text == "(a + b)"
    assert isinstance(glob, n.ParseGlob) and glob.source == n.Field("@message", glob.source.span)
    assert glob.pattern.value == "[*] *" and glob.names == ("level", "rest")
    assert isinstance(regex, n.ParseRegex) and regex.pattern.pattern == r"id=(?<id>\d+)"
    assert isinstance(stats, n.Stats)
    assert [p.name for p in stats.aggregates] == ["count(*)", "mean"]
    assert [p.name for p in stats.groups] == ["t", "level"]
    assert stats.span.line == 4 and stats.span.column == 3
    assert isinstance(sort, n.Sort) and [k.descending for k in sort.keys] == [False, True]
    assert limit == n.Limit("10", None, limit.span)


def test_unaliased_names_keep_source_text() -> None:
    command = parse("stats avg (f1),  count( * ) ,pct(x,99)").commands[0]
    assert isinstance(command, n.Stats)
    assert [p.name for p in command.aggregates] == ["avg (f1)", "count( * )", "pct(x,99)"]


def test_advanced_commands_parse_to_unsupported() -> None:
    query = parse(
        "SOURCE logGroups(namePrefix: ['a']) | filterIndex region = 'x' | pattern @message "
        "| diff previousDay | anomaly | unmask"
    )
    assert [c.command for c in query.commands if isinstance(c, n.Unsupported)] == [
        "SOURCE",
        "filterIndex",
        "pattern",
        "diff",
        "anomaly",
        "unmask",
    ]


ERRORS = [
    # (id, query, line, column, fragment of the message)
    ("empty", "", 1, 1, "The query is empty"),
    ("only-comment", "  # nothing\n", 1, 1, "The query is empty"),
    ("unterminated-string", 'filter a = "abc', 1, 12, "Unterminated string"),
    ("unterminated-single", "filter a = 'abc", 1, 12, "Unterminated string"),
    ("unterminated-regex", "filter a like /abc", 1, 15, "Unterminated regex"),
    ("unterminated-backtick", "fields `abc", 1, 8, "Unterminated quoted field name"),
    ("unknown-character", "fields a $ b", 1, 10, "Unexpected character '$'"),
    ("misspelled-command", "fields a\n| limt 20", 2, 3, 'Unknown command "limt"'),
    ("did-you-mean", "fields a | limt 20", 1, 12, 'Did you mean "limit"?'),
    ("glued-keyword", "fieldsx", 1, 1, 'Did you mean "fields"?'),
    ("fields-without-args", "fields", 1, 7, "ends too early"),
    ("filter-without-args", "filter", 1, 7, "expected an expression"),
    ("sort-without-args", "sort", 1, 5, "expected an expression"),
    ("stats-by-only", "stats by x", 1, 7, 'aggregate before "by"'),
    ("dangling-by", "stats count(*) by", 1, 18, "ends too early"),
    ("dangling-as", "fields a as", 1, 12, "expected a field name"),
    ("unbalanced-paren", "filter (a = 1", 1, 14, 'expected ")"'),
    ("unbalanced-bracket", "filter a in [1, 2", 1, 18, '"]"'),
    ("leading-pipe", "| fields a", 1, 1, "must not start with |"),
    ("trailing-pipe", "fields a |", 1, 11, "must not end with |"),
    ("double-pipe", "fields a || fields b", 1, 11, "two | with no command"),
    ("bare-literal", '"abc"', 1, 1, "Expected a command"),
    ("chained-comparison", "filter a = 1 = 2", 1, 14, 'Unexpected "="'),
    ("two-expressions", "sort a b", 1, 8, 'Unexpected "b"'),
    ("out-of-scope-command", "fields a | unnest b", 1, 12, '"unnest" is not supported'),
    ("limit-needs-number", "limit abc", 1, 10, "ends too early"),
    ("period-outside-call", "filter x > 5m", 1, 13, 'Unexpected "m"'),
    ("regex-in-list", "filter x in [/a/]", 1, 14, 'Unexpected "/a/"'),
    ("keyword-where-an-operand-belongs", "filter a and or b", 1, 14, 'Unexpected "or"'),
]


@pytest.mark.parametrize(
    ("query", "line", "column", "fragment"), [c[1:] for c in ERRORS], ids=[c[0] for c in ERRORS]
)
def test_syntax_errors(query: str, line: int, column: int, fragment: str) -> None:
    with pytest.raises(QuerySyntaxError) as caught:
        parse(query)
    error = caught.value
    assert (error.line, error.column) == (line, column), error.message
    assert fragment in error.message
    assert f"line {line}, column {column}" in error.message or line == 1 and column == 1
    assert error.code == "MalformedQueryException" and error.status == 400
    location = error.details["queryCompileError"]["location"]
    lines = query.split("\n")
    offset = sum(len(x) + 1 for x in lines[: line - 1]) + column - 1
    assert location["startCharOffset"] == offset


def test_too_long() -> None:
    with pytest.raises(QuerySyntaxError, match="limit is 10000"):
        parse("fields " + "a" * MAX_QUERY_CHARS)


def test_error_details_carry_expectations() -> None:
    with pytest.raises(QuerySyntaxError) as caught:
        parse("sort x desc asc")
    assert caught.value.details["expected"] == ['","', '"|"', "the end of the query"]
