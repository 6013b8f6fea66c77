"""One call from a report request to signed bytes: build, render, sign."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from audit.reports.build import ReportSource, ReportSpec, build_report
from audit.reports.model import Report
from audit.reports.render import MEDIA_TYPES, render
from audit.reports.sidecar import sign_report


@dataclass(frozen=True, slots=True)
class SignedReport:
    report: Report
    data: bytes
    sidecar: dict[str, Any]
    media_type: str
    filename: str


def generate_report(
    spec: ReportSpec,
    source: ReportSource,
    fmt: str,
    key: Ed25519PrivateKey,
    *,
    now: datetime,
) -> SignedReport:
    """Build the report, render it as ``fmt`` and sign the bytes with the audit key."""
    report = build_report(spec, source, now=now)
    data = render(report, fmt)
    return SignedReport(
        report=report,
        data=data,
        sidecar=sign_report(data, report, fmt, key),
        media_type=MEDIA_TYPES[fmt],
        filename=report_filename(report, fmt),
    )


def report_filename(report: Report, fmt: str) -> str:
    """``watchkeep-report-<template>-<generatedAt>.<fmt>``, safe in any file system."""
    stamp = report.generated_at.replace("-", "").replace(":", "")
    return f"watchkeep-report-{report.template.name}-{stamp}.{fmt}"


__all__ = ["SignedReport", "generate_report", "report_filename"]
