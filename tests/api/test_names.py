"""Names a client sends are the names stored: IAM's ASCII rule, the root principal's reserved
name, and paths whose %-escapes are not UTF-8 (once read as U+FFFD, naming a new resource)."""

from __future__ import annotations

import httpx
import pytest


@pytest.mark.parametrize("name", ["é", "bob\u00e9", "日本"])
def test_iam_names_are_ascii(client: httpx.Client, name: str) -> None:
    for kind in ("users", "groups"):
        response = client.put(f"/api/v1/iam/{kind}/{name}")
        assert response.status_code == 400, response.text
        assert "use letters, digits and + = , . @ _ -" in response.json()["error"]["message"]


@pytest.mark.parametrize("name", ["root", "Root"])
def test_no_user_takes_the_root_principals_name(client: httpx.Client, name: str) -> None:
    response = client.put(f"/api/v1/iam/users/{name}")
    assert response.status_code == 400, response.text
    assert response.json()["error"]["message"] == (
        "the user name 'root' is reserved for the root principal"
    )
    assert client.put(f"/api/v1/iam/groups/{name}").status_code == 201  # groups may


@pytest.mark.parametrize(
    "path",
    ["/api/v1/alarms/%ff", "/api/v1/query-definitions/%ff", "/api/v1/logs/groups/a%c3%28"],
)
def test_a_path_that_is_not_utf8_is_refused(client: httpx.Client, path: str) -> None:
    response = client.put(path, json={})
    assert response.status_code == 400, response.text
    assert response.json()["error"]["message"] == (
        "the request path is not valid UTF-8 once its %-escapes are decoded"
    )
    assert "\ufffd" not in client.get("/api/v1/logs/groups").text
