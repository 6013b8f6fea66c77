"""What ``watchkeep serve`` checks before it starts the server: errors an operator can fix,
said in one line, instead of a server traceback after a half start."""

from __future__ import annotations

from pathlib import Path

import typer

from server.cli_http import fail
from store.catalog_lock import CatalogInUse, connect_unshared
from store.layout import CATALOG_FILE


def check_data_dir(data_dir: Path) -> None:
    """The data directory can be created and written, and no other server holds it."""
    if data_dir.exists() and not data_dir.is_dir():
        fail(f"the data directory {data_dir} is a file; pass --data-dir a directory")
    try:
        data_dir.mkdir(parents=True, exist_ok=True)
        probe = data_dir / ".write-check"
        probe.write_bytes(b"")
        probe.unlink()
    except OSError as exc:
        fail(f"the data directory {data_dir} cannot be used: {exc.strerror or exc}")
    catalog = data_dir / CATALOG_FILE
    if not catalog.exists():
        return
    try:
        connect_unshared(catalog).close()
    except CatalogInUse as exc:
        holder = f" (PID {exc.pid})" if exc.pid else ""
        fail(
            f"the data directory {data_dir} is in use by another process{holder}: one server "
            "per data directory"
        )


def check_rules(path: Path) -> None:
    """The alarm rules named by ``--rules`` exist and load, as ``watchkeep alarms validate``
    says (the server would stop at start with a traceback otherwise)."""
    from alarms.rules import RulesError, load_rules_path

    if not path.exists():
        fail(f"--rules {path}: no such file or directory")
    try:
        load_rules_path(path)
    except RulesError as exc:
        for issue in exc.issues:
            typer.echo(f"error: {issue}", err=True)
        fail(f"--rules {path} holds invalid rules (see above; `watchkeep alarms validate`)")
