"""``watchkeep alarms validate|test``: check rule files and run their unit tests offline."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from alarms.rules import RulesError, load_rules_path
from alarms.testing import run_test_file

alarms_app = typer.Typer(help="Alarm rule files.", no_args_is_help=True)


@alarms_app.command("validate")
def validate(
    path: Annotated[Path, typer.Argument(help="A rule file or a directory of them.", exists=True)],
) -> None:
    """Load rule files as the server would; print every problem as file:line:column."""
    try:
        rules = load_rules_path(path)
    except RulesError as exc:
        for issue in exc.issues:
            typer.echo(f"error: {issue.file}:{issue.line}:{issue.column}: {issue.field}: "
                       f"{issue.message}", err=True)  # fmt: skip
        raise typer.Exit(1) from None
    typer.echo(
        f"ok: {len(rules.alarms)} metric alarms, {len(rules.composites)} composite alarms, "
        f"{len(rules.targets)} targets, {len(rules.silences)} silences "
        f"in {len(set(rules.files.values()))} files"
    )


@alarms_app.command("test")
def test(
    files: Annotated[list[Path], typer.Argument(help="Rule test files (YAML).", exists=True)],
) -> None:
    """Run promtool-style rule unit tests: input series, evaluation times, expected states."""
    failed = 0
    for path in files:
        try:
            report = run_test_file(path)
        except RulesError as exc:
            for issue in exc.issues:
                typer.echo(f"error: {issue.file}:{issue.line}:{issue.column}: {issue.field}: "
                           f"{issue.message}", err=True)  # fmt: skip
            raise typer.Exit(1) from None
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
