"""``watchkeep metrics list|get``: ListMetrics and GetMetricStatistics on a running server.

``get`` prints a table, JSON, CSV or a small text chart (one bar per datapoint, scaled to the
terminal). Simple statistics (``Average``...) and extended ones (``p99``...) may be mixed on the
command line: the API takes one kind per call (spec §2.2), so the CLI asks once per kind and
merges the datapoints by timestamp.
"""

from __future__ import annotations

import csv
import json
import shutil
import sys
import time
from collections.abc import Sequence
from typing import Annotated, Any

import httpx
import typer

from server.cli_http import (
    DEFAULT_SERVER,
    KeyOption,
    ServerOption,
    call,
    client,
    print_table,
    since_start,
)

metrics_app = typer.Typer(
    help="Read metrics: list them, print their statistics.", no_args_is_help=True
)

SIMPLE = {
    "SampleCount": "sample_count",
    "Average": "average",
    "Sum": "sum",
    "Minimum": "minimum",
    "Maximum": "maximum",
}
FORMATS = ("table", "json", "csv", "chart")
# Eighths of a character cell, for bars with sub-character resolution.
_EIGHTHS = " ▏▎▍▌▋▊▉"
_SPARKS = "▁▂▃▄▅▆▇█"

DimensionOption = Annotated[
    list[str] | None,
    typer.Option("--dimension", "-d", help="Name=Value; repeat for several."),
]


def _dimensions(texts: Sequence[str], *, allow_name_only: bool = False) -> list[tuple[str, str]]:
    """``Name=Value`` pairs (or a bare ``Name`` where allowed); usage error otherwise."""
    pairs: list[tuple[str, str]] = []
    for text in texts:
        name, equals, value = text.partition("=")
        if not name or (not equals and not allow_name_only):
            raise typer.BadParameter(f"{text!r} is not Name=Value", param_hint="--dimension")
        if any(name == seen for seen, _ in pairs):  # a metric has one value per dimension
            raise typer.BadParameter(f"{name!r} is given twice", param_hint="--dimension")
        pairs.append((name, value) if equals else (name, ""))
    return pairs


@metrics_app.command("list")
def list_metrics(
    namespace: Annotated[str | None, typer.Option(help="Only this namespace.")] = None,
    name: Annotated[str | None, typer.Option("--name", help="Only this metric name.")] = None,
    dimension: Annotated[
        list[str] | None,
        typer.Option(
            "--dimension", "-d", help="Name=Value, or Name for any value; repeat for several."
        ),
    ] = None,
    recently_active: Annotated[
        bool, typer.Option("--recently-active", help="Only metrics with data in the last 3 h.")
    ] = False,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
    server: ServerOption = DEFAULT_SERVER,
    key: KeyOption = None,
) -> None:
    """ListMetrics: every metric matching the filters, all pages."""
    _dimensions(dimension or [], allow_name_only=True)
    params: dict[str, Any] = {}
    if namespace is not None:
        params["namespace"] = namespace
    if name is not None:
        params["metric_name"] = name
    if dimension:
        params["dimension"] = dimension
    if recently_active:
        params["recently_active"] = "PT3H"
    with client(server, key) as http:
        metrics = _all_metrics(http, params)
    if as_json:
        typer.echo(json.dumps(metrics, indent=2, ensure_ascii=False))
        return
    rows = [
        [
            m["namespace"],
            m["metric_name"],
            ", ".join(f"{k}={v}" for k, v in sorted(m["dimensions"].items())),
        ]
        for m in metrics
    ]
    print_table(["namespace", "metric", "dimensions"], rows)
    typer.echo(f"{len(metrics)} metrics", err=True)


def _all_metrics(http: httpx.Client, params: dict[str, Any]) -> list[dict[str, Any]]:
    metrics: list[dict[str, Any]] = []
    token = None
    while True:
        page = call(http, "GET", "/api/v1/metrics", params={**params, "next_token": token or ""})
        metrics += page["metrics"]
        token = page.get("next_token")
        if not token:
            return metrics


