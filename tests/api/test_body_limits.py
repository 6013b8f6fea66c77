"""Every route that parses its body whole refuses one over ``max_body_bytes`` with 413 (DESIGN,
Limits), not only the ingest routes, and whether the body declares its length or not."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest

LIMIT = 16 << 20
BIG = b'{"a": "' + b"x" * LIMIT + b'"}'


def chunks() -> Iterator[bytes]:  # no Content-Length: chunked transfer encoding
    yield from (BIG[i : i + (1 << 20)] for i in range(0, len(BIG), 1 << 20))


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("PUT", "/api/v1/logs/metric-filters?group=g&name=f"),  # parsed by FastAPI
        ("POST", "/api/v1/queries"),
        ("POST", "/api/v1/audit/hash"),
        ("PUT", "/api/v1/iam/policies/p1"),  # read as bytes by the handler
    ],
)
@pytest.mark.parametrize("declared", [True, False], ids=["content-length", "chunked"])
def test_a_body_over_the_limit_is_refused(
    client: httpx.Client, method: str, path: str, declared: bool
) -> None:
    content = BIG if declared else chunks()
    response = client.request(
        method, path, content=content, headers={"Content-Type": "application/json"}
    )
    assert response.status_code == 413, response.text
    assert response.json()["error"] == {
        "code": "RequestEntityTooLargeException",
        "message": "the request body is larger than 16 MiB",
        "details": {"limit_bytes": LIMIT},
    }
