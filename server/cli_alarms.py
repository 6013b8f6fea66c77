"""``watchkeep alarms``: check rules and run their unit tests offline (``validate``, ``test``,
``eval``), and look at a running server's alarms (``list``, ``history``, ``set-state``)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any
from urllib.parse import quote

import typer

from alarms.rules import RulesError, load_rules_path, rule_file_paths
from alarms.testing import run_test_file
from server.cli_alarm_eval import alarms_eval
from server.cli_http import DEFAULT_SERVER, KeyOption, ServerOption, call, client, print_table

alarms_app = typer.Typer(help="Alarm rules and alarms.", no_args_is_help=True)
alarms_app.command("eval")(alarms_eval)
Json = Annotated[bool, typer.Option("--json", help="Print JSON instead of a table.")]


@alarms_app.command("validate")
def validate(
    path: Annotated[Path, typer.Argument(help="A rule file or a directory of them.", exists=True)],
) -> None:
    """Load rule files as the server would; print every problem as file:line:column.

    Exit 1 when the server would refuse them. Warnings (exit 0): no rule files, a file that
    holds no rules, a secret whose environment variable is unset here."""
    try:
        rules = load_rules_path(path)
        files = rule_file_paths(path)
    except RulesError as exc:
        _issues(exc)
        raise typer.Exit(1) from None
    for warning in rules.warnings:
        typer.echo(f"warning: {warning}", err=True)
    typer.echo(
        f"ok: {len(rules.alarms)} metric alarms, {len(rules.composites)} composite alarms, "
        f"{len(rules.targets)} targets, {len(rules.silences)} silences "
        f"in {len(files)} files"
    )


@alarms_app.command("test")
def test(
    files: Annotated[list[Path], typer.Argument(help="Rule test files (YAML).", exists=True)],
) -> None:
    """Run promtool-style rule unit tests: input series, evaluation times, expected states.

    Exit 1 when a test file or its rules are invalid, or when a test case fails."""
    failed = 0
    for path in files:
        try:
            report = run_test_file(path)
        except RulesError as exc:
            _issues(exc)
            raise typer.Exit(1) from None
        if not report.cases:
            typer.echo(f"no tests in {path}", err=True)
        for case in report.cases:
            if case.failures:
                failed += 1
                typer.echo(f"FAIL {path}: {case.name}")
                for failure in case.failures:
                    typer.echo(f"  {failure}")
            else:
                typer.echo(f"ok   {path}: {case.name}")
    if failed:
        typer.echo(f"error: {failed} test case(s) failed", err=True)
        raise typer.Exit(1)


def _issues(exc: RulesError) -> None:
    for issue in exc.issues:
        typer.echo(f"error: {issue}", err=True)


@alarms_app.command("list")
def alarms_list(
    state: Annotated[str | None, typer.Option(help="OK, ALARM or INSUFFICIENT_DATA.")] = None,
    prefix: Annotated[str | None, typer.Option(help="Only names starting with this.")] = None,
    as_json: Json = False,
    server: ServerOption = DEFAULT_SERVER,
    key: KeyOption = None,
) -> None:
    """The server's alarms with their state and reason."""
    params = {k: v for k, v in {"state": state, "prefix": prefix}.items() if v}
    with client(server, key) as http:  # closed: the CLI also runs in-process (tests, scripts)
        alarms = call(http, "GET", "/api/v1/alarms", params=params)["alarms"]
    if as_json:
        typer.echo(json.dumps(alarms, indent=2))
        return
    rows = [
        (a["name"], a["kind"], a["state"]["value"], a["state"]["timestamp"], a["state"]["reason"])
        for a in alarms
    ]
    print_table(["name", "kind", "state", "since", "reason"], rows)


@alarms_app.command("history")
def alarms_history(
    name: Annotated[str | None, typer.Argument(help="One alarm; all when omitted.")] = None,
    item_type: Annotated[
        str | None,
        typer.Option("--type", help="StateUpdate, ConfigurationUpdate or Action."),
    ] = None,
    limit: Annotated[int, typer.Option(help="At most this many items.", min=1)] = 100,
    as_json: Json = False,
    server: ServerOption = DEFAULT_SERVER,
    key: KeyOption = None,
) -> None:
    """Alarm history, newest first (kept 30 days, also for deleted alarms)."""
    params: dict[str, Any] = {k: v for k, v in {"name": name, "type": item_type}.items() if v}
    items: list[dict[str, Any]] = []
    with client(server, key) as http:
        while len(items) < limit:
            params["max_records"] = min(100, limit - len(items))
            page = call(http, "GET", "/api/v1/alarms/history", params=params)
            items += page["items"]
            if not page["next_token"]:
                break
            params["next_token"] = page["next_token"]
    if as_json:
        typer.echo(json.dumps(items, indent=2))
        return
    rows = [(i["timestamp"], i["alarm_name"], i["type"], i["summary"]) for i in items]
    print_table(["time", "alarm", "type", "summary"], rows)


@alarms_app.command("set-state")
def alarms_set_state(
    name: Annotated[str, typer.Argument(help="The alarm.")],
    state: Annotated[str, typer.Argument(help="OK, ALARM or INSUFFICIENT_DATA.")],
    reason: Annotated[str, typer.Option(help="Why (shown as the state reason).")] = "Set by CLI",
    reason_data: Annotated[
        str | None, typer.Option("--reason-data", help="JSON object: StateReasonData.")
    ] = None,
    server: ServerOption = DEFAULT_SERVER,
    key: KeyOption = None,
) -> None:
    """SetAlarmState: force a state for testing; a transition runs its actions."""
    body: dict[str, Any] = {"state": state, "reason": reason}
    if reason_data is not None:
        body["reason_data"] = reason_data
    with client(server, key) as http:
        view = call(http, "POST", f"/api/v1/alarms/{quote(name, safe='')}/state", json=body)
    typer.echo(f"{view['name']}: {view['state']['value']}")
