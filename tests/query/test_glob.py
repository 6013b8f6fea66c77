"""Glob parse (spec §7.7): the fast anchored regexes answer exactly as the spec's lazy regex.

``query.regex.glob_regexes`` gives each capture a deterministic regex and keeps the lazy one as
a fallback; the compiled SQL takes the first that matches. Python's ``re`` runs the spec's lazy
regex as the oracle (leftmost-first, like RE2) on random globs and texts over a small alphabet,
where the fast regexes' shortcuts are most often wrong if they are wrong at all.
"""

from __future__ import annotations

import re

import duckdb
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from query.regex import glob_regexes, glob_to_regex

ALPHABET = "ab -[]\n*."
_CONN = duckdb.connect()


def _sql_captures(glob: str, text: str) -> list[str | None]:
    regexes = glob_regexes(glob)
    columns = ", ".join(
        "coalesce(regexp_extract_all(?, ?, 1)[1], regexp_extract_all(?, ?, 1)[1])"
        for _ in regexes.fields
    )
    params: list[str] = []
    for fast, lazy in regexes.fields:
        params += [text, fast, text, lazy]
    row = _CONN.execute(f"SELECT {columns}", params).fetchone()
    assert row is not None
    return list(row)


def _oracle(glob: str, text: str) -> list[str | None]:
    pattern, count = glob_to_regex(glob)
    match = re.search(pattern, text)
    if match is None:
        return [None] * count
    return [match.group(i + 1) for i in range(count)]


globs = st.lists(st.sampled_from(["*", "a", "b", " ", "-", "[", "]", "ab", "\\*"]), max_size=7)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    pieces=globs.filter(lambda p: "*" in p),
    text=st.text(alphabet=ALPHABET, max_size=14),
)
def test_glob_captures_match_the_lazy_regex(pieces: list[str], text: str) -> None:
    glob = "".join(pieces)
    assert _sql_captures(glob, text) == _oracle(glob, text)


@pytest.mark.parametrize(
    ("glob", "text", "expected"),
    [
        # The lazy capture runs past the first "y" because "yz" must follow: the fast regex
        # fails there and the lazy one answers.
        ("x*yz", "xayxbyz", ["ayxb"]),
        ("[*] * took *ms", "2024-06-03 [WARN] render took 183ms", ["WARN", "render", "183"]),
        ("a**b", "aab", ["", "a"]),
        ("*", "", [""]),
        ("k=*;", "nothing here", [None]),
        ("* *", "line one\nline two", ["line", "one\nline two"]),
    ],
    ids=["fallback", "spec-example", "adjacent-stars", "empty-text", "no-match", "newlines"],
)
def test_glob_cases(glob: str, text: str, expected: list[str | None]) -> None:
    assert _sql_captures(glob, text) == expected == _oracle(glob, text)
