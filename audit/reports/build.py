"""Build an audit report (spec audit §6.2): scope, the integrity attestation (``verify`` over
the range with the trail's own public key), coverage, the template's sections, notes and the
reviewer block. Reads the trail through ``run_audit_query`` and ``verify``; renders nothing.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from audit.query import AuditQueryError, AuditQueryResult, run_audit_query
from audit.record import Account
from audit.reports.model import (
    IamSnapshot,
    PrepareContext,
    Prepared,
    Report,
    SectionResult,
    Template,
)
from audit.reports.sql import FRAGMENTS, bucket_fragments, fill, sql_time, sql_value
from audit.signing import fingerprint
from audit.trail import AuditTrail
from audit.verify import LiveHead, verify
from audit.verify_report import Valid, VerifyConfigError, VerifyReport
from core.errors import WatchkeepError

MAX_SECTION_ROWS = 5000
# verify findings that mean records may be missing from the range, or were not being written.
GAP_CODES = frozenset(
    {
        "DOWNTIME",
        "UNCLEAN_SHUTDOWN",
        "STALE_DIGEST_CHAIN",
        "TAIL_TRUNCATED",
        "SEGMENT_MISSING",
        "SEGMENT_PRUNED",
        "EVENT_MISSING",
    }
)
REVIEW_NOTE = (
    "The signed report cannot change after it is generated, so its reviewer block stays open: "
    "record the review with `watchkeep audit report-ack --report-id <reportId>` "
    "(AcknowledgeAuditReport). The acknowledgement is a record in the audit trail (report Q9 "
    "lists them) and is returned as <file>.ack.json."
)
TIME_ZONE = "UTC"  # every time in a report, as in the trail


class ReportError(WatchkeepError):
    """Raised when a template's SQL fails on the trail: a bug in the template, not the request."""

    code = "InternalFailure"


@dataclass(frozen=True, slots=True)
class ReportSpec:
    """What to report on: a template, its checked parameters, the range, who asked."""

    template: Template
    params: Mapping[str, Any]
    start: datetime
    end: datetime
    generated_by: Mapping[str, Any]


@dataclass(frozen=True, slots=True)
class ReportSource:
    """Where the report reads from: the trail, the keys that vouch for it, the IAM state."""

    trail: AuditTrail
    public_keys: Sequence[Ed25519PublicKey]
    account: Account
    version: str
    iam: IamSnapshot
    digest_interval_s: float = 300.0
    live_head: Callable[[], LiveHead] | None = None
    max_rows: int = MAX_SECTION_ROWS


def build_report(
    spec: ReportSpec, source: ReportSource, *, now: datetime, report_id: str | None = None
) -> Report:
    """The report of ``spec.template`` over ``[spec.start, spec.end]``."""
    template = spec.template

    def query(sql: str, start: datetime, end: datetime) -> AuditQueryResult:
        try:
            return run_audit_query(source.trail, sql, start, end, max_rows=source.max_rows)
        except AuditQueryError as exc:
            raise ReportError(f"report template {template.name}: {exc.message}") from None

    fragments = {
        **FRAGMENTS,
        **bucket_fragments(spec.start, spec.end),
        "start": sql_time(spec.start),
        "end": sql_time(spec.end),
        **{name: sql_value(value) for name, value in spec.params.items()},
    }
    prepared = Prepared()
    if template.prepare is not None:
        context = PrepareContext(query, spec.start, spec.end, now, spec.params, source.iam)
        prepared = template.prepare(context)
        fragments.update(prepared.fragments)
    sections = list(prepared.sections)
    notes = [*template.notes, *prepared.notes]
    for section in template.sections:
        scan_from = spec.start
        if section.baseline:
            scan_from -= timedelta(days=int(spec.params["baseline_days"]))
        sql = fill(section.sql, fragments)
        result = query(sql, scan_from, spec.end)
        sections.append(
            SectionResult(
                section.key,
                section.title,
                section.description,
                result.columns,
                result.rows,
                result.truncated,
                section.chart,
                query=_dedent(sql),
            )
        )
        if result.truncated:
            notes.append(f'"{section.title}" lists only the first {source.max_rows} rows.')
    verified = _verify(spec, source, now)
    notes.append(REVIEW_NOTE)
    return Report(
        report_id=report_id or str(uuid.uuid4()),
        generated_at=_iso(now),
        template=template,
        params=dict(spec.params),
        scope=_scope(spec, source, now),
        integrity=_attestation(verified, source),
        coverage=_coverage(query, spec, verified),
        sections=sections,
        notes=notes,
        reviewer={
            "status": "not reviewed",
            "reviewedBy": None,
            "reviewedAt": None,
            "notes": None,
            "acknowledgeWith": "watchkeep audit report-ack --report-id <reportId> --file FILE",
        },
    )


