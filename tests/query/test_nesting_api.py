"""Deep and long queries, empty backticks and ``@ptr`` through the HTTP API of a real server.

A query nested past the limit is a 400 MalformedQueryException naming the depth, at StartQuery
and when a query definition is saved; long flat chains and deep parentheses run.
"""

from __future__ import annotations

import json
import time
from typing import Any

import httpx

from query.nesting import MAX_EXPRESSION_DEPTH

NDJSON = {"Content-Type": "application/x-ndjson"}


def seed(client: httpx.Client, group: str = "g1") -> None:
    now = int(time.time() * 1000)
    lines = [json.dumps({"timestamp": now - i * 1000, "n": i}) for i in range(3)]
    response = client.post(
        "/api/v1/logs/events", params={"group": group}, content="\n".join(lines), headers=NDJSON
    )
    assert response.json()["accepted"] == 3


def start(client: httpx.Client, query: str) -> httpx.Response:
    body = {"query": query, "log_groups": ["g1"], "start": 0, "end": "now"}
    return client.post("/api/v1/queries", json=body, params={"wait": "true"})


def rows(response: httpx.Response) -> list[list[dict[str, Any]]]:
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["status"] == "Complete", body
    results: list[list[dict[str, Any]]] = body["results"]
    return results


def malformed(response: httpx.Response) -> dict[str, Any]:
    assert response.status_code == 400, response.text
    error: dict[str, Any] = response.json()["error"]
    assert error["code"] == "MalformedQueryException"
    return error


def test_too_deep_queries_are_400_with_the_depth(client: httpx.Client) -> None:
    seed(client)
    for query, levels in [
        ("fields " + "-" * 3000 + "1", 3000),
        ("fields " + "abs(" * 60 + "1" + ")" * 60, 60),
        ("filter " + "not " * 51 + "true", 51),
        ("stats count(*) by " + "1+(" * 100 + "1" + ")" * 100, 100),
    ]:
        error = malformed(start(client, query))
        message = error["message"]
        assert f"nested too deeply: {levels} levels, and the limit is {MAX_EXPRESSION_DEPTH}" in (
            message
        )
        where = query.index(" by ") + 4 if " by " in query else query.index(" ") + 1
        assert (error["details"]["line"], error["details"]["column"]) == (1, where + 1)
        location = error["details"]["queryCompileError"]["location"]
        assert location == {"startCharOffset": where, "endCharOffset": len(query)}


def test_a_saved_query_too_deep_is_400(client: httpx.Client) -> None:
    response = client.put(
        "/api/v1/query-definitions/x", json={"query": "fields " + "abs(" * 500 + "1" + ")" * 500}
    )
    assert "nested too deeply" in malformed(response)["message"]
    assert client.get("/api/v1/query-definitions").json()["query_definitions"] == []


def test_long_chains_and_deep_parentheses_run(client: httpx.Client) -> None:
    seed(client)
    chain = start(client, "fields " + "+".join(["1"] * 500) + " as n | limit 1")
    assert rows(chain)[0][0] == {"field": "n", "value": "500"}
    longest = start(client, "fields " + "+".join(["1"] * 4980) + " as n | limit 1")
    assert rows(longest)[0][0] == {"field": "n", "value": "4980"}
    parens = start(client, "fields " + "(" * 4000 + "1" + ")" * 4000 + " as n | limit 1")
    assert rows(parens)[0][0] == {"field": "n", "value": "1"}
    calls = MAX_EXPRESSION_DEPTH - 1  # and the unary minus
    at_limit = "fields " + "abs(" * calls + "-1" + ")" * calls
    assert rows(start(client, at_limit + " as n | limit 1"))[0][0] == {"field": "n", "value": "1"}


def test_empty_backticks_are_named(client: httpx.Client) -> None:
    seed(client)
    error = malformed(start(client, "fields ``"))
    assert error["message"].startswith("A quoted field name cannot be empty (at line 1, column 8)")
    location = error["details"]["queryCompileError"]["location"]
    assert location == {"startCharOffset": 7, "endCharOffset": 9}


def test_ptr_is_in_each_row_once(client: httpx.Client) -> None:
    seed(client)
    for query, names in [
        ("fields @ptr", ["@ptr"]),
        ("fields n, @ptr", ["n", "@ptr"]),
        ("fields @ptr, n", ["@ptr", "n"]),
        ("fields n", ["n", "@ptr"]),
    ]:
        for row in rows(start(client, query)):
            assert [pair["field"] for pair in row] == names, query
