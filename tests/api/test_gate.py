"""The gate's hard cases, with routes of the test's own behind it on a real server: a handler
that crashes, a streaming response, a client that hangs up, an unknown route."""

from __future__ import annotations

import asyncio
import json
import socket
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import APIRouter
from fastapi.responses import StreamingResponse

from core.operations import Operation, operation
from server.app import DEFAULT_ROUTERS
from tests.conftest import ADMIN_KEY, RunningServer, make_settings

router = APIRouter(prefix="/api/v1/logs/test")
CRASH = Operation("Crash", "logs:Crash", True, False)
STREAM = Operation("Stream", "logs:Stream", True, False)
SLOW = Operation("Slow", "logs:Slow", True, False)


@router.get("/crash")
@operation(CRASH)
async def crash() -> None:
    raise RuntimeError("boom: a bug in a handler")


@router.get("/stream")
@operation(STREAM)
async def stream() -> StreamingResponse:
    async def chunks() -> AsyncIterator[bytes]:
        for n in range(3):
            yield f"chunk {n}\n".encode()
            await asyncio.sleep(0.05)

    return StreamingResponse(chunks(), media_type="text/plain")


@router.get("/slow")
@operation(SLOW)
async def slow() -> dict[str, Any]:
    await asyncio.sleep(5)
    return {"done": True}


@pytest.fixture
def gated(tmp_path: Path) -> Iterator[RunningServer]:
    running = RunningServer(make_settings(tmp_path / "data"), routers=(*DEFAULT_ROUTERS, router))
    running.start()
    yield running
    running.stop()


AUTH = {"Authorization": f"Bearer {ADMIN_KEY}"}


def records_for(server: RunningServer, request_id: str | None = None) -> list[dict[str, Any]]:
    _segments, tail = server.app.state.services.trail.snapshot()
    found = [json.loads(e.record_json) for e in tail]
    return [r for r in found if request_id is None or r["requestID"] == request_id]


def test_a_crashing_handler_is_recorded_as_internal_failure(gated: RunningServer) -> None:
    response = httpx.get(f"{gated.url}/api/v1/logs/test/crash", headers=AUTH)
    assert response.status_code == 500
    assert response.json()["error"]["code"] == "InternalFailure"
    assert "boom" not in response.text  # details stay in the server log
    (record,) = records_for(gated, response.headers["x-amzn-requestid"])
    assert record["errorCode"] == "InternalFailure"
    assert record["eventName"] == "Crash"


def test_a_streaming_response_is_recorded_when_it_starts(gated: RunningServer) -> None:
    with httpx.stream("GET", f"{gated.url}/api/v1/logs/test/stream", headers=AUTH) as response:
        request_id = response.headers["x-amzn-requestid"]
        lines = response.iter_lines()
        assert next(lines) == "chunk 0"
        (record,) = records_for(gated, request_id)  # already there, mid-stream
        assert record["additionalEventData"]["watchkeep"]["httpStatus"] == 200
        assert list(lines) == ["chunk 1", "chunk 2"]
    assert len(records_for(gated, request_id)) == 1


def test_a_client_that_hangs_up_still_gets_one_record(gated: RunningServer) -> None:
    host, port = gated.url.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port))) as sock:
        sock.sendall(
            f"GET /api/v1/logs/test/slow HTTP/1.1\r\nHost: x\r\n"
            f"Authorization: Bearer {ADMIN_KEY}\r\n\r\n".encode()
        )
        time.sleep(0.3)
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        slow = [r for r in records_for(gated) if r["eventName"] == "Slow"]
        if slow:
            break
        time.sleep(0.1)
    # uvicorn lets the handler finish (the change it makes is real), so the record says what
    # was done, even though nobody read the answer; had it been cancelled, "RequestCancelled".
    assert len(slow) == 1
    assert slow[0].get("errorCode") in (None, "RequestCancelled")


def test_unknown_routes_are_recorded_as_unknown_operations(gated: RunningServer) -> None:
    anonymous = httpx.get(f"{gated.url}/api/v1/nothing/here")
    assert anonymous.status_code == 401
    known = httpx.get(f"{gated.url}/api/v1/nothing/here", headers=AUTH)
    assert known.status_code == 404
    for response, code in (
        (anonymous, "MissingAuthenticationTokenException"),
        (known, "ResourceNotFoundException"),
    ):
        (record,) = records_for(gated, response.headers["x-amzn-requestid"])
        assert record["eventName"] == "UnknownOperation"
        assert record["errorCode"] == code
        assert record["readOnly"] is False
    assert httpx.get(f"{gated.url}/healthz").headers.get("x-amzn-requestid") is None


@pytest.mark.parametrize(
    "body_part",
    [
        b'Content-Length: 100\r\n\r\n{"a":',  # hangs up 95 bytes short
        b"Transfer-Encoding: chunked\r\n\r\nzz\r\n",  # a chunk size that is not hex
    ],
    ids=["short", "bad-chunk"],
)
def test_a_body_that_ends_early_is_the_clients_error(
    gated: RunningServer, body_part: bytes
) -> None:
    host, port = gated.url.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port))) as sock:
        sock.sendall(
            b"POST /api/v1/logs/events?group=short HTTP/1.1\r\nHost: x\r\n"
            + f"Authorization: Bearer {ADMIN_KEY}\r\n".encode()
            + b"Content-Type: application/x-ndjson\r\n"
            + body_part
        )
        time.sleep(0.2)
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        found = [r for r in records_for(gated) if r["eventName"] == "PutLogEvents"]
        if found:
            break
        time.sleep(0.1)
    (record,) = found
    assert record["errorCode"] == "InvalidParameterException"
    assert "ended early" in record["errorMessage"]
    assert record["additionalEventData"]["watchkeep"]["httpStatus"] == 400