def _scope(spec: ReportSpec, source: ReportSource, now: datetime) -> dict[str, Any]:
    trail, account = source.trail, source.account
    return {
        "trailName": trail.config.name,
        "trailId": str(trail.trail_id),
        "trailArn": (
            f"arn:watchkeep:cloudtrail:{account.region}:{account.account_id}:"
            f"trail/{trail.config.name}"
        ),
        "accountId": account.account_id,
        "region": account.region,
        "start": _iso(spec.start),
        "end": _iso(spec.end),
        "timeZone": TIME_ZONE,
        "generator": f"watchkeep {source.version}",
        "generatedAt": _iso(now),
        "generatedBy": dict(spec.generated_by),
    }


def _verify(spec: ReportSpec, source: ReportSource, now: datetime) -> VerifyReport | str:
    try:
        return verify(
            source.trail.config.root,
            public_keys=source.public_keys,
            start=spec.start,
            end=min(spec.end, now),
            interval_s=source.digest_interval_s,
            expect_running=True,
            now=now,
            live_head=source.live_head,
        )
    except VerifyConfigError as exc:
        return str(exc)


def _attestation(verified: VerifyReport | str, source: ReportSource) -> dict[str, Any]:
    keys = [fingerprint(k) for k in source.public_keys]
    if isinstance(verified, str):
        return {
            "tool": "watchkeep audit verify",
            "result": "not-run",
            "reason": verified,
            "publicKeyFingerprints": keys,
            "findings": [],
        }
    digests = [e.subject for e in verified.entries if isinstance(e, Valid) and e.kind == "DIGEST"]
    result = "valid"
    if verified.summary["errors"]:
        result = "invalid"
    elif verified.digests_total == 0:
        result = "unverified: no digest covers the range"
    return {
        "tool": "watchkeep audit verify",
        "result": result,
        "trailId": verified.trail_id,
        "requested": verified.requested,
        "found": verified.found,
        "digests": {
            "first": digests[0] if digests else None,
            "last": digests[-1] if digests else None,
        },
        "summary": verified.summary,
        "publicKeyFingerprints": keys,
        "findings": [f.to_json() for f in verified.findings],
    }


_BY_CATEGORY = """
SELECT event_category AS category, event_type, count(*) AS records,
       count(*) FILTER (WHERE read_only) AS reads,
       count(*) FILTER (WHERE NOT read_only) AS writes,
       count(*) FILTER (WHERE error_code IS NOT NULL) AS errors
FROM events GROUP BY 1, 2 ORDER BY 1, 2
"""
_BY_SOURCE = """
SELECT event_source, count(*) AS records FROM events GROUP BY 1 ORDER BY records DESC, 1
"""
_SPAN = """
SELECT count(*) AS records, min(seq) AS first_seq, max(seq) AS last_seq,
       min(event_time) AS first_event_time, max(event_time) AS last_event_time
FROM events
"""


def _coverage(
    query: Callable[[str, datetime, datetime], AuditQueryResult],
    spec: ReportSpec,
    verified: VerifyReport | str,
) -> dict[str, Any]:
    span = query(_SPAN, spec.start, spec.end)
    records, first_seq, last_seq, first_time, last_time = span.rows[0]
    contiguous = None if not records else last_seq - first_seq + 1 == records
    findings = [] if isinstance(verified, str) else verified.findings
    return {
        "records": records,
        "firstSeq": first_seq,
        "lastSeq": last_seq,
        "firstEventTime": first_time,
        "lastEventTime": last_time,
        # A range cut from the chain holds every seq between its ends unless records are gone.
        "sequenceContiguous": contiguous,
        "byCategory": _records(query(_BY_CATEGORY, spec.start, spec.end)),
        "bySource": _records(query(_BY_SOURCE, spec.start, spec.end)),
        "gaps": [
            {"code": f.code, "severity": f.severity, "message": f.message}
            for f in findings
            if f.code in GAP_CODES
        ],
        "notYetSigned": [f.message for f in findings if f.code == "TAIL_UNSIGNED"],
    }


def _dedent(sql: str) -> str:
    return "\n".join(line.strip() for line in sql.strip().splitlines() if line.strip())


def _records(result: AuditQueryResult) -> list[dict[str, Any]]:
    return [dict(zip(result.columns, row, strict=True)) for row in result.rows]


def _iso(at: datetime) -> str:
    return at.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


__all__ = ["GAP_CODES", "ReportError", "ReportSource", "ReportSpec", "build_report"]
