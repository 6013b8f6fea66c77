"""Query -> SQL tables (tests/data/queries/*.txt), in the manner of sqlglot's fixtures.

Each case is an optional ``# name:`` line, the query, a ``----`` line, the expected SQL, and a
``-- params:`` line with the bound parameters as JSON; blank lines separate cases. The SQL tables
catch changes of shape; test_results.py checks meaning.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from query.compile import CompileOptions, compile_query
from query.parse import parse
from query.run import BASE_SCHEMA

DATA = Path(__file__).parent.parent / "data" / "queries"
SCHEMA = {**BASE_SCHEMA, "status": "double", "user.id": "string", "ok": "bool"}
OPTIONS = CompileOptions(now_ms=1_717_423_200_000, start_ms=0, end_ms=3_600_000)


def load_cases(path: Path) -> list[Any]:
    cases = []
    for index, block in enumerate(path.read_text().strip().split("\n\n")):
        lines = block.splitlines()
        name = f"{path.stem}-{index}"
        if lines[0].startswith("# name:"):
            name = lines.pop(0).removeprefix("# name:").strip()
        split = lines.index("----")
        params_line = lines[-1]
        assert params_line.startswith("-- params: "), name
        query = "\n".join(lines[:split])
        sql = "\n".join(lines[split + 1 : -1])
        params = json.loads(params_line.removeprefix("-- params: "))
        cases.append(pytest.param(query, sql, params, id=name))
    return cases


CASES = [case for path in sorted(DATA.glob("*.txt")) for case in load_cases(path)]


@pytest.mark.parametrize(("query", "sql", "params"), CASES)
def test_query_compiles_to(query: str, sql: str, params: list[Any]) -> None:
    compiled = compile_query(parse(query), SCHEMA, OPTIONS)
    assert compiled.sql == sql
    assert compiled.params == params


def test_internal_names_avoid_schema_columns() -> None:
    compiled = compile_query(parse("fields a as b"), {**SCHEMA, "$f1": "string"}, OPTIONS)
    assert '"$$f1"' in compiled.sql


def test_identifiers_are_quoted_and_values_bound() -> None:
    evil = "x\") FROM read_csv('/etc/passwd') --"
    compiled = compile_query(
        parse(f"fields `{evil}` | filter @message like 'a\\'b' | parse @message /(?<y>')/"),
        {**SCHEMA, evil: "string"},
        OPTIONS,
    )
    assert '"x"") FROM read_csv(\'/etc/passwd\') --"' in compiled.sql
    assert "a'b" in compiled.params and "a'b" not in compiled.sql
