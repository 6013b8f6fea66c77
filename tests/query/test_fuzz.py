"""Fuzzing the front end: any text gives nodes or a MalformedQuery, never another exception."""

from __future__ import annotations

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from query.errors import MalformedQuery, QuerySyntaxError
from query.parse import parse
from query.run import run_query, validate_query
from store.engine import Store
from tests.query.conftest import T0

# Pieces of real queries, so that random sequences reach deep into the grammar.
TOKENS = [
    "fields",
    "filter",
    "stats",
    "sort",
    "limit",
    "parse",
    "dedup",
    "display",
    "pattern",
    "by",
    "as",
    "and",
    "or",
    "not",
    "like",
    "in",
    "asc",
    "desc",
    "true",
    "false",
    "count(*)",
    "avg(",
    "pct(",
    "bin(",
    "5m",
    "0m",
    "1mo",
    "5x",
    "datefloor(",
    "ispresent(",
    "@message",
    "@timestamp",
    "level",
    "`a-b`",
    "x.0.y",
    '"a*b"',
    "'*'",
    "/a(?<n>b)/",
    "/(?=x)/",
    "|",
    ",",
    "(",
    ")",
    "[",
    "]",
    "=",
    "!=",
    "<",
    ">=",
    "=~",
    "!",
    "+",
    "-",
    "*",
    "/",
    "%",
    "^",
    "1",
    "2.5",
    ".5",
    "1e3",
    "10001",
    "#c\n",
    "\n",
    " ",
]


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.text(max_size=80))
def test_any_text_parses_or_raises_a_syntax_error(text: str) -> None:
    try:
        parse(text)
    except QuerySyntaxError:
        pass


@settings(max_examples=600, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.sampled_from(TOKENS), max_size=14).map(" ".join))
def test_token_soup_compiles_or_raises_malformed_query(text: str) -> None:
    try:
        validate_query(text)
    except MalformedQuery:
        pass


# ---- generated well-formed queries must also run: DuckDB must accept every SQL we emit ------

LEAVES = st.sampled_from(
    [
        "status",
        "latency",
        "ok",
        "note",
        "user.id",
        "level",
        "item",
        "nosuch",
        "@timestamp",
        "@message",
        "@logStream",
        "@ingestionTime",
        "@ptr",
        "@log",
        "tags.0",
        "`content-type`",
        "1",
        "0",
        "2.5",
        "-3",
        '"503"',
        '"abc"',
        "''",
        "true",
        "false",
    ]
)
SCALARS = [
    "abs",
    "ceil",
    "floor",
    "log",
    "sqrt",
    "strlen",
    "toupper",
    "tolower",
    "isempty",
    "isblank",
    "ispresent",
    "isValidIp",
    "isValidIpV4",
    "isValidIpV6",
    "fromMillis",
    "toMillis",
    "toNumber",
    "toInt",
    "isNumeric",
    "round",
    "base64encode",
    "urlencode",
    "decToHex",
    "ipv4ToNumber",
    "ltrim",
    "trim",
]
BINARY = ["+", "-", "*", "/", "%", "^", "=", "!=", "<", ">=", "and", "or", "like"]
AGGREGATES = [
    "count",
    "count_distinct",
    "sum",
    "avg",
    "min",
    "max",
    "stddev",
    "earliest",
    "latest",
    "sortsFirst",
    "sortsLast",
]


def _extend(inner: st.SearchStrategy[str]) -> st.SearchStrategy[str]:
    binary = st.tuples(inner, st.sampled_from(BINARY), inner).map(
        lambda t: f"({t[0]} {t[1]} {t[2]})" if t[1] != "like" else f"({t[0]} like 'a')"
    )
    call = st.tuples(st.sampled_from(SCALARS), inner).map(lambda t: f"{t[0]}({t[1]})")
    many = st.lists(inner, min_size=1, max_size=3).map(", ".join)
    variadic = st.tuples(st.sampled_from(["concat", "coalesce", "greatest", "least"]), many)
    return st.one_of(
        binary,
        call,
        variadic.map(lambda t: f"{t[0]}({t[1]})"),
        inner.map(lambda e: f"not {e}"),
        inner.map(lambda e: f"-{e}"),
        inner.map(lambda e: f"{e} in [1, 'a', \"503\"]"),
        st.tuples(inner, inner, inner).map(lambda t: f"if({t[0]}, {t[1]}, {t[2]})"),
        st.tuples(inner, inner).map(lambda t: f"substr({t[0]}, {t[1]})"),
        inner.map(lambda e: f"datefloor({e}, 1h)"),
    )


EXPR = st.recursive(LEAVES, _extend, max_leaves=5)
COMMAND = st.one_of(
    EXPR.map(lambda e: f"fields {e} as x"),
    EXPR.map(lambda e: f"filter {e}"),
    EXPR.map(lambda e: f"sort {e} asc"),
    EXPR.map(lambda e: f"display {e}"),
    st.tuples(st.sampled_from(AGGREGATES), EXPR, EXPR).map(
        lambda t: f"stats {t[0]}({t[1]}) as a, count(*) as c, pct({t[1]}, 50) as p by {t[2]} as k"
    ),
)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(COMMAND, min_size=1, max_size=3).map(" | ".join))
def test_generated_queries_run(store: Store, text: str) -> None:
    try:
        run_query(store, text, ["app", "web"], T0 - 10**6, T0 + 10**7)
    except MalformedQuery:
        pass
