"""A local webhook receiver that verifies signatures like a real one (spec §6.4).

Shared by the notifier's tests and the API's end-to-end tests: it records every request,
checks ``Watchkeep-Signature`` with ``alarms.webhook.verify_signature`` against its own clock,
and replies as scripted (``plan``), by alarm or for any request.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import orjson

from alarms.webhook import verify_signature

__all__ = ["CLOSE", "SECRET", "Received", "Receiver", "Reply"]

SECRET = "whsec_current"


@dataclass(frozen=True)
class Reply:
    status: int = 200
    headers: dict[str, str] = field(default_factory=dict)
    delay_s: float = 0.0
    close: bool = False


CLOSE = Reply(close=True)


@dataclass(frozen=True)
class Received:
    headers: dict[str, str]
    body: bytes
    verified: bool
    reply: Reply
    at: float

    @property
    def json(self) -> dict[str, Any]:
        parsed: dict[str, Any] = orjson.loads(self.body)
        return parsed

    @property
    def delivery_id(self) -> str:
        return self.headers["watchkeep-delivery"]

    @property
    def attempt(self) -> int:
        return int(self.headers["watchkeep-attempt"])

    @property
    def alarm(self) -> str:
        return str(self.json["alarm"]["name"])


class Receiver:
    """A webhook receiver on 127.0.0.1 that verifies like a real one and replies as scripted."""

    def __init__(self, clock: Callable[[], float] = time.time, *, port: int = 0) -> None:
        self.clock = clock
        self.secrets = [SECRET.encode()]
        self.requests: list[Received] = []
        self._script: dict[str | None, deque[Reply]] = {}
        self._lock = threading.Lock()
        self._server = ThreadingHTTPServer(("127.0.0.1", port), self._handler())
        self._server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}/hooks/watchkeep"
        self._thread = threading.Thread(target=self._server.serve_forever, args=(0.05,))

    def plan(self, *replies: Reply, alarm: str | None = None) -> None:
        """Reply with these to the next requests (about ``alarm`` only, if given); then 200."""
        with self._lock:
            self._script.setdefault(alarm, deque()).extend(replies)

    def for_alarm(self, alarm: str) -> list[Received]:
        return [r for r in self.requests if r.alarm == alarm]

    def _next_reply(self, alarm: str | None) -> Reply:
        with self._lock:
            for key in (alarm, None):
                queue = self._script.get(key)
                if queue:
                    return queue.popleft()
        return Reply()

    def _check(self, head: dict[str, str], body: bytes) -> bool:
        try:
            parsed = orjson.loads(body)
            return (
                head.get("content-type") == "application/json"
                and head.get("watchkeep-delivery") == parsed["delivery_id"]
                and head.get("watchkeep-event") == parsed["event"]
                and verify_signature(
                    head["watchkeep-signature"],
                    self.secrets,
                    int(head["watchkeep-timestamp"]),
                    body,
                    now=self.clock(),
                )
            )
        except (KeyError, ValueError):
            return False

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 - the name http.server dispatches to
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                head = {k.lower(): v for k, v in self.headers.items()}
                verified = receiver._check(head, body)
                try:
                    alarm = orjson.loads(body)["alarm"]["name"]
                except (KeyError, ValueError, TypeError):
                    alarm = None
                reply = receiver._next_reply(alarm) if verified else Reply(401)
                with receiver._lock:
                    receiver.requests.append(Received(head, body, verified, reply, time.time()))
                if reply.delay_s:
                    time.sleep(reply.delay_s)
                if reply.close:
                    self.close_connection = True
                    return
                self.send_response(reply.status)
                for name, value in reply.headers.items():
                    self.send_header(name, value)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, format: str, *args: Any) -> None:  # noqa: A002
                pass

        return Handler

    def __enter__(self) -> Receiver:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join()
