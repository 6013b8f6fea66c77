"""Report bytes: JSON (the full structure), CSV (blocks of tables) and HTML (``render_html``).

CSV layout: blocks separated by one empty line. A block's first row is
``section,<key>,<title>``, its second the column names, then its rows. Lists are joined with
``"; "``; a text cell that a spreadsheet would run as a formula (``= + - @``, tab, CR) gets a
leading ``'`` (OWASP's advice); the JSON report keeps every value as recorded. No I/O here.
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterable, Sequence
from typing import Any

from audit.reports.model import Report
from audit.reports.render_html import render_html

MEDIA_TYPES = {
    "json": "application/json",
    "csv": "text/csv; charset=utf-8",
    "html": "text/html; charset=utf-8",
}
_FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")
_COVERAGE_TABLES: tuple[tuple[str, str, tuple[str, ...]], ...] = (
    (
        "byCategory",
        "Records per category",
        ("category", "event_type", "records", "reads", "writes", "errors"),
    ),
    ("bySource", "Records per event source", ("event_source", "records")),
    ("gaps", "Gaps (downtime, stale digests, missing data)", ("code", "severity", "message")),
)


def render(report: Report, fmt: str) -> bytes:
    """The report as ``json``, ``csv`` or ``html`` bytes (UTF-8)."""
    if fmt == "json":
        return render_json(report)
    if fmt == "csv":
        return render_csv(report)
    if fmt == "html":
        return render_html(report).encode("utf-8")
    raise ValueError(f"unknown report format {fmt!r}")


def render_json(report: Report) -> bytes:
    return (json.dumps(report.to_json(), indent=2, ensure_ascii=False) + "\n").encode("utf-8")


def render_csv(report: Report) -> bytes:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    integrity = report.integrity
    blocks: list[tuple[str, str, Sequence[str], Iterable[Sequence[Any]]]] = [
        (
            "report",
            f"{report.template.number} {report.template.title}",
            ("field", "value"),
            [
                ("reportId", report.report_id),
                ("template", report.template.name),
                ("intent", report.template.intent),
                *((f"parameter.{k}", v) for k, v in report.params.items()),
                *((f"query.{s.key}", s.query) for s in report.sections if s.query),
            ],
        ),
        ("scope", "Scope", ("field", "value"), _flat(report.scope)),
        (
            "integrity",
            "Integrity attestation",
            ("field", "value"),
            _flat({k: v for k, v in integrity.items() if k != "findings"}),
        ),
        (
            "integrity-findings",
            "Integrity findings",
            ("code", "severity", "kind", "path", "seqStart", "seqEnd", "message"),
            [
                [f.get(c) for c in ("code", "severity", "kind", "path", "seqStart", "seqEnd")]
                + [f.get("message")]
                for f in integrity.get("findings", [])
            ],
        ),
        ("coverage", "Coverage", ("field", "value"), _coverage_fields(report.coverage)),
    ]
    for key, title, names in _COVERAGE_TABLES:
        rows = report.coverage.get(key) or []
        blocks.append((f"coverage.{key}", title, names, [[r.get(c) for c in names] for r in rows]))
    for section in report.sections:
        blocks.append((section.key, section.title, section.columns, section.rows))
    blocks.append(("notes", "Notes", ("note",), [[n] for n in report.notes]))
    blocks.append(("reviewer", "Reviewer", ("field", "value"), _flat(report.reviewer)))
    for index, (key, title, columns, rows) in enumerate(blocks):
        if index:
            writer.writerow([])
        writer.writerow(["section", key, title])
        writer.writerow(list(columns))
        for row in rows:
            writer.writerow([_cell(v) for v in row])
    return out.getvalue().encode("utf-8")


def _coverage_fields(coverage: dict[str, Any]) -> list[tuple[str, Any]]:
    skip = {"byCategory", "bySource", "gaps"}
    return _flat({k: v for k, v in coverage.items() if k not in skip})


def _flat(data: dict[str, Any], prefix: str = "") -> list[tuple[str, Any]]:
    rows: list[tuple[str, Any]] = []
    for key, value in data.items():
        name = f"{prefix}{key}"
        if isinstance(value, dict):
            rows += _flat(value, f"{name}.")
        else:
            rows.append((name, value))
    return rows


def _cell(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return str(value)
    if isinstance(value, list):
        text = "; ".join("" if v is None else str(v) for v in value)
    elif isinstance(value, dict):
        text = json.dumps(value, ensure_ascii=False, sort_keys=True)
    else:
        text = str(value)
    return "'" + text if text.startswith(_FORMULA_STARTS) else text


__all__ = ["MEDIA_TYPES", "render", "render_csv", "render_json"]