@metrics_app.command("get")
def get(
    namespace: Annotated[str, typer.Option(help="The metric's namespace.")],
    name: Annotated[str, typer.Option("--name", help="The metric name.")],
    statistic: Annotated[
        list[str],
        typer.Option(
            "--statistic", "-s", help="Average, Sum, Minimum, Maximum, SampleCount, p99, tm90..."
        ),
    ],
    dimension: DimensionOption = None,
    period: Annotated[int, typer.Option(help="Seconds per datapoint.")] = 60,
    since: Annotated[
        str | None, typer.Option(help="Start this long ago: 15m, 3h, 2d (or give --start).")
    ] = None,
    start: Annotated[str | None, typer.Option(help="Start: epoch s or RFC 3339.")] = None,
    end: Annotated[str, typer.Option(help="End (exclusive): epoch s, RFC 3339 or now.")] = "now",
    unit: Annotated[str | None, typer.Option(help="Only data with this unit.")] = None,
    output: Annotated[str, typer.Option("--format", help="table, json, csv or chart.")] = "table",
    server: ServerOption = DEFAULT_SERVER,
    key: KeyOption = None,
) -> None:
    """GetMetricStatistics: one metric's statistics per period, oldest first."""
    if (since is None) == (start is None):
        raise typer.BadParameter("give exactly one of --since and --start", param_hint="--since")
    if output not in FORMATS:
        raise typer.BadParameter(f"use one of {', '.join(FORMATS)}", param_hint="--format")
    statistics = list(dict.fromkeys(statistic))
    body: dict[str, Any] = {
        "namespace": namespace,
        "metric_name": name,
        "dimensions": dict(_dimensions(dimension or [])),
        "start": start if start is not None else since_start(since or ""),
        "end": end,
        "period": period,
    }
    if unit is not None:
        body["unit"] = unit
    simple = [s for s in statistics if s in SIMPLE]
    extended = [s for s in statistics if s not in SIMPLE]
    with client(server, key) as http:
        answers = []
        if simple:
            answers.append(_statistics(http, {**body, "statistics": simple}))
        if extended:
            answers.append(_statistics(http, {**body, "extended_statistics": extended}))
    result = {"label": answers[0]["label"], "datapoints": _merge(answers)}
    if output == "json":
        typer.echo(json.dumps(result, indent=2))
        return
    rows = [_row(point, statistics) for point in result["datapoints"]]
    if output == "csv":
        writer = csv.writer(sys.stdout, lineterminator="\n")
        writer.writerow(["timestamp", *statistics, "unit"])
        for point, row in zip(result["datapoints"], rows, strict=True):
            cells = ["" if v is None else repr(v) for v in row]
            writer.writerow([_iso(point["timestamp"]), *cells, point["unit"]])
    elif output == "chart":
        width = shutil.get_terminal_size((100, 24)).columns
        times = [p["timestamp"] for p in result["datapoints"]]
        for index, text in enumerate(statistics):
            if index:
                typer.echo("")
            column = [r[index] for r in rows]
            for line in render_chart(f"{result['label']} {text}", times, column, width):
                typer.echo(line)
    else:
        table_rows = [
            [_iso(p["timestamp"]), *(_number(v) for v in r), p["unit"]]
            for p, r in zip(result["datapoints"], rows, strict=True)
        ]
        print_table(["timestamp", *statistics, "unit"], table_rows, title=result["label"])
        typer.echo(f"{len(rows)} datapoints", err=True)


def _statistics(http: httpx.Client, body: dict[str, Any]) -> dict[str, Any]:
    answer: dict[str, Any] = call(http, "POST", "/api/v1/metrics/statistics", json=body)
    return answer


def _merge(answers: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    """The datapoints of one or two answers, joined by timestamp, oldest first."""
    merged: dict[int, dict[str, Any]] = {}
    for answer in answers:
        for point in answer["datapoints"]:
            into = merged.setdefault(point["timestamp"], {})
            extended = {
                **into.get("extended_statistics", {}),
                **point.get("extended_statistics", {}),
            }
            into.update(point)
            if extended:
                into["extended_statistics"] = extended
    return [merged[t] for t in sorted(merged)]


def _row(point: dict[str, Any], statistics: Sequence[str]) -> list[float | None]:
    extended = point.get("extended_statistics", {})
    return [point.get(SIMPLE[s]) if s in SIMPLE else extended.get(s) for s in statistics]


def _iso(timestamp_ms: int) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(timestamp_ms / 1000))


def _number(value: float | None) -> str:
    return "-" if value is None else f"{value:.6g}"


def render_chart(
    title: str, timestamps: Sequence[int], values: Sequence[float | None], width: int
) -> list[str]:
    """A text chart: a title with a sparkline, then one bar per datapoint.

    Each row is ``<timestamp> <bar> <value>``; bars run from the lower of 0 and the smallest
    value to the largest value, in eighths of a character, and the whole row fits ``width``.
    A datapoint without a value (an order statistic over statistic sets) has no bar.
    """
    present = [v for v in values if v is not None]
    if not present:
        return [f"{title}: no datapoints"]
    low, high = min(0.0, *present), max(0.0, *present)
    span = high - low or 1.0
    labels = [_number(v) for v in values]
    label_width = max(len(label) for label in labels)
    bar_width = max(10, width - 20 - 2 - label_width - 1)
    lines = [f"{title}  {sparkline(values, bar_width + label_width + 3)}"]
    for timestamp, value, label in zip(timestamps, values, labels, strict=True):
        bar = "" if value is None else _bar((value - low) / span * bar_width)
        lines.append(f"{_iso(timestamp)}  {bar:<{bar_width}} {label:>{label_width}}")
    return lines


def _bar(cells: float) -> str:
    whole, eighths = divmod(round(cells * 8), 8)
    return "█" * whole + (_EIGHTHS[eighths] if eighths else "")


def sparkline(values: Sequence[float | None], width: int) -> str:
    """One block character per datapoint (averaged into ``width`` cells when there are more)."""
    if not values:
        return ""
    cells = min(width, len(values))
    groups = [
        values[i * len(values) // cells : (i + 1) * len(values) // cells] for i in range(cells)
    ]
    means = [
        sum(present) / len(present) if (present := [v for v in g if v is not None]) else None
        for g in groups
    ]
    known = [m for m in means if m is not None]
    low, high = min(known), max(known)
    span = high - low or 1.0
    return "".join(" " if m is None else _SPARKS[min(7, int((m - low) / span * 8))] for m in means)
