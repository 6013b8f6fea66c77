"""``watchkeep audit lookup``: LookupEvents from the command line, page by page."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from typing import Annotated, Any

import httpx
import typer
from rich.progress import Progress, SpinnerColumn, TextColumn

from server.cli_http import (
    DEFAULT_SERVER,
    KeyOption,
    ServerOption,
    client,
    error_message,
    fail,
    print_table,
    retry_after_s,
)
from server.cli_report import register as register_report
from server.cli_verify import register as register_verify

audit_app = typer.Typer(help="The audit trail.", no_args_is_help=True)
register_verify(audit_app)
register_report(audit_app)

FORMATS = ("table", "json", "full")
# A throttled page is retried up to this many times, waiting what Retry-After says (at most
# _MAX_RETRY_S each): enough to ride out a rate limit, bounded so a stuck server ends the command.
_MAX_RETRIES = 5
_MAX_RETRY_S = 30.0

LOOKUP_KEYS = (
    "EventId EventName ReadOnly Username ResourceType ResourceName EventSource AccessKeyId"
).split()


@audit_app.command("lookup")
def lookup(
    attribute: Annotated[
        str | None,
        typer.Option(
            "--attribute",
            "-a",
            help=f"KEY=VALUE, KEY one of {', '.join(LOOKUP_KEYS)} (e.g. Username=alice).",
        ),
    ] = None,
    since: Annotated[str | None, typer.Option(help="Start: -1h, epoch s or RFC 3339.")] = None,
    until: Annotated[str | None, typer.Option(help="End (inclusive).")] = None,
    max_events: Annotated[
        int, typer.Option("--max", min=1, help="Stop after this many (1 or more).")
    ] = 50,
    output: Annotated[str, typer.Option("--format", help="table, json or full.")] = "table",
    server: ServerOption = DEFAULT_SERVER,
    key: KeyOption = None,
) -> None:
    """Look up audit records, newest first (full: the complete CloudTrail records as JSONL)."""
    if output not in FORMATS:
        raise typer.BadParameter(f"use {', '.join(FORMATS)}", param_hint="--format")
    params: dict[str, Any] = {}
    if attribute is not None:
        name, sep, value = attribute.partition("=")
        if not sep:
            raise typer.BadParameter(
                "use KEY=VALUE, e.g. EventName=DeleteLogGroup", param_hint="--attribute"
            )
        params.update(lookup_key=name, lookup_value=value)
    if since:
        params["start"] = since
    if until:
        params["end"] = until
    events: list[dict[str, Any]] = []
    problem: str | None = None
    with (
        client(server, key) as http,
        Progress(SpinnerColumn(), TextColumn("{task.description}"), transient=True) as progress,
    ):
        task = progress.add_task("looking up audit records…")
        token = None
        while len(events) < max_events:
            page_params = {**params, "max_results": min(50, max_events - len(events))}
            if token:
                page_params["next_token"] = token
            page, problem = _page(http, page_params, lambda s: progress.update(task, description=s))
            if page is None:
                break
            events += page["events"]
            progress.update(task, description=f"{len(events)} records…")
            token = page.get("next_token")
            if not token:
                break
    if problem is not None and not events:
        fail(problem)
    _print(events, output)
    if problem is not None:
        fail(f"stopped after {len(events)} records: {problem}")


def _page(
    http: httpx.Client, params: dict[str, Any], status: Callable[[str], None]
) -> tuple[dict[str, Any] | None, str | None]:
    """One page of LookupEvents, waiting out throttling (429: LookupEvents allows a few calls
    a second per principal) as the server's ``Retry-After`` says; (None, why) on failure."""
    retries = 0
    while True:
        try:
            response = http.get("/api/v1/audit/events", params=params)
        except httpx.TransportError as exc:
            return None, (
                f"cannot reach the server at {http.base_url} ({exc}); is `watchkeep serve` running?"
            )
        if response.status_code in (429, 503) and retries < _MAX_RETRIES:
            wait_s = retry_after_s(response, default_s=float(2**retries), max_s=_MAX_RETRY_S)
            retries += 1
            status(f"throttled by the server; retrying in {wait_s:g} s…")
            time.sleep(wait_s)
            continue
        if response.status_code >= 400:
            return None, f"{error_message(response)} (HTTP {response.status_code})"
        return response.json(), None


def _print(events: list[dict[str, Any]], output: str) -> None:
    if output == "json":
        typer.echo(json.dumps(events, indent=2))
    elif output == "full":
        for event in events:
            typer.echo(event["cloudtrail_event"])
    else:
        rows = []
        for event in events:
            record = json.loads(event["cloudtrail_event"])
            resources = ", ".join(r["resource_name"] for r in event["resources"])
            rows.append(
                (
                    event["event_time"],
                    event["event_name"],
                    event["username"] or "(unknown)",
                    record.get("sourceIPAddress"),
                    record.get("errorCode", ""),
                    resources,
                )
            )
        print_table(("time", "event", "user", "source ip", "error", "resources"), rows)
