"""Audit reports (spec audit §5, §6.2): the templates Q1–Q12 as SQL over the trail, a builder
that adds scope, integrity attestation, coverage and a reviewer block, renderers for JSON, CSV
and self-contained HTML, and the detached Ed25519 signature of the bytes (``.sig.json``).
"""

from audit.reports.build import ReportError, ReportSource, ReportSpec, build_report
from audit.reports.catalog import TEMPLATES
from audit.reports.generate import SignedReport, generate_report, report_filename
from audit.reports.model import FORMATS, IamSnapshot, Report, Template
from audit.reports.params import parse_params, pick_format, pick_template, resolve_range
from audit.reports.render import MEDIA_TYPES, render
from audit.reports.sidecar import (
    SIDECAR_SUFFIX,
    check_report,
    render_sidecar,
    sha256_hex,
    sign_report,
)

__all__ = [
    "FORMATS",
    "MEDIA_TYPES",
    "SIDECAR_SUFFIX",
    "TEMPLATES",
    "IamSnapshot",
    "Report",
    "ReportError",
    "ReportSource",
    "ReportSpec",
    "SignedReport",
    "Template",
    "build_report",
    "check_report",
    "generate_report",
    "parse_params",
    "pick_format",
    "pick_template",
    "render",
    "render_sidecar",
    "report_filename",
    "resolve_range",
    "sha256_hex",
    "sign_report",
]
