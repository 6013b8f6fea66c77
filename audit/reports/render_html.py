"""The HTML report: one self-contained, printable page (inline CSS and SVG; no script, no
external asset, and a Content-Security-Policy that would block either). Every value from the
trail is escaped: user agents, resource names and messages are attacker-controlled text.
No I/O here.
"""

from __future__ import annotations

import json
import re
from html import escape
from typing import Any

from audit.reports.charts import bar_chart, column_chart
from audit.reports.model import Chart, Report, SectionResult

_TIME = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ")
CSP = "default-src 'none'; style-src 'unsafe-inline'; img-src data:; base-uri 'none'"

_CSS = """
:root { --ink: #111827; --muted: #6b7280; --line: #d1d5db; --soft: #f3f4f6; --ok: #166534;
  --bad: #b91c1c; --warn: #92400e; }
* { box-sizing: border-box; }
body { font: 13px/1.45 system-ui, -apple-system, "Segoe UI", Roboto, sans-serif; color: var(--ink);
  margin: 0 auto; padding: 24px; max-width: 1180px; }
h1 { font-size: 22px; margin: 0 0 4px; } h2 { font-size: 16px; margin: 0 0 8px; }
header { border-bottom: 2px solid var(--ink); padding-bottom: 10px; margin-bottom: 16px; }
.sub { color: var(--muted); }
section { margin: 0 0 22px; }
table { border-collapse: collapse; width: 100%; margin: 6px 0; }
th, td { border: 1px solid var(--line); padding: 3px 6px; text-align: left; vertical-align: top;
  overflow-wrap: break-word; }
td.time { white-space: nowrap; }
td code { overflow-wrap: anywhere; }
td.wide { min-width: 240px; }
td.long { overflow-wrap: anywhere; min-width: 120px; }
th { background: var(--soft); font-weight: 600; }
table.kv th { width: 220px; }
td.num { text-align: right; font-variant-numeric: tabular-nums; }
table.kv td.num { text-align: left; }
td code { font: 11px/1.35 ui-monospace, "SFMono-Regular", Menlo, monospace; white-space: pre-wrap; }
.none { color: var(--muted); }
.badge { display: inline-block; padding: 2px 10px; border-radius: 10px; font-weight: 700;
  color: #fff; }
.badge.valid { background: var(--ok); } .badge.invalid { background: var(--bad); }
.badge.other { background: var(--warn); }
.glance { display: flex; gap: 28px; flex-wrap: wrap; margin: 10px 0 0; }
.glance div b { display: block; font-size: 18px; }
svg.chart { display: block; margin: 6px 0 10px; max-width: 100%; height: auto; }
svg .label, svg .value { font-size: 11px; fill: var(--ink); }
svg .chart-title { font-size: 12px; font-weight: 600; fill: var(--ink); }
svg .axis { stroke: var(--line); }
.reviewer td { height: 34px; }
footer { border-top: 1px solid var(--line); padding-top: 8px; color: var(--muted); }
@page { size: A4 landscape; margin: 12mm; }
@media print {
  body { padding: 0; max-width: none; font-size: 10.5px; }
  * { -webkit-print-color-adjust: exact; print-color-adjust: exact; }
  thead { display: table-header-group; } tr, svg.chart { break-inside: avoid; }
  h2 { break-after: avoid; } #reviewer { break-inside: avoid; }
}
"""


def render_html(report: Report) -> str:
    """The whole page."""
    title = f"{report.template.number} {report.template.title}"
    body = [
        _header(report, title),
        _kv_section("scope", "Scope", _scope_rows(report)),
        _integrity(report),
        _coverage(report),
        *(_section(s) for s in report.sections),
        _notes(report),
        _reviewer(report),
        "<footer>Report "
        f"{_e(report.report_id)}. The detached signature (&lt;file&gt;.sig.json) covers these "
        "exact bytes: check a copy with <code>watchkeep audit report-verify FILE --public-key "
        "KEY</code>.</footer>",
    ]
    return (
        '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
        f'<meta http-equiv="Content-Security-Policy" content="{CSP}">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>{_e(title)} · watchkeep audit report</title><style>{_CSS}</style></head>"
        f"<body>{''.join(body)}</body></html>\n"
    )


