"""Nesting depth (``query.nesting``): the limit, chains of any length, and no RecursionError.

An expression within ``MAX_EXPRESSION_DEPTH`` compiles in a bounded number of Python frames and
runs in DuckDB; one level more is a MalformedQuery that names the depth and the limit; and no
query of up to 10,000 characters raises anything but a MalformedQuery, whatever its shape.
"""

from __future__ import annotations

import re
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from types import FrameType

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from query import nodes as n
from query.errors import MalformedQuery, QueryError
from query.expressions import LONG_CHAIN
from query.nesting import MAX_EXPRESSION_DEPTH, chain, depth
from query.parse import MAX_QUERY_CHARS, parse
from query.run import run_query, validate_query
from store.engine import Store
from tests.query.conftest import T0, ingest, open_store, seed

MAX = MAX_EXPRESSION_DEPTH
# Compiling an expression at the limit needs about 410 frames (eight a function call); within
# this budget, Python's default limit of 1,000 leaves a caller 400 frames of its own.
FRAME_BUDGET = 600


def _stack_depth() -> int:
    frame: FrameType | None = sys._getframe()
    count = 0
    while frame is not None:
        frame, count = frame.f_back, count + 1
    return count


@contextmanager
def frame_budget(frames: int = FRAME_BUDGET) -> Iterator[None]:
    """Let the code inside use at most ``frames`` more frames than the caller."""
    old = sys.getrecursionlimit()
    sys.setrecursionlimit(_stack_depth() + frames)
    try:
        yield
    finally:
        sys.setrecursionlimit(old)


def compiles(query: str) -> None:
    with frame_budget():
        validate_query(query)


def expr_of(query: str) -> n.Expr:
    command = parse(query).commands[0]
    assert isinstance(command, n.Fields)
    return command.items[0].expr


# ---- counting levels -------------------------------------------------------------------------

DEPTHS = [
    ("1", 0),
    ("`a b`", 0),
    ("((((1))))", 0),
    ("1 + 2", 1),
    ("1 + 2 - 3 + 4", 1),
    ("(1 + 2) * 3 / 4 % 5", 1),
    ("1 * 2 + 3", 1),
    ("1 + 2 * 3", 2),
    ("1 + (2 + 3)", 2),
    ("2 ^ 3 ^ 4", 2),
    ("-1", 1),
    ("- -1", 2),
    ("not not a", 2),
    ("abs(1)", 1),
    ("abs(abs(1 + 2))", 3),
    ("bin(5m)", 1),
    ("concat(a, abs(b), 'c')", 2),
    ("a = 1", 1),
    ("a = 1 or a = 2 or a = 3", 2),
    ("a and b and c or d", 2),
    ("a or b and c", 2),
    ("a like /x/", 1),
    ("abs(a) in [1, 2]", 2),
    ("if(a > 0, abs(b), 1 + 2 + 3)", 2),
]


@pytest.mark.parametrize(("text", "levels"), DEPTHS, ids=[d[0] for d in DEPTHS])
def test_depth_counts_levels_not_chain_links(text: str, levels: int) -> None:
    assert depth(expr_of(f"fields {text}")) == levels


def test_chain_gives_operands_and_links_left_to_right() -> None:
    expr = expr_of("fields (1 + 2) * 3 - 4 / 5")
    assert isinstance(expr, n.Arith)
    operands, links = chain(expr)
    assert [getattr(o, "text", None) for o in operands] == ["1", "2", "3", None]
    assert [link.op for link in links] == ["+", "*", "-"]
    assert isinstance(operands[3], n.Arith) and operands[3].op == "/"


# ---- shapes at the limit and one over, in every command --------------------------------------

