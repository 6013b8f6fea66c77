"""The ``watchkeep`` command line: serve here; tail, query, keys, users, audit in their modules.

Errors go to stderr as ``error: <what, where, what to do>`` with exit status 1 (usage: 2).
While a server runs, verbs talk to it over HTTP rather than opening its files.
"""

from __future__ import annotations

import logging
import sys
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any

import typer
import uvicorn

from server.cli_alarms import alarms_app
from server.cli_audit import audit_app
from server.cli_http import fail
from server.cli_iam import groups_app, keys_app, policies_app, users_app
from server.cli_logs import logs_app
from server.cli_metrics import metrics_app
from server.cli_query import query
from server.cli_tail import tail
from server.serve_checks import check_data_dir, check_rules
from server.serving import uvicorn_config
from store.memory import use_server_memory_pool

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
app.add_typer(logs_app, name="logs")
app.command("query")(query)
app.command("tail")(tail)


class LogLevel(StrEnum):
    critical = "critical"
    error = "error"
    warning = "warning"
    info = "info"
    debug = "debug"


@app.command()
def serve(
    data_dir: Annotated[Path | None, typer.Option(help="Data directory.")] = None,
    host: Annotated[str | None, typer.Option(help="Address to listen on.")] = None,
    port: Annotated[int | None, typer.Option(help="Port to listen on (0: any free port).")] = None,
    rules: Annotated[
        Path | None, typer.Option(help="An alarm rule file or a directory of them.")
    ] = None,
    log_level: Annotated[
        LogLevel, typer.Option(help="Server log level.", case_sensitive=False)
    ] = LogLevel.info,
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
        error = exc.errors()[0]
        name = ".".join(str(part) for part in error["loc"])
        where = f"--{name.replace('_', '-')} (or WATCHKEEP_{name.upper()})" if name else "settings"
        fail(f"invalid {where}: {error['msg']}")
        return
    check_data_dir(settings.data_dir)
    if settings.rules_dir is not None:
        check_rules(settings.rules_dir)
    logging.basicConfig(
        level=log_level.value.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    typer.echo(
        f"watchkeep: data in {settings.data_dir.resolve()}, "
        f"listening on http://{settings.host}:{settings.port}",
        err=True,
    )
    use_server_memory_pool()
    config = uvicorn_config(
        create_app(settings), host=settings.host, port=settings.port, log_level=log_level.value
    )
    uvicorn.Server(config).run()


def main() -> None:
    app()


if __name__ == "__main__":
    sys.exit(app())