def _header(report: Report, title: str) -> str:
    integrity = report.integrity
    result = str(integrity.get("result"))
    kind = result if result in ("valid", "invalid") else "other"
    records = report.coverage.get("records", 0)
    glance = [
        ("Integrity", f'<span class="badge {kind}">{_e(result)}</span>'),
        ("Records in range", _e(f"{records:,}")),
        ("Findings", _e(str(len(integrity.get("findings", []))))),
        ("Sections", _e(str(len(report.sections)))),
    ]
    return (
        f"<header><h1>{_e(title)}</h1>"
        f'<div class="sub">watchkeep audit report <b>{_e(report.template.name)}</b> · '
        f"{_e(report.start)} to {_e(report.end)} · generated {_e(report.generated_at)}</div>"
        f'<p>{_e(report.template.intent)}</p><div class="glance">'
        + "".join(f"<div><span class='sub'>{k}</span><b>{v}</b></div>" for k, v in glance)
        + "</div></header>"
    )


def _scope_rows(report: Report) -> list[tuple[str, Any]]:
    scope = dict(report.scope)
    by = scope.pop("generatedBy", {}) or {}
    rows = [(k, v) for k, v in scope.items()]
    rows += [(f"generatedBy.{k}", v) for k, v in by.items()]
    rows += [(f"parameter {k}", v) for k, v in report.params.items()]
    return rows


def _integrity(report: Report) -> str:
    data = report.integrity
    rows: list[tuple[str, Any]] = [("tool", data.get("tool")), ("result", data.get("result"))]
    if "reason" in data:
        rows.append(("reason", data["reason"]))
    for key in ("requested", "found", "digests", "summary"):
        for name, value in (data.get(key) or {}).items():
            rows.append((f"{key}.{name}", value))
    rows.append(("public key fingerprints", data.get("publicKeyFingerprints")))
    findings = data.get("findings") or []
    columns = ["code", "severity", "kind", "path", "seqStart", "seqEnd", "message"]
    table = _table(columns, [[f.get(c) for c in columns] for f in findings], "No findings.")
    return (
        '<section id="integrity"><h2>Integrity attestation</h2>'
        "<p>The result of <code>watchkeep audit verify</code> over the range, with the trail's "
        "own public key.</p>"
        f"{_kv(rows)}<h3>Findings</h3>{table}</section>"
    )


def _coverage(report: Report) -> str:
    coverage = report.coverage
    rows = [(k, v) for k, v in coverage.items() if k not in ("byCategory", "bySource", "gaps")]
    parts = ['<section id="coverage"><h2>Coverage</h2>', _kv(rows)]
    by_category = coverage.get("byCategory") or []
    by_source = coverage.get("bySource") or []
    gaps = coverage.get("gaps") or []
    parts.append(_records_table("Records per category", by_category))
    parts.append(
        bar_chart(
            [str(r["event_source"]) for r in by_source],
            [float(r["records"]) for r in by_source],
            "Records per event source",
        )
    )
    parts.append(_records_table("Gaps (downtime, stale digests, missing data)", gaps))
    parts.append("</section>")
    return "".join(parts)


def _records_table(title: str, rows: list[dict[str, Any]]) -> str:
    columns = list(rows[0]) if rows else []
    return f"<h3>{_e(title)}</h3>" + _table(columns, [list(r.values()) for r in rows], "None.")


def _section(section: SectionResult) -> str:
    chart = _chart(section.chart, section) if section.chart else ""
    truncated = (
        f'<p class="none">Only the first {len(section.rows)} rows are shown.</p>'
        if section.truncated
        else ""
    )
    description = f"<p>{_e(section.description)}</p>" if section.description else ""
    query = (
        f"<details><summary>Query</summary><pre>{_e(section.query)}</pre></details>"
        if section.query
        else ""
    )
    return (
        f'<section id="section-{_e(section.key)}" class="report-section">'
        f"<h2>{_e(section.title)} <span class='sub'>({_rows(len(section.rows))})</span></h2>"
        f"{description}{chart}"
        f"{_table(section.columns, section.rows, 'No matching records in the range.')}"
        f"{truncated}{query}</section>"
    )