C7 = " + 1" * 7  # a short arithmetic chain: nested in SQL, the costliest per level for DuckDB
# Wrappers, each adding ``levels`` levels around the expression inside.
UNITS: dict[str, tuple[str, int]] = {
    "call": ("abs({})", 1),
    "neg": ("-{}", 1),
    "not": ("not {}", 1),
    "bang": ("!{}", 1),
    "compare": ("({} = 1)", 1),
    "right-add": ("1 + ({})", 1),
    "power": ("2 ^ {}", 1),
    "coalesce": ("coalesce({}, 1)", 1),
    "text": ("strlen(concat({}, 'a'))", 2),
    "neg-chain": ("-({}" + C7 + ")", 2),
    "not-chain": ("not (({})" + C7 + ")", 2),
    "compare-chain": ("(({}" + C7 + ") = 1)", 2),
    "and-or": ("(({} and 1) or 0)", 2),
    "if-chain": ("if({} > 0, 1, 2)" + C7, 3),
    "in-chain": ("-({} in [1, 2])" + C7, 3),
}
# Command templates, and the levels the command adds around the expression.
COMMANDS: dict[str, tuple[str, int]] = {
    "fields": ("fields {} as x", 0),
    "display": ("display {}", 0),
    "filter": ("filter {}", 0),
    "stats": ("stats sum({}) as s", 1),
    "stats-by": ("stats count(*) by {}", 0),
    "sort": ("sort {} asc", 0),
    "dedup": ("dedup {}", 0),
    "after-parse": ('parse @message "*" as m | fields {} as x', 0),
}


