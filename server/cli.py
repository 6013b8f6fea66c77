"""The ``watchkeep`` command line: serve and tail here; keys, users, audit in their modules.

Errors go to stderr as ``error: <what, where, what to do>`` with exit status 1 (usage: 2).
While a server runs, verbs talk to it over HTTP rather than opening its files.
"""

from __future__ import annotations

import logging
import sys
import time
from collections import deque
from pathlib import Path
from typing import Annotated, Any

import httpx
import typer
import uvicorn

from server.cli_alarms import alarms_app
from server.cli_audit import audit_app
from server.cli_http import DEFAULT_SERVER, KeyOption, ServerOption, call, client, fail
from server.cli_iam import groups_app, keys_app, policies_app, users_app
from server.cli_metrics import metrics_app
from server.cli_query import query

app = typer.Typer(
    name="watchkeep",
    help="Self-hosted logs, metrics, alarms and audit trail.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)
app.add_typer(keys_app, name="keys")
app.add_typer(users_app, name="users")
app.add_typer(groups_app, name="groups")
app.add_typer(policies_app, name="policies")
app.add_typer(audit_app, name="audit")
app.add_typer(alarms_app, name="alarms")
app.add_typer(metrics_app, name="metrics")
app.command("query")(query)


@app.command()
def serve(
    data_dir: Annotated[Path | None, typer.Option(help="Data directory.")] = None,
    host: Annotated[str | None, typer.Option(help="Address to listen on.")] = None,
    port: Annotated[int | None, typer.Option(help="Port to listen on (0: any free port).")] = None,
    rules: Annotated[Path | None, typer.Option(help="Directory of alarm rule files.")] = None,
    log_level: Annotated[str, typer.Option(help="Server log level.")] = "info",
) -> None:
    """Run watchkeep: ingest, query and audit on one port, data in one directory."""
    from pydantic import ValidationError

    from server.app import create_app
    from server.settings import Settings

    overrides: dict[str, Any] = {
        k: v
        for k, v in {"data_dir": data_dir, "host": host, "port": port, "rules_dir": rules}.items()
        if v is not None
    }
    try:
        settings = Settings(**overrides)
    except ValidationError as exc:
        fail(f"invalid settings: {exc.errors()[0]['msg']}")
        return
    logging.basicConfig(
        level=log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    typer.echo(
        f"watchkeep: data in {settings.data_dir.resolve()}, "
        f"listening on http://{settings.host}:{settings.port}",
        err=True,
    )
    uvicorn.run(
        create_app(settings),
        host=settings.host,
        port=settings.port,
        log_level=log_level.lower(),
        timeout_graceful_shutdown=10,
    )


@app.command()
def tail(
    group: Annotated[str, typer.Argument(help="Log group to read.")],
    stream: Annotated[list[str] | None, typer.Option(help="Only these streams.")] = None,
    since: Annotated[str, typer.Option(help="Start: -10m, -1h, epoch s or RFC 3339.")] = "-10m",
    follow: Annotated[
        bool, typer.Option("--follow", "-f", help="Keep printing new events.")
    ] = False,
    interval_s: Annotated[float, typer.Option(help="Seconds between polls with -f.")] = 1.0,
    server: ServerOption = DEFAULT_SERVER,
    key: KeyOption = None,
) -> None:
    """Print a group's events (oldest first); with -f, follow new ones as they arrive."""
    http = client(server, key)
    params: dict[str, Any] = {"group": group, "start": since, "limit": 1000}
    if stream:
        params["stream"] = stream
    seen: deque[str] = deque(maxlen=100_000)
    seen_set: set[str] = set()
    latest_ms: int | None = None
    while True:
        for event in _fetch_all(http, params):
            if event["event_id"] in seen_set:
                continue
            if len(seen) == seen.maxlen:
                seen_set.discard(seen[0])
            seen.append(event["event_id"])
            seen_set.add(event["event_id"])
            latest_ms = max(latest_ms or 0, event["timestamp"])
            stamp = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(event["timestamp"] / 1000))
            typer.echo(
                f"{stamp}.{event['timestamp'] % 1000:03d}Z {event['log_stream']} {event['message']}"
            )
        if not follow:
            return
        time.sleep(interval_s)
        if latest_ms is not None:
            # Look back a little: events can arrive with timestamps slightly in the past.
            params["start"] = str(max(0, latest_ms - 300_000) // 1000)


def _fetch_all(http: httpx.Client, params: dict[str, Any]) -> list[dict[str, Any]]:
    events: list[dict[str, Any]] = []
    token = None
    while True:
        body = call(
            http,
            "GET",
            "/api/v1/logs/events",
            params={**params, "next_token": token} if token else params,
        )
        events += body["events"]
        token = body.get("next_token")
        if not token:
            return events


def main() -> None:
    app()


if __name__ == "__main__":
    sys.exit(app())
