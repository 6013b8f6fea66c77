"""The shapes of an audit report (spec audit §5, §6.2): templates, sections, charts, results.

A ``Template`` is data: SQL over the ``events`` view for each ``Section``, the parameters it
takes, notes on what it cannot see, and optionally a ``prepare`` step that works something out
first (the admin set of Q12). A ``Report`` is what the builder made of one: scope, integrity
attestation, coverage, the sections' rows, notes and the reviewer block. No I/O here.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal

from audit.query import AuditQueryResult

REPORT_FORMAT = "wk-audit-report-1"
FORMATS = ("json", "csv", "html")


@dataclass(frozen=True, slots=True)
class Param:
    """A template parameter, named as in the query string (``resource``, ``baseline_days``)."""

    name: str
    help: str
    kind: Literal["text", "int"] = "text"
    default: int | str | None = None
    required: bool = False
    minimum: int = 0
    maximum: int = 0
    pattern: str | None = None  # a full-match regex for text values
    max_chars: int = 512

    @property
    def option(self) -> str:
        return "--" + self.name.replace("_", "-")


@dataclass(frozen=True, slots=True)
class Chart:
    """A chart of one section's rows: ``bar`` draws a horizontal bar per label (top 15),
    ``columns`` a vertical bar per time bucket, in row order."""

    kind: Literal["bar", "columns"]
    label: str  # the column holding the labels
    value: str  # the column holding the numbers
    title: str

    def to_json(self) -> dict[str, str]:
        return {"kind": self.kind, "label": self.label, "value": self.value, "title": self.title}


@dataclass(frozen=True, slots=True)
class Section:
    """One table of a template: SQL whose ``{name}`` placeholders the builder fills in with SQL
    fragments and quoted literals (``sql.py``); never with raw values."""

    key: str
    title: str
    sql: str
    description: str = ""
    chart: Chart | None = None
    # Scan the baseline before the range too (Q11); the SQL tells window from baseline by {start}.
    baseline: bool = False


@dataclass(slots=True)
class SectionResult:
    key: str
    title: str
    description: str
    columns: list[str]
    rows: list[list[Any]]
    truncated: bool = False
    chart: Chart | None = None
    query: str = ""  # the SQL as run, placeholders filled in (over the ``events`` view)

    def records(self) -> list[dict[str, Any]]:
        return [dict(zip(self.columns, row, strict=True)) for row in self.rows]

    def to_json(self) -> dict[str, Any]:
        return {
            "key": self.key,
            "title": self.title,
            "description": self.description,
            "columns": self.columns,
            "rowCount": len(self.rows),
            "truncated": self.truncated,
            "chart": self.chart.to_json() if self.chart else None,
            "query": self.query or None,
            "rows": self.records(),
        }


@dataclass(frozen=True, slots=True)
class IamSnapshot:
    """The current IAM state a template may compare the trail with (admins, old keys)."""

    account_id: str
    # {policy_name, document, attached_to: [{kind, name}]} as the IAM API lists them
    policies: tuple[Mapping[str, Any], ...] = ()
    group_members: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    # {access_key_id, user_name, status, created_ms, last_used} as ListAccessKeys answers
    access_keys: tuple[Mapping[str, Any], ...] = ()


QueryRunner = Callable[[str, datetime, datetime], AuditQueryResult]


@dataclass(frozen=True, slots=True)
class PrepareContext:
    """What a template's ``prepare`` step may use: the trail (through SQL) and the IAM state."""

    query: QueryRunner
    start: datetime
    end: datetime
    now: datetime
    params: Mapping[str, Any]
    iam: IamSnapshot


@dataclass(slots=True)
class Prepared:
    fragments: dict[str, str] = field(default_factory=dict)  # extra placeholders, already SQL
    sections: list[SectionResult] = field(default_factory=list)  # computed, shown first
    notes: list[str] = field(default_factory=list)


@dataclass(frozen=True, slots=True)
class Template:
    name: str
    number: str  # Q1 … Q12 (spec audit §5)
    title: str
    intent: str
    sections: tuple[Section, ...]
    params: tuple[Param, ...] = ()
    notes: tuple[str, ...] = ()
    prepare: Callable[[PrepareContext], Prepared] | None = None

    def describe(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "number": self.number,
            "title": self.title,
            "intent": self.intent,
            "parameters": [
                {
                    "name": p.name,
                    "option": p.option,
                    "type": "integer" if p.kind == "int" else "string",
                    "required": p.required,
                    "default": p.default,
                    "help": p.help,
                }
                for p in self.params
            ],
            "sections": [s.key for s in self.sections],
            "notes": list(self.notes),
        }


@dataclass(slots=True)
class Report:
    report_id: str
    generated_at: str
    template: Template
    params: dict[str, Any]
    scope: dict[str, Any]
    integrity: dict[str, Any]
    coverage: dict[str, Any]
    sections: list[SectionResult]
    notes: list[str]
    reviewer: dict[str, Any]

    @property
    def start(self) -> str:
        return str(self.scope["start"])

    @property
    def end(self) -> str:
        return str(self.scope["end"])

    def section(self, key: str) -> SectionResult:
        for section in self.sections:
            if section.key == key:
                return section
        raise KeyError(key)

    def to_json(self) -> dict[str, Any]:
        return {
            "format": REPORT_FORMAT,
            "reportId": self.report_id,
            "title": f"{self.template.number} {self.template.title}",
            "template": {
                "name": self.template.name,
                "number": self.template.number,
                "title": self.template.title,
                "intent": self.template.intent,
                "parameters": self.params,
            },
            "scope": self.scope,
            "integrity": self.integrity,
            "coverage": self.coverage,
            "sections": [s.to_json() for s in self.sections],
            "notes": self.notes,
            "reviewer": self.reviewer,
        }