def nest(unit: str, levels: int, leaf: str = "1") -> str:
    """``unit`` wrapped around ``leaf``, then ``abs()`` for the rest: ``levels`` deep."""
    template, per = UNITS[unit]
    text = leaf
    for _ in range(levels // per):
        text = template.format(text)
    for _ in range(levels % per):
        text = f"abs({text})"
    return text


def query_at(unit: str, command: str, levels: int) -> str:
    template, around = COMMANDS[command]
    expr = nest(unit, levels - around)
    if levels <= MAX:  # deeper ones are counted by the error message
        assert depth(expr_of(f"fields {expr}")) == levels - around
    return template.format(expr)


CASES = [pytest.param(u, c, id=f"{u}-{c}") for u in UNITS for c in COMMANDS]


@pytest.mark.parametrize(("unit", "command"), CASES)
def test_the_limit_compiles_in_bounded_frames(unit: str, command: str) -> None:
    compiles(query_at(unit, command, MAX))


@pytest.mark.parametrize(("unit", "command"), CASES)
def test_one_level_over_the_limit_is_refused(unit: str, command: str) -> None:
    query = query_at(unit, command, MAX + 1)
    template = COMMANDS[command][0]
    start = template.index("{}")
    if COMMANDS[command][1]:  # the expression is the aggregate around the placeholder
        start = template.rindex(" ", 0, start) + 1
    with pytest.raises(QueryError) as caught:
        parse(query)
    error = caught.value
    assert "is nested too deeply" in str(error)
    assert f"{MAX + 1} levels, and the limit is {MAX}" in str(error)
    assert (error.line, error.column) == (1, start + 1)
    assert error.details["queryCompileError"]["location"]["startCharOffset"] == start


# ---- the worst shapes up to the size limit ---------------------------------------------------


def fill(head: str, piece: str, tail: str = "") -> str:
    """``head``, then ``piece`` as many times as fits in 10,000 characters, then ``tail``."""
    count = (MAX_QUERY_CHARS - len(head) - len(tail)) // len(piece)
    return head + piece * count + tail


LONG = {
    # Flat chains: one level however long; they compile and run.
    "plus-chain": ("fields 1", "+1", ""),
    "minus-chain": ("fields 1", "-1", ""),
    "times-chain": ("fields 1", "*1", ""),
    "mixed-chain": ("fields 1", "+2*3-4/5%6", ""),
    "and-chain": ("filter 1", " and 1", ""),
    "or-chain": ("filter x = 0", " or x = 1", ""),
    "stats-chain": ("stats sum(1", "+1", ")"),
    "sort-chain": ("sort 1", "+1", ""),
    "dedup-chain": ("dedup 1", "+1", ""),
    "by-chain": ("stats count(*) by 1", "+1", ""),
}


@pytest.mark.parametrize("name", list(LONG))
def test_flat_chains_fill_the_query_and_compile(name: str) -> None:
    head, piece, tail = LONG[name]
    text = fill(head, piece, tail)
    assert len(text) <= MAX_QUERY_CHARS
    compiles(text)


def test_parenthesized_left_chain_fills_the_query_and_compiles() -> None:
    count = (MAX_QUERY_CHARS - len("fields 1")) // len("(+1)")
    text = "fields " + "(" * count + "1" + "+1)" * count  # ((((1+1)+1)+1)...)
    assert len(text) <= MAX_QUERY_CHARS and depth(expr_of(text)) == 1
    compiles(text)


def test_parentheses_around_a_literal_add_no_level() -> None:
    half = (MAX_QUERY_CHARS - len("fields 1")) // 2
    compiles("fields " + "(" * half + "1" + ")" * half)


DEEP = {
    "unary-minus": ("fields ", "-", "1"),
    "bang": ("fields ", "!", "1"),
    "not": ("filter ", "not ", "1"),
    "calls": ("fields ", "abs(", "1"),
    "right-nested": ("fields ", "1+(", "1"),
    "power": ("fields ", "2^", "2"),
    "compare": ("filter ", "(", "1"),
    "stats-calls": ("stats sum(", "abs(", "1"),
    "sort-neg": ("sort ", "-", "1"),
    "dedup-calls": ("dedup ", "floor(", "1"),
    "by-calls": ("stats count(*) by ", "abs(", "1"),
}


@pytest.mark.parametrize("name", list(DEEP))
def test_deep_nesting_up_to_the_size_limit_is_refused(name: str) -> None:
    head, piece, leaf = DEEP[name]
    closers = {"abs(": ")", "floor(": ")", "1+(": ")", "(": "=1)"}
    close = closers.get(piece, "")
    tail_per = len(close)
    count = (MAX_QUERY_CHARS - len(head) - len(leaf) - 2) // (len(piece) + tail_per)
    text = head + piece * count + leaf + close * count + (")" if head.endswith("(") else "")
    assert len(text) <= MAX_QUERY_CHARS
    started = time.monotonic()
    with frame_budget(), pytest.raises(QueryError, match="nested too deeply"):
        parse(text)
    assert time.monotonic() - started < 5


# Pieces of expressions, combined at random: whatever comes out parses and compiles, or is a
# MalformedQuery; a RecursionError (or any other exception) fails the test.
_WRAPPERS = [
    "abs({})",
    "-{}",
    "!{}",
    "not {}",
    "({})",
    "({} = 1)",
    "({} + 1 + 2)",
    "(1 - {})",
    "({} * 2 / 3 % 4)",
    "2 ^ {}",
    "({} and true)",
    "(false or {})",
    "concat({}, 'a')",
    "strlen({})",
    "coalesce({}, 1)",
    "if({}, 1, 0)",
    "({} in [1, 'a'])",
    "({} like /a/)",
    "floor({})",
]
_TEMPLATES = [
    "fields {}",
    "filter {}",
    "stats sum({})",
    "stats count(*) by {}",
    "sort {}",
    "dedup {}",
    'parse @message "* *" as a, b | fields {} as x | filter x',
]


@st.composite
def nested_queries(draw: st.DrawFn) -> str:
    wrappers = draw(st.lists(st.sampled_from(_WRAPPERS), max_size=120))
    text = draw(st.sampled_from(["1", "x", "'s'", "@message", "status", "a"]))
    for wrapper in wrappers:
        text = wrapper.format(text)
        if draw(st.integers(0, 9)) == 0:  # now and then, a long flat chain
            text += draw(st.sampled_from([" + 1", " or x", " * 2"])) * draw(st.integers(1, 300))
        if len(text) > MAX_QUERY_CHARS - 100:
            break
    return draw(st.sampled_from(_TEMPLATES)).format(text)


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(nested_queries())
def test_random_nesting_compiles_or_is_malformed(text: str) -> None:
    try:
        compiles(text)
    except MalformedQuery as exc:
        found = re.search(r"nested too deeply: (\d+) levels", str(exc))
        assert found is None or int(found.group(1)) > MAX, exc


def test_exponential_sql_is_refused_quickly() -> None:
    started = time.monotonic()
    with pytest.raises(QueryError, match="characters of SQL") as caught:
        validate_query("fields concat(1 + concat(1 + concat(1 + concat(1 + concat(1 + x)))))")
    assert time.monotonic() - started < 5
    assert "fields ... as part" in str(caught.value)


# ---- results against DuckDB ------------------------------------------------------------------


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Store]:
    """The shared seed, plus a group whose fields are named like the compiler's lambda names."""
    opened = open_store(Path(tmp_path_factory.mktemp("data")))
    seed(opened)
    body = b'{"timestamp": 1717423200000, "p": 2, "q": 3, "o": 5, "v": 7}'
    ingest(opened, "pq", "s", body, "application/x-ndjson", T0)
    yield opened
    opened.close()


