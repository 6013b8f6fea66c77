"""``watchkeep query``: run a Logs Insights query on a server and print the rows."""

from __future__ import annotations

import csv
import json
import sys
import time
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.live import Live
from rich.spinner import Spinner

from server.cli_http import (
    DEFAULT_SERVER,
    KeyOption,
    ServerOption,
    call,
    client,
    fail,
    print_table,
    since_start,
)

FINISHED = ("Complete", "Failed", "Cancelled", "Timeout", "Unknown")


def query(
    text: Annotated[str, typer.Argument(metavar="QUERY", help="The Logs Insights query.")],
    group: Annotated[
        list[str], typer.Option("--group", "-g", help="Log group; repeat for several.")
    ],
    since: Annotated[
        str | None, typer.Option(help="Start this long ago: 15m, 1h, 2d (or give --start).")
    ] = None,
    start: Annotated[str | None, typer.Option(help="Start: epoch s or RFC 3339.")] = None,
    end: Annotated[str, typer.Option(help="End (inclusive): epoch s, RFC 3339 or now.")] = "now",
    limit: Annotated[int | None, typer.Option(help="At most this many rows.")] = None,
    output: Annotated[str, typer.Option("--format", help="table, json or csv.")] = "table",
    server: ServerOption = DEFAULT_SERVER,
    key: KeyOption = None,
) -> None:
    """Run a query over log groups and a time range; Ctrl-C stops it on the server."""
    if (since is None) == (start is None):
        raise typer.BadParameter("give exactly one of --since and --start", param_hint="--since")
    if output not in ("table", "json", "csv"):
        raise typer.BadParameter("use table, json or csv", param_hint="--format")
    begin = start if start is not None else since_start(since or "")
    http = client(server, key)
    body: dict[str, Any] = {"query": text, "log_groups": group, "start": begin, "end": end}
    if limit is not None:
        body["limit"] = limit
    query_id = call(http, "POST", "/api/v1/queries", json=body)["query_id"]
    result = _follow(http, query_id)
    if result["status"] != "Complete":
        fail(f"the query ended {result['status']}: {result.get('error', 'no details')}")
    _print(result, output)


def _follow(http: Any, query_id: str) -> dict[str, Any]:
    """Poll until the query finishes, with a spinner on stderr; Ctrl-C stops the query."""
    console = Console(stderr=True)
    spinner = Spinner("dots", text="Scheduled")
    started = time.monotonic()
    try:
        with Live(spinner, console=console, transient=True, refresh_per_second=10):
            while True:
                result = call(http, "GET", f"/api/v1/queries/{query_id}")
                stats = result["statistics"]
                spinner.update(
                    text=f"{result['status']} · {stats['records_scanned']:,.0f} records scanned "
                    f"· {time.monotonic() - started:.1f} s"
                )
                if result["status"] in FINISHED:
                    return result  # type: ignore[no-any-return]
                time.sleep(0.2)
    except KeyboardInterrupt:
        call(http, "DELETE", f"/api/v1/queries/{query_id}")
        fail(f"stopped query {query_id}")


def _print(result: dict[str, Any], output: str) -> None:
    rows = [{cell["field"]: cell["value"] for cell in row} for row in result["results"]]
    columns = [c for c in dict.fromkeys(f for row in rows for f in row) if c != "@ptr"]
    if output == "json":
        typer.echo(json.dumps(rows, indent=2, ensure_ascii=False))
    elif output == "csv":
        writer = csv.DictWriter(sys.stdout, fieldnames=columns, extrasaction="ignore")
        writer.writeheader()
        writer.writerows(rows)
    else:
        print_table(columns, [[row.get(c) for c in columns] for row in rows])
        stats = result["statistics"]
        scanned = f"{stats['records_scanned']:,.0f} records"
        typer.echo(
            f"{len(rows)} rows · {stats['records_matched']:,.0f} matched of {scanned} · "
            f"{stats['bytes_scanned']:,.0f} bytes scanned",
            err=True,
        )
