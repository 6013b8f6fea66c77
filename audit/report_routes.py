"""HTTP routes of audit reports (spec audit §5, §6.2): GenerateReport answers the report's bytes
(JSON, CSV or HTML) with their detached signature in headers; the template list says what
each template takes; AcknowledgeAuditReport records that someone reviewed a report (PCI DSS
10.4.1: review evidenced). Each call is itself recorded, like any call: the acknowledgement's
evidence *is* its audit record.
"""

from __future__ import annotations

import asyncio
import base64
import json
from datetime import UTC, datetime
from typing import Any

from fastapi import APIRouter, FastAPI, Request, Response
from pydantic import BaseModel, ConfigDict, Field

from audit.record import Account
from audit.reports import (
    FORMATS,
    TEMPLATES,
    IamSnapshot,
    ReportSource,
    ReportSpec,
    SignedReport,
    generate_report,
    parse_params,
    pick_format,
    pick_template,
    resolve_range,
)
from audit.reports.render_html import CSP
from audit.reports.sidecar import (
    REPORT_ID_HEADER,
    SHA256_HEADER,
    SIDECAR_HEADER,
    SIGNATURE_HEADER,
)
from audit.signing import load_private_key
from audit.trail import TRAIL_NAME
from audit.verify import LiveHead
from core.operations import Operation, RequestTarget, operation

router = APIRouter(prefix="/api/v1/audit", tags=["audit"])


def _trail_arn(target: RequestTarget) -> list[str]:
    return [f"arn:watchkeep:cloudtrail:{target.region}:{target.account_id}:trail/{TRAIL_NAME}"]


GENERATE_REPORT = Operation("GenerateReport", "cloudtrail:GenerateReport", True, True, _trail_arn)
LIST_REPORT_TEMPLATES = Operation(
    "ListReportTemplates", "cloudtrail:ListReportTemplates", True, True, _trail_arn
)
ACKNOWLEDGE_AUDIT_REPORT = Operation(
    "AcknowledgeAuditReport", "cloudtrail:AcknowledgeAuditReport", False, True, _trail_arn
)


class Acknowledgement(BaseModel):
    """Who reviewed which report; ``report_sha256`` pins the exact bytes they read."""

    model_config = ConfigDict(extra="forbid")
    # A report's id is a UUID (36 dashes matched the old pattern).
    report_id: str = Field(
        pattern=r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$"
    )
    report_sha256: str | None = Field(default=None, pattern=r"^[0-9a-f]{64}$")
    template: str | None = Field(default=None, max_length=64)
    notes: str | None = Field(default=None, max_length=4000)


@router.get("/report/templates")
@operation(LIST_REPORT_TEMPLATES)
async def list_report_templates() -> dict[str, Any]:
    """The report templates Q1-Q12 with their parameters, and the formats."""
    return {"templates": [t.describe() for t in TEMPLATES.values()], "formats": list(FORMATS)}


@router.get("/report")
@operation(GENERATE_REPORT)
async def generate_audit_report(
    request: Request,
    template: str | None = None,
    start: str | None = None,
    end: str | None = None,
    format: str | None = None,  # the query parameter's public name
) -> Response:
    """GenerateReport: one template over [start, end] (default: the last 24 h), signed."""
    chosen = pick_template(template, TEMPLATES)
    fmt = pick_format(format)
    now = datetime.now(UTC)
    start_at, end_at = resolve_range(start, end, now=now)
    params = parse_params(chosen, dict(request.query_params))
    spec = ReportSpec(chosen, params, start_at, end_at, _generated_by(request))
    signed = await asyncio.to_thread(_generate, request.app, spec, fmt, now)
    return Response(signed.data, media_type=signed.media_type, headers=_headers(signed, fmt))


@router.post("/report/ack")
@operation(ACKNOWLEDGE_AUDIT_REPORT)
async def acknowledge_audit_report(request: Request, body: Acknowledgement) -> dict[str, Any]:
    """AcknowledgeAuditReport: record that the caller reviewed a report (the reviewer block)."""
    return {
        "reportId": body.report_id,
        "reportSha256": body.report_sha256,
        "template": body.template,
        "status": "reviewed",
        "reviewedBy": _generated_by(request),
        "reviewedAt": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "notes": body.notes,
    }


def _generate(app: FastAPI, spec: ReportSpec, fmt: str, now: datetime) -> SignedReport:
    settings, services = app.state.settings, app.state.services
    # The digests' own key: the attestation checks the trail with it, and it signs the report.
    key = load_private_key(settings.signing_key_file)

    def live_head() -> LiveHead:
        latest = services.digester.latest
        return LiveHead(services.trail.head()[0], latest.seq if latest else None, "server")

    source = ReportSource(
        trail=services.trail,
        public_keys=[key.public_key()],
        account=Account(region=settings.region, account_id=settings.account_id),
        version=app.version,
        iam=_iam_snapshot(app, settings.account_id),
        digest_interval_s=services.digester.interval_s,
        live_head=live_head,
    )
    return generate_report(spec, source, fmt, key, now=now)


def _iam_snapshot(app: FastAPI, account_id: str) -> IamSnapshot:
    directory = app.state.directory
    return IamSnapshot(
        account_id=account_id,
        policies=tuple(directory.list_policies()),
        group_members={g["group_name"]: tuple(g["members"]) for g in directory.list_groups()},
        access_keys=tuple(directory.list_access_keys()),
    )


def _generated_by(request: Request) -> dict[str, Any]:
    principal = request.state.principal
    return {
        "type": principal.kind,
        "arn": principal.arn,
        "userName": "root" if principal.is_root else principal.user_name,
        "accessKeyId": principal.access_key_id,
    }


def _headers(signed: SignedReport, fmt: str) -> dict[str, str]:
    sidecar = json.dumps(signed.sidecar, separators=(",", ":")).encode("utf-8")
    disposition = "inline" if fmt == "html" else "attachment"
    headers = {
        SHA256_HEADER: signed.sidecar["sha256"],
        SIGNATURE_HEADER: signed.sidecar["signature"],
        REPORT_ID_HEADER: signed.report.report_id,
        SIDECAR_HEADER: base64.urlsafe_b64encode(sidecar).decode("ascii"),
        "Content-Disposition": f'{disposition}; filename="{signed.filename}"',
        "X-Content-Type-Options": "nosniff",
        "Cache-Control": "no-store",
    }
    if fmt == "html":
        headers["Content-Security-Policy"] = CSP
    return headers


__all__ = ["ACKNOWLEDGE_AUDIT_REPORT", "GENERATE_REPORT", "LIST_REPORT_TEMPLATES", "router"]
