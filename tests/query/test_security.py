"""A query reads only its groups' events: injection through every kind of query text fails."""

from __future__ import annotations

from pathlib import Path

import pytest

from query.run import run_query
from store.engine import Store
from tests.query.conftest import T0

TARGET = Path("/tmp/watchkeep-query-injection-canary")
IN_REGEX = str(TARGET).replace("/", "\\/")

ATTEMPTS = [
    ("backtick-field", "fields `x\") FROM read_csv('/etc/passwd') --` as f | limit 1"),
    ("map-field", "fields `a'] FROM read_text('/etc/passwd') --` | limit 1"),
    ("string", f"filter @message like \"'); COPY (SELECT 1) TO '{TARGET}' --\""),
    ("single-quoted", f"filter level = '\\'); COPY (SELECT 1) TO \\'{TARGET}\\' --'"),
    ("regex", f"filter @message like /'\\); COPY \\(SELECT 1\\) TO '{IN_REGEX}' --/"),
    ("glob", f"parse @message \"*'); COPY (SELECT 1) TO '{TARGET}' --*\" as a, b"),
    ("parse-regex", f"parse @message /(?<a>'\\); COPY \\(SELECT 1\\) TO '{IN_REGEX}')/"),
    ("alias", 'fields 1 as `"; DROP TABLE logs; --` | display `"; DROP TABLE logs; --`'),
    ("list", "filter level in [\"'); SELECT * FROM read_csv('/etc/passwd') --\"]"),
    ("function-argument", "fields concat('\\'; SELECT 1; --', @message) as x | limit 1"),
]


@pytest.mark.parametrize("query", [a[1] for a in ATTEMPTS], ids=[a[0] for a in ATTEMPTS])
def test_injection_is_inert(store: Store, query: str) -> None:
    result = run_query(store, query, ["app"], T0 - 10**6, T0 + 10**7)
    assert not TARGET.exists()
    for row in result.rows:
        for pair in row:
            assert "root:" not in pair["value"]


def test_other_groups_are_out_of_reach(store: Store) -> None:
    result = run_query(
        store,
        "filter @log like 'web' or @logStream = 'nginx' | stats count(*) as c",
        ["app"],
        T0 - 10**6,
        T0 + 10**7,
    )
    assert result.rows == [[{"field": "c", "value": "0"}]]


def test_names_that_look_like_internal_columns_are_fields(store: Store) -> None:
    result = run_query(
        store,
        "fields message, ts_ms, seq, log_group, fields, `$s1`, `$f1` | limit 1",
        ["app"],
        T0 - 10**6,
        T0 + 10**7,
    )
    assert [p["field"] for p in result.rows[0]] == ["@ptr"]
