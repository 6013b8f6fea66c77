"""``watchkeep alarms eval``: one evaluation at an instant, offline, from a datapoints file.

The datums go through PutMetricData's own validation into a throwaway metric store (the
"too old" rules measured from ``--at``), and the alarms read it exactly as the server's tick
does, so the answer is the one the server would have given at that instant.
"""

from __future__ import annotations

import json
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated, Any

import duckdb
import typer

from alarms.oneshot import evaluate_once
from alarms.rules import RulesError, load_rules_path
from alarms.state import STATES
from core.errors import WatchkeepError
from core.timeparse import parse_range_time
from ingest.metric_data import decode_metric_data
from server.cli_http import fail
from store.metrics import MetricStore, MetricStoreConfig

__all__ = ["alarms_eval"]


def alarms_eval(
    rules: Annotated[
        Path, typer.Option("--rules", exists=True, help="A rule file or a directory of them.")
    ],
    datapoints: Annotated[
        Path,
        typer.Option(
            "--datapoints",
            exists=True,
            dir_okay=False,
            help="JSON: a PutMetricData body {namespace, metric_data}, or a list of them.",
        ),
    ],
    at: Annotated[str, typer.Option("--at", help="The instant: RFC 3339 or epoch seconds.")],
    state: Annotated[
        list[str] | None,
        typer.Option("--state", help="NAME=STATE before the evaluation, as SetAlarmState."),
    ] = None,
) -> None:
    """Print the state each alarm would have at --at, as JSON (composites included)."""
    try:
        ruleset = load_rules_path(rules)
    except RulesError as exc:
        for issue in exc.issues:
            typer.echo(f"error: {issue}", err=True)
        raise typer.Exit(1) from None
    try:
        # "now" and "-15m" are relative to the wall clock, as everywhere else.
        at_ms = parse_range_time(at, now_ms=int(time.time() * 1_000))
    except WatchkeepError as exc:
        fail(f"--at: {exc.message}")
    states = dict(_state_option(item) for item in state or [])
    documents = _documents(datapoints)
    with _metric_store() as store:
        for index, document in enumerate(documents):
            try:
                batch = decode_metric_data(document, now_ms=at_ms)
                batch.raise_if_empty()
            except WatchkeepError as exc:
                fail(f"{datapoints}: document {index}: {exc.message}")
            for rejected in batch.rejected:
                fail(f"{datapoints}: document {index}: metric_data[{rejected.index}]: "
                     f"{rejected.reason}")  # fmt: skip
            store.put(batch.rows).result()
        try:
            alarms = evaluate_once(ruleset, store, at_ms, states)
        except ValueError as exc:
            fail(str(exc))
    typer.echo(json.dumps({"at": at_ms, "alarms": alarms}, indent=2))


def _state_option(item: str) -> tuple[str, str]:
    name, _, value = item.rpartition("=")
    if not name or value not in STATES:
        fail(f"--state {item!r}: expected NAME=STATE with STATE one of {', '.join(STATES)}")
    return name, value


def _documents(path: Path) -> list[dict[str, Any]]:
    try:
        loaded = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        fail(f"{path}: not a JSON file: {exc}")
    documents = loaded if isinstance(loaded, list) else [loaded]
    if not all(isinstance(d, dict) for d in documents):
        fail(f"{path}: expected a PutMetricData body (an object) or a list of them")
    return documents


@contextmanager
def _metric_store() -> Iterator[MetricStore]:
    with tempfile.TemporaryDirectory(prefix="watchkeep-eval-") as tmp:
        catalog = duckdb.connect(str(Path(tmp) / "catalog.duckdb"))
        store = MetricStore(MetricStoreConfig(data_dir=Path(tmp), fsync=False), catalog.cursor)
        store.open()
        store.recover()
        try:
            yield store
        finally:
            store.close()
            catalog.close()
