"""What every client verb of the CLI shares: options, the HTTP client, errors, tables."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Annotated, Any, NoReturn

import httpx
import typer
from rich.console import Console
from rich.table import Table

ServerOption = Annotated[
    str, typer.Option("--server", envvar="WATCHKEEP_SERVER", help="Base URL of the server.")
]
KeyOption = Annotated[
    str | None,
    typer.Option("--key", envvar="WATCHKEEP_KEY", help="Access key pair WKIA…:wks_…"),
]
DEFAULT_SERVER = "http://127.0.0.1:8766"


def fail(message: str) -> NoReturn:
    typer.echo(f"error: {message}", err=True)
    raise typer.Exit(1)


def client(server: str, key: str | None) -> httpx.Client:
    if not key:
        fail("no access key: pass --key WKIA…:wks_… or set WATCHKEEP_KEY")
    return httpx.Client(base_url=server, headers={"Authorization": f"Bearer {key}"}, timeout=30.0)


def request(http: httpx.Client, method: str, path: str, **kwargs: Any) -> httpx.Response:
    """The answer of one API call; any error ends the command with a clear message."""
    try:
        response = http.request(method, path, **kwargs)
    except httpx.TransportError as exc:
        fail(f"cannot reach the server at {http.base_url} ({exc}); is `watchkeep serve` running?")
    if response.status_code >= 400:
        try:
            error = response.json()["error"]
        except (ValueError, KeyError, TypeError):
            fail(f"HTTP {response.status_code} from {path}: {response.text[:200]}")
        fail(f"{error['message']} ({error['code']}, HTTP {response.status_code})")
    return response


def call(http: httpx.Client, method: str, path: str, **kwargs: Any) -> Any:
    """The JSON answer of one API call (None for an empty one)."""
    response = request(http, method, path, **kwargs)
    if response.status_code == 204 or not response.content:
        return None
    return response.json()


def print_table(columns: Sequence[str], rows: Sequence[Sequence[Any]], *, title: str = "") -> None:
    table = Table(*columns, title=title or None, show_lines=False)
    for row in rows:
        table.add_row(*("" if v is None else str(v) for v in row))
    Console().print(table)
