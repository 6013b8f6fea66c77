"""``watchkeep tail``: print a group's events in the order they arrive, and follow new ones.

It reads FilterLogEvents in ingestion order (``order=ingest``) and follows the API's
``follow_token``, a cursor on each group's ingestion sequence: every event is printed exactly
once however many arrive between polls, late and backfilled ones included (as ``kubectl logs
-f`` or Loki's tail show what arrives, not what is newest by timestamp). Memory holds one page,
and each request asks only for events after the cursor, a page at a time. While following, an
unavailable server (503 with ``Retry-After`` under backpressure or during a restart's replay,
or no answer at all) is waited for, with one notice on stderr, and the same cursor picks up
where it stopped.
"""

from __future__ import annotations

import math
import time
from typing import Annotated, Any

import httpx
import typer

from server.cli_http import (
    DEFAULT_SERVER,
    KeyOption,
    ServerOption,
    client,
    error_message,
    fail,
    retry_after_s,
    since_start,
    usage_error,
)

# How long to wait before retrying when the server says nothing about it, and at most.
_RETRY_S = 1.0
_MAX_RETRY_S = 30.0
_PATH = "/api/v1/logs/events"


def tail(
    group: Annotated[str, typer.Argument(help="Log group to read.")],
    stream: Annotated[list[str] | None, typer.Option(help="Only these streams.")] = None,
    since: Annotated[
        str, typer.Option(help="Events stamped from: 10m, 1h (ago), epoch s or RFC 3339.")
    ] = "-10m",
    follow: Annotated[
        bool,
        typer.Option(
            "--follow", "-f", help="Keep printing events as they arrive, whatever their time."
        ),
    ] = False,
    interval_s: Annotated[
        float, typer.Option(help="Seconds between polls with -f (0.1 or more).", min=0.1)
    ] = 1.0,
    page_size: Annotated[int, typer.Option(min=1, max=10_000, help="Events per request.")] = 1000,
    server: ServerOption = DEFAULT_SERVER,
    key: KeyOption = None,
) -> None:
    """Print a group's events in the order they arrived; with -f, follow new ones."""
    if not math.isfinite(interval_s):  # click's range lets NaN through
        usage_error("--interval-s must be a number of seconds, 0.1 or more")
    http = client(server, key)
    params: dict[str, Any] = {
        "group": group,
        "start": since_start(since, absolute_ok=True),
        "order": "ingest",
        "limit": page_size,
    }
    if stream:
        params["stream"] = stream
    fetch = _Fetcher(http, retry=follow)
    token: str | None = None
    while True:
        body = fetch({**params, "next_token": token} if token else params)
        for event in body["events"]:
            typer.echo(_line(event))
        if body["next_token"]:
            token = body["next_token"]
            continue
        if not follow:
            return
        # From here on, everything ingested after what was shown, whatever its timestamp.
        params.pop("start", None)
        token = body["follow_token"]
        time.sleep(interval_s)


def _line(event: dict[str, Any]) -> str:
    ts_ms = event["timestamp"]
    stamp = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(ts_ms // 1000))
    return f"{stamp}.{ts_ms % 1000:03d}Z {event['log_stream']} {event['message']}"


class _Fetcher:
    """GET one page; with ``retry``, wait out a busy or restarting server instead of failing."""

    def __init__(self, http: httpx.Client, *, retry: bool) -> None:
        self._http = http
        self._retry = retry
        self._answered = False  # failing to connect at first is a wrong URL, not a restart
        self._waiting = False

    def __call__(self, params: dict[str, Any]) -> Any:
        backoff_s = _RETRY_S
        while True:
            body, wait_s, reason = self._attempt(params)
            if reason is None:
                if self._waiting:
                    typer.echo("watchkeep tail: the server answers again; resuming", err=True)
                    self._waiting = False
                self._answered = True
                return body
            if not self._waiting:
                typer.echo(f"watchkeep tail: {reason}; retrying until it answers", err=True)
                self._waiting = True
            time.sleep(wait_s or backoff_s)
            backoff_s = min(backoff_s * 2, _MAX_RETRY_S)

    def _attempt(self, params: dict[str, Any]) -> tuple[Any, float, str | None]:
        """(body, 0, None) on success; (None, seconds to wait or 0 to back off, why) to retry."""
        try:
            response = self._http.get(_PATH, params=params)
        except httpx.TransportError as exc:
            if not (self._retry and self._answered):
                fail(
                    f"cannot reach the server at {self._http.base_url} ({exc}); "
                    "is `watchkeep serve` running?"
                )
            return None, 0.0, f"cannot reach the server at {self._http.base_url} ({exc})"
        if self._retry and response.status_code in (429, 503):
            status, message = response.status_code, error_message(response)
            why = f"the server is unavailable (HTTP {status}: {message})"
            return None, retry_after_s(response, default_s=0.0, max_s=_MAX_RETRY_S), why
        if response.status_code >= 400:
            fail(f"{error_message(response)} (HTTP {response.status_code})")
        return response.json(), 0.0, None
