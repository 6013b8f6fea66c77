"""``watchkeep audit lookup``: LookupEvents from the command line, page by page."""

from __future__ import annotations

import json
from typing import Annotated, Any

import typer
from rich.progress import Progress, SpinnerColumn, TextColumn

from server.cli_http import DEFAULT_SERVER, KeyOption, ServerOption, call, client, print_table
from server.cli_report import register as register_report
from server.cli_verify import register as register_verify

audit_app = typer.Typer(help="The audit trail.", no_args_is_help=True)
register_verify(audit_app)
register_report(audit_app)

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
    max_events: Annotated[int, typer.Option("--max", help="Stop after this many.")] = 50,
    output: Annotated[str, typer.Option("--format", help="table, json or full.")] = "table",
    server: ServerOption = DEFAULT_SERVER,
    key: KeyOption = None,
) -> None:
    """Look up audit records, newest first (full: the complete CloudTrail records as JSONL)."""
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
    http = client(server, key)
    events: list[dict[str, Any]] = []
    with Progress(SpinnerColumn(), TextColumn("{task.description}"), transient=True) as progress:
        task = progress.add_task("looking up audit records…")
        token = None
        while len(events) < max_events:
            page_params = {**params, "max_results": min(50, max_events - len(events))}
            if token:
                page_params["next_token"] = token
            page = call(http, "GET", "/api/v1/audit/events", params=page_params)
            events += page["events"]
            progress.update(task, description=f"{len(events)} records…")
            token = page.get("next_token")
            if not token:
                break
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