def _rows(count: int) -> str:
    return "1 row" if count == 1 else f"{count:,} rows"


def _chart(chart: Chart, section: SectionResult) -> str:
    try:
        label_at, value_at = section.columns.index(chart.label), section.columns.index(chart.value)
    except ValueError:
        return ""
    points = [
        (_text(row[label_at]), float(row[value_at]))
        for row in section.rows
        if isinstance(row[value_at], int | float)
    ]
    if not points:
        return ""
    if chart.kind == "columns":
        return column_chart([p[0] for p in points], [p[1] for p in points], chart.title)
    totals: dict[str, float] = {}
    for label, value in points:  # rows finer than the chart's label add up (IP and key -> IP)
        totals[label] = totals.get(label, 0.0) + value
    return bar_chart(list(totals), list(totals.values()), chart.title)


def _notes(report: Report) -> str:
    items = "".join(f"<li>{_e(n)}</li>" for n in report.notes)
    return f'<section id="notes"><h2>Notes</h2><ul>{items}</ul></section>'


def _reviewer(report: Report) -> str:
    reviewer = report.reviewer
    rows = "".join(
        f"<tr><th>{_e(label)}</th><td>{_e(_text(reviewer.get(key)))}</td></tr>"
        for label, key in (
            ("Status", "status"),
            ("Reviewed by", "reviewedBy"),
            ("Reviewed at", "reviewedAt"),
            ("Notes", "notes"),
        )
    )
    return (
        '<section id="reviewer"><h2>Reviewer</h2>'
        f'<table class="kv reviewer">{rows}<tr><th>Signature</th><td></td></tr></table>'
        "</section>"
    )


def _kv_section(key: str, title: str, rows: list[tuple[str, Any]]) -> str:
    return f'<section id="{key}"><h2>{_e(title)}</h2>{_kv(rows)}</section>'


def _kv(rows: list[tuple[str, Any]]) -> str:
    body = "".join(f"<tr><th>{_e(k)}</th>{_td(v)}</tr>" for k, v in rows)
    return f'<table class="kv">{body}</table>'


def _table(columns: list[str], rows: list[list[Any]], empty: str) -> str:
    if not rows:
        return f'<p class="none">{_e(empty)}</p>'
    head = "".join(f"<th>{_e(c)}</th>" for c in columns)
    body = "".join("<tr>" + "".join(_td(v) for v in row) + "</tr>" for row in rows)
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def _td(value: Any) -> str:
    if value is None:
        return '<td class="none">—</td>'
    if isinstance(value, bool):
        return f"<td>{'yes' if value else 'no'}</td>"
    if isinstance(value, int | float):
        return f'<td class="num">{_e(str(value))}</td>'
    text = _text(value)
    if text.startswith(("{", "[")) or (isinstance(value, list) and len(text) > 40):
        pretty = _pretty(text)
        wide = " wide" if pretty != text else ""  # an indented document needs room to read
        return f'<td class="code{wide}"><code>{_e(pretty)}</code></td>'
    if _TIME.fullmatch(text):
        return f'<td class="time">{_e(text)}</td>'
    if any(len(word) > 24 for word in text.split()):  # ARNs, IDs: may break anywhere
        return f'<td class="long">{_e(text)}</td>'
    return f"<td>{_e(text)}</td>"


def _pretty(text: str) -> str:
    """A long JSON value indented, so a policy document reads as one; other text as it is."""
    if len(text) < 60 or not text.startswith(("{", "[")):
        return text
    try:
        return json.dumps(json.loads(text), indent=2, ensure_ascii=False)
    except ValueError:
        return text


def _text(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, list):
        return ", ".join(_text(v) for v in value)
    if isinstance(value, dict):
        return json.dumps(value, ensure_ascii=False, sort_keys=True)
    return str(value)


def _e(text: str) -> str:
    return escape(text, quote=True)


__all__ = ["CSP", "render_html"]
