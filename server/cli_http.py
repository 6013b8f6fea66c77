"""What every client verb of the CLI shares: options, the HTTP client, errors, tables."""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from typing import Annotated, Any, NoReturn
from urllib.parse import quote, urlsplit

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


def usage_error(message: str) -> NoReturn:
    """A command line that cannot work as given (exit status 2, as click's own usage errors)."""
    typer.echo(f"error: {message}", err=True)
    raise typer.Exit(2)


_DURATION = re.compile(r"-?\d{1,12}[smhdw]", re.ASCII)


def since_start(since: str, *, absolute_ok: bool = False) -> str:
    """The API's start for ``--since``: ``15m`` and ``-15m`` alike mean 15 minutes ago. With
    ``absolute_ok`` anything else goes to the server as a time (epoch s, RFC 3339)."""
    text = since.strip()
    if _DURATION.fullmatch(text):
        return f"-{text.lstrip('-')}"
    if not absolute_ok:
        usage_error(f"--since {since!r} is not a duration such as 15m, 1h, 2d or 1w")
    return text


def seg(name: str) -> str:
    """A name as one path segment of an API URL. Escaped whole: ``bob/policies/p`` or
    ``a?force=1`` must name a user, not another route or a query string."""
    if not name:
        usage_error("a name is empty")
    return quote(name, safe="")


def client(server: str, key: str | None) -> httpx.Client:
    if not key:
        usage_error("no access key: pass --key WKIA…:wks_… or set WATCHKEEP_KEY")
    key = key.strip()
    # Checked here, not by the HTTP library, whose error would print the whole secret.
    if not key.isascii() or not key.isprintable() or " " in key:
        usage_error("--key is not an access key pair WKIA…:wks_… (it holds spaces or non-ASCII)")
    try:
        parts = urlsplit(server)
    except ValueError as exc:
        usage_error(f"--server {server!r} is not a usable URL ({exc})")
    if parts.scheme not in ("http", "https") or not parts.netloc:
        usage_error(f"--server {server!r} is not a URL such as http://127.0.0.1:8766")
    try:
        return httpx.Client(
            base_url=server, headers={"Authorization": f"Bearer {key}"}, timeout=30.0
        )
    except (httpx.InvalidURL, ValueError) as exc:
        usage_error(f"--server {server!r} is not a usable URL ({exc})")


def request(http: httpx.Client, method: str, path: str, **kwargs: Any) -> httpx.Response:
    """The answer of one API call; any error ends the command with a clear message."""
    try:
        response = http.request(method, path, **kwargs)
    except httpx.TransportError as exc:
        fail(f"cannot reach the server at {http.base_url}: {_transport_hint(exc)}")
    except (httpx.InvalidURL, UnicodeEncodeError):
        usage_error("an argument is not valid UTF-8 text")
    if "x-amzn-requestid" not in response.headers:
        fail(
            f"{http.base_url} answered HTTP {response.status_code} without watchkeep's request "
            "id: is --server the address of `watchkeep serve`?"
        )
    if response.status_code >= 300:
        error = _error_of(response)
        if error is None:
            fail(f"HTTP {response.status_code} from {path}: {response.text[:200]}")
        message, code = error
        fail(f"{message} ({code}, HTTP {response.status_code})")
    return response


def error_message(response: httpx.Response) -> str:
    """A watchkeep error answer as "message (Code)", else the start of the body."""
    error = _error_of(response)
    return f"{error[0]} ({error[1]})" if error is not None else response.text[:200]


def _error_of(response: httpx.Response) -> tuple[str, str] | None:
    """The message and code of the Contracts' error body, None for any other answer."""
    try:
        error = response.json()["error"]
        return str(error["message"]), str(error["code"])
    except (ValueError, KeyError, TypeError):
        return None


def retry_after_s(response: httpx.Response, *, default_s: float, max_s: float = 30.0) -> float:
    """The answer's ``Retry-After`` in seconds, kept within [0.1, ``max_s``] so that a stuck
    server ends the command; ``default_s`` when absent, a date or not a number."""
    try:
        wait_s = float(response.headers.get("retry-after", ""))
    except ValueError:
        return default_s
    if not math.isfinite(wait_s):
        return default_s
    return min(max(wait_s, 0.1), max_s)


def call(http: httpx.Client, method: str, path: str, **kwargs: Any) -> Any:
    """The JSON answer of one API call (None for an empty one)."""
    response = request(http, method, path, **kwargs)
    if response.status_code == 204 or not response.content:
        return None
    try:
        return response.json()
    except ValueError:
        fail(f"the answer to {method} {path} is not JSON: {response.text[:200]}")


def _transport_hint(exc: httpx.TransportError) -> str:
    text = str(exc)
    if "WRONG_VERSION_NUMBER" in text or "SSL" in text:
        return f"{text}; the server speaks plain HTTP: use http:// in --server"
    return f"{text}; is `watchkeep serve` running there?"


def print_table(columns: Sequence[str], rows: Sequence[Sequence[Any]], *, title: str = "") -> None:
    table = Table(*columns, title=title or None, show_lines=False)
    for row in rows:
        table.add_row(*("" if v is None else str(v) for v in row))
    Console().print(table)
