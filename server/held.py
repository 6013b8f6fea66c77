"""Holding a response back until its audit record is durable, and capturing the request body.

The gate (``server.gate``) wraps the app's ``send`` in ``HeldResponse`` and its ``receive`` in
``BodyCapture``; ``with_body`` turns the captured body into the record's requestParameters.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

import anyio
import orjson
from starlette.types import Message, Receive, Send

from core.errors import PayloadTooLarge
from core.units import format_size

__all__ = ["MAX_CAPTURED_BODY", "REQUEST_ID_HEADER", "BodyCapture", "HeldResponse", "with_body"]

# Bodies up to this size are kept for requestParameters; larger ones are summarized by size.
MAX_CAPTURED_BODY = 128 * 1024
REQUEST_ID_HEADER = b"x-amzn-requestid"


class HeldResponse:
    """Holds a response back until its audit record is durable.

    A response that streams (``more_body``) is recorded when its first chunk arrives and then
    passed through, as the spec allows for tails and long polls.
    """

    def __init__(self, send: Send, request_id: str) -> None:
        self._send = send
        self._request_id = request_id.encode()
        self._start: Message | None = None
        self._chunks: list[bytes] = []
        self.streaming = False
        self._replaced = False
        self._replacement: Any = None

    def holding(self, on_stream_start: Callable[[], Awaitable[None]]) -> Send:
        """The ``send`` to give the app: it holds the response, or records and streams it."""

        async def send(message: Message) -> None:
            if self._replaced:
                return
            if message["type"] == "http.response.start":
                message = dict(message)
                message["headers"] = [
                    *message.get("headers", []),
                    (REQUEST_ID_HEADER, self._request_id),
                ]
                self._start = message
                return
            if message["type"] != "http.response.body":
                await self._send(message)
                return
            if self.streaming:
                await self._send(message)
                return
            self._chunks.append(message.get("body", b""))
            if message.get("more_body", False):
                with anyio.CancelScope(shield=True):
                    await on_stream_start()
                self.streaming = True
                await self.release(more_body=True)

        return send

    @property
    def status(self) -> int:
        if self._replaced:
            return int(self._replacement.status_code)
        return int(self._start["status"]) if self._start else 500

    def replace(self, response: Any) -> None:
        """Answer with ``response`` instead of whatever the handler produced."""
        if self.streaming:
            return  # the status line is gone already
        self._start = None
        self._chunks = []
        self._replaced = True
        self._replacement = response

    def json(self) -> Any:
        data = b"".join(self._chunks)
        if not data or len(data) > MAX_CAPTURED_BODY:
            return None
        try:
            return orjson.loads(data)
        except orjson.JSONDecodeError:
            return None

    def error(self) -> tuple[str, str]:
        body = self.json()
        if isinstance(body, dict) and isinstance(body.get("error"), dict):
            error = body["error"]
            return str(error.get("code", "InternalFailure")), str(error.get("message", ""))
        return ("InternalFailure" if self.status >= 500 else "InvalidParameterException"), ""

    async def release(self, *, more_body: bool = False) -> None:
        if self._replaced:
            await self._send_replacement()
            return
        if self._start is None:
            return
        await self._send(self._start)
        await self._send(
            {"type": "http.response.body", "body": b"".join(self._chunks), "more_body": more_body}
        )
        self._chunks = []

    async def _send_replacement(self) -> None:
        response = self._replacement
        headers = [(k, v) for k, v in response.raw_headers] + [
            (REQUEST_ID_HEADER, self._request_id)
        ]
        await self._send(
            {"type": "http.response.start", "status": response.status_code, "headers": headers}
        )
        await self._send({"type": "http.response.body", "body": response.body})


class BodyCapture:
    """Passes the request body through, keeping a copy (up to a limit) for the record.

    With ``max_bytes`` set, a body that grows past it is refused (413) as it is read, for the
    routes that parse their bodies whole; the data routes enforce their own limits.
    """

    def __init__(
        self, receive: Receive, limit: int = MAX_CAPTURED_BODY, max_bytes: int | None = None
    ) -> None:
        self._receive = receive
        self.limit = limit
        self.max_bytes = max_bytes
        self.data = b""
        self.size = 0
        self.received = 0

    async def receive(self) -> Message:
        message = await self._receive()
        if message["type"] != "http.request":
            return message
        chunk = message.get("body", b"")
        self.received += len(chunk)
        if self.max_bytes is not None and self.received > self.max_bytes:
            raise PayloadTooLarge(
                f"the request body is larger than {format_size(self.max_bytes)}",
                details={"limit_bytes": self.max_bytes},
            )
        if self.limit:
            self.size += len(chunk)
            if self.size <= self.limit:
                self.data += chunk
        return message

    async def drain(self) -> None:
        """Read the body that a refused request never let the handler read (for the record)."""
        while True:
            message = await self.receive()
            if message["type"] != "http.request" or not message.get("more_body", False):
                return
            if self.size > self.limit:
                return


def with_body(parameters: dict[str, Any] | None, body: BodyCapture) -> Any:
    parameters = dict(parameters or {})
    if body.size > body.limit:
        parameters["body"] = {"omitted": True, "reason": "size", "originalBytes": body.size}
        return parameters
    if not body.data:
        return parameters or None
    try:
        decoded = orjson.loads(body.data)
    except orjson.JSONDecodeError:
        parameters["body"] = {"omitted": True, "reason": "not JSON", "originalBytes": body.size}
        return parameters
    if isinstance(decoded, dict):
        return {**parameters, **decoded}
    parameters["body"] = decoded
    return parameters
