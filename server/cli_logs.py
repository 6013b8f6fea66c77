"""``watchkeep logs retention``: apply the log groups' retention policies on a running server."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Annotated

import typer

from server.cli_http import DEFAULT_SERVER, KeyOption, ServerOption, call, client, print_table

logs_app = typer.Typer(no_args_is_help=True)


@logs_app.callback()
def logs() -> None:
    """Log groups: retention."""


@logs_app.command("retention")
def retention(
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="Only list what would be dropped.")
    ] = False,
    output: Annotated[str, typer.Option("--format", help="table or json.")] = "table",
    server: ServerOption = DEFAULT_SERVER,
    key: KeyOption = None,
) -> None:
    """Drop the hourly partitions that retention policies expire now, and list them."""
    if output not in ("table", "json"):
        raise typer.BadParameter("use table or json", param_hint="--format")
    with client(server, key) as http:
        result = call(
            http,
            "POST",
            "/api/v1/logs/retention",
            params={"dry_run": "true" if dry_run else "false"},
        )
    expired = result["expired"]
    if output == "json":
        typer.echo(json.dumps(result, indent=2))
        return
    if not expired:
        typer.echo("nothing to drop: no partition is past its log group's retention")
        return
    rows = [(p["log_group"], _hour(p["hour_ms"])) for p in expired]
    print_table(["log group", "hour (UTC)"], rows)
    groups = len({p["log_group"] for p in expired})
    verb = "would drop" if dry_run else "dropped"
    typer.echo(f"{verb} {len(expired)} partition(s) of {groups} log group(s)")


def _hour(hour_ms: int) -> str:
    return datetime.fromtimestamp(hour_ms / 1000, UTC).strftime("%Y-%m-%dT%H:00Z")