def rows(store: Store, query: str, group: str = "app") -> list[dict[str, str]]:
    result = run_query(store, query, [group], T0 - 10**6, T0 + 10**7)
    return [{p["field"]: p["value"] for p in row if p["field"] != "@ptr"} for row in result.rows]


DUCKDB_UNITS = ["call", "neg", "compare", "power", "text", "neg-chain", "not-chain"]
DUCKDB_UNITS += ["compare-chain", "and-or", "if-chain", "in-chain"]
RUN_COMMANDS = ["fields", "filter", "stats", "stats-by", "sort", "dedup", "after-parse"]


@pytest.mark.parametrize(
    ("unit", "command"),
    [pytest.param(u, c, id=f"{u}-{c}") for u in DUCKDB_UNITS for c in RUN_COMMANDS],
)
def test_the_limit_runs_in_duckdb(store: Store, unit: str, command: str) -> None:
    result = run_query(store, query_at(unit, command, MAX), ["app"], T0 - 10**6, T0 + 10**7)
    assert result.rows or command == "filter"


def test_a_chain_of_500_terms_runs(store: Store) -> None:
    assert rows(store, "fields " + "+".join(["1"] * 500) + " as n | limit 1") == [{"n": "500"}]


def test_a_chain_filling_the_query_runs(store: Store) -> None:
    terms = (MAX_QUERY_CHARS - 30) // 2
    text = "fields " + "+".join(["1"] * terms) + " as n | limit 1"
    assert rows(store, text) == [{"n": str(terms)}]


def test_long_and_or_chains_run(store: Store) -> None:
    ands = "filter " + " and ".join(["1"] * 1600) + " | stats count(*) as c"
    ors = "filter " + " or ".join(["0"] * 1599 + ["status = 200"]) + " | stats count(*) as c"
    assert rows(store, ands) == [{"c": "8"}]
    assert rows(store, ors) == [{"c": str(len(rows(store, "filter status = 200")))}]


MIXED = "((((((((7 + 2) * 3) - 1) / 4) % 3) ^ 2) + 1) * 5) - 0.5"  # 5.75, left to right


@pytest.mark.parametrize(
    ("group", "expr", "expected"),
    [
        ("app", MIXED, "5.75"),
        ("app", MIXED + " + 0 / 0", None),  # division by zero is null
        ("app", MIXED.replace("7", "nosuch"), None),  # a missing field is null
        # Fields named like the lambda's parameters and struct keys (p, q, o, v).
        ("pq", "p + q * o - v / 2 + p + q + o + v + p + 1", "33.5"),
        ("pq", "((((((((p + q) * o) - v) / 2) + p) + q) + o) + v) + p", "28"),
    ],
)
def test_long_arithmetic_chains_compute_left_to_right(
    store: Store, group: str, expr: str, expected: str | None
) -> None:
    top = expr_of(f"fields {expr}")
    assert isinstance(top, n.Arith) and len(chain(top)[0]) > LONG_CHAIN  # one list_reduce
    got = rows(store, f"fields {expr} as r | limit 1", group)
    assert got == [{"r": expected} if expected is not None else {}]


def test_short_chains_keep_nested_sql() -> None:
    _, compiled = validate_query("fields 1 + 2 - 3 as r")
    assert "((? + ?) - ?)" in compiled.sql and "list_reduce" not in compiled.sql
    _, compiled = validate_query("fields " + " + ".join(["1"] * (LONG_CHAIN + 1)) + " as r")
    assert "list_reduce" in compiled.sql
