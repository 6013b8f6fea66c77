"""A body FastAPI parses gets the same precise messages as the rest: what is wrong with the
body itself, not pydantic's "Field required" or "JSON decode error"; and a huge unknown path
is not echoed whole."""

from __future__ import annotations

import httpx
import pytest

JSON = "application/json"


@pytest.mark.parametrize(
    ("body", "content_type", "message"),
    [
        (b"", JSON, "the request body is empty: send a JSON object (Content-Type: application/json)"),
        (b"{bad", JSON, "the request body is not valid JSON: Expecting property name enclosed in double quotes at character 1"),
        (b'{"query": "\xff"}', JSON, "the request body is not valid UTF-8"),
        (b'{"query": "x"}', "text/plain", "the request body must be a JSON object, sent as Content-Type: application/json"),
        (b"[1, 2]", JSON, "the request body must be a JSON object, sent as Content-Type: application/json"),
    ],
    ids=["empty", "malformed", "bad-utf8", "not-json-type", "array"],
)  # fmt: skip
def test_a_bad_body_is_named_precisely(
    client: httpx.Client, body: bytes, content_type: str, message: str
) -> None:
    response = client.post("/api/v1/queries", content=body, headers={"Content-Type": content_type})
    assert response.status_code == 400, response.text
    assert response.json()["error"]["message"] == message


def test_an_unknown_path_is_not_echoed_whole(client: httpx.Client) -> None:
    response = client.get("/api/v1/nothing/" + "x" * 60_000)
    assert response.status_code == 404
    message = response.json()["error"]["message"]
    assert len(message) < 300 and message.endswith("(60016 characters)")
