"""Empty backticks are named as such, and ``@ptr`` is in a result row once (spec §4, §13.1)."""

from __future__ import annotations

import pytest

from query.errors import QuerySyntaxError
from query.parse import parse
from query.run import decode_ptr, run_query
from store.engine import Store
from tests.query.conftest import T0

EMPTY = [
    ("fields ``", 1, 8, 7),
    ("fields ```", 1, 8, 7),
    ("filter `` = 1", 1, 8, 7),
    ("fields a, ``", 1, 11, 10),
    ("fields `a`, `` as b", 1, 13, 12),
    ("fields a\n| sort ``", 2, 8, 16),
]


@pytest.mark.parametrize(("query", "line", "column", "offset"), EMPTY)
def test_empty_backticks_say_the_name_is_empty(
    query: str, line: int, column: int, offset: int
) -> None:
    with pytest.raises(QuerySyntaxError) as caught:
        parse(query)
    error = caught.value
    assert str(error).startswith(
        f"A quoted field name cannot be empty (at line {line}, column {column})"
    )
    assert (error.line, error.column) == (line, column)
    location = error.details["queryCompileError"]["location"]
    assert location == {"startCharOffset": offset, "endCharOffset": offset + 2}


def test_an_unterminated_backtick_is_still_unterminated() -> None:
    with pytest.raises(QuerySyntaxError, match="Unterminated quoted field name"):
        parse("fields `abc")


def names(store: Store, query: str) -> list[list[str]]:
    result = run_query(store, query, ["app"], T0 - 10**6, T0 + 10**7)
    return [[pair["field"] for pair in row] for row in result.rows]


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ("fields @ptr | limit 2", ["@ptr"]),
        ("fields level, @ptr | limit 2", ["level", "@ptr"]),
        ("fields @ptr, level | limit 2", ["@ptr", "level"]),
        ("fields @ptr, @ptr, level | limit 2", ["@ptr", "level"]),
        ("fields level | limit 2", ["level", "@ptr"]),
        ("display @ptr, level | limit 2", ["@ptr", "level"]),
        ("fields @ptr | fields level | limit 2", ["@ptr", "level"]),
        ("stats count(*) as c", ["c"]),
    ],
)
def test_ptr_is_in_a_row_once(store: Store, query: str, expected: list[str]) -> None:
    got = names(store, query)
    assert got and all(row == expected for row in got)


def test_a_named_ptr_still_points_at_the_event(store: Store) -> None:
    result = run_query(store, "fields @ptr, @message | limit 1", ["app"], T0 - 10**6, T0 + 10**7)
    row = {pair["field"]: pair["value"] for pair in result.rows[0]}
    group, _seq = decode_ptr(row["@ptr"])
    assert group == "app"
