"""HTTP routes of the audit API: LookupEvents and the trail's status."""

from __future__ import annotations

import asyncio
import time
import uuid
from datetime import UTC, datetime, timedelta
from typing import Annotated, Any

from fastapi import APIRouter, Query, Request
from pydantic import BaseModel, ConfigDict, Field

from audit.hashing import AuditHasher
from audit.lookup import EventLookup, LookupRequest, RateLimiter
from audit.query import MAX_ROWS, run_audit_query
from audit.trail import TRAIL_NAME, AuditTrail
from core.errors import BadRequest
from core.operations import Operation, RequestTarget, operation
from core.timeparse import RangeTimeInput, parse_range_time

router = APIRouter(prefix="/api/v1/audit", tags=["audit"])


def _trail_arn(target: RequestTarget) -> list[str]:
    return [f"arn:watchkeep:cloudtrail:{target.region}:{target.account_id}:trail/{TRAIL_NAME}"]


LOOKUP_EVENTS = Operation("LookupEvents", "cloudtrail:LookupEvents", True, True, _trail_arn)
GET_TRAIL_STATUS = Operation("GetTrailStatus", "cloudtrail:GetTrailStatus", True, True, _trail_arn)
HASH_AUDIT_VALUE = Operation(
    "HashAuditValue",
    "cloudtrail:HashAuditValue",
    True,
    True,
    _trail_arn,
    request_sensitive={"value": "drop"},  # the plaintext is never recorded
)
START_QUERY = Operation("StartQuery", "cloudtrail:StartQuery", True, True, _trail_arn)


@router.get("/events")
@operation(LOOKUP_EVENTS)
async def lookup_events(
    request: Request,
    lookup_key: str | None = None,
    lookup_value: str | None = None,
    start: str | None = None,
    end: str | None = None,
    max_results: Annotated[int, Query()] = 50,
    next_token: str | None = None,
    event_category: str | None = None,
) -> dict[str, Any]:
    """LookupEvents: audit records by one attribute over a time range, newest first."""
    rate: RateLimiter = request.app.state.audit_rate
    principal = request.state.principal
    rate.check(principal.arn or principal.access_key_id)
    now_ms = int(time.time() * 1000)
    lookup = LookupRequest(
        key=lookup_key,
        value=lookup_value,
        start_s=_seconds(start, "start", now_ms),
        end_s=_seconds(end, "end", now_ms),
        max_results=max_results,
        next_token=next_token,
        event_category=event_category,
        start_text=start,
        end_text=end,
    )
    events: EventLookup = request.app.state.audit_lookup
    page = await asyncio.to_thread(events.lookup, lookup, now_s=now_ms // 1000)
    return {"events": page.events, "next_token": page.next_token}


@router.get("/status")
@operation(GET_TRAIL_STATUS)
async def trail_status(request: Request) -> dict[str, Any]:
    """GetTrailStatus: the chain head, sealed segments, unsealed records, degraded mode."""
    services = request.app.state.services
    trail: AuditTrail = services.trail
    segments, unsealed = trail.snapshot()
    seq, head = trail.head()
    # Set by the server's lifespan when the scheduled self-check runs (audit/self_verify.py).
    verifier = getattr(request.app.state, "audit_self_verify", None)
    return {
        "name": TRAIL_NAME,
        "trail_id": str(trail.trail_id),
        "is_logging": True,
        "chain_head_seq": seq,
        "chain_head_hash": head.hex(),
        "sealed_segment_count": len(segments),
        "unsealed_record_count": len(unsealed),
        "audit_degraded": trail.degraded,
        **services.digester.status(),
        "self_verify": verifier.last if verifier is not None else None,
        "integrity_failures_total": verifier.integrity_failures_total if verifier else 0,
    }


def _seconds(value: str | None, name: str, now_ms: int) -> int | None:
    if value is None:
        return None
    try:
        return parse_range_time(value, now_ms=now_ms) // 1000
    except BadRequest as exc:
        raise _time_error(f"{name}: {exc.message}") from None


def _time_error(message: str) -> BadRequest:
    error = BadRequest(message)
    error.code = "InvalidTimeRangeException"
    return error


class HashRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    value: str = Field(min_length=1, max_length=65_536)


@router.post("/hash")
@operation(HASH_AUDIT_VALUE)
async def hash_audit_value(request: Request, body: HashRequest) -> dict[str, Any]:
    """HashAuditValue: the ``hmac-sha256:v<k>:<hex>`` form a hidden value would take (R6)."""
    hasher: AuditHasher = request.app.state.audit_hasher
    return {"hash": hasher.hash(body.value)}


class AuditQuery(BaseModel):
    model_config = ConfigDict(extra="forbid")
    sql: str
    start: RangeTimeInput | None = None
    end: RangeTimeInput | None = None
    max_rows: int = Field(default=1000, ge=1, le=MAX_ROWS)


@router.post("/queries")
@operation(START_QUERY)
async def start_audit_query(request: Request, body: AuditQuery) -> dict[str, Any]:
    """Run SQL over the read-only ``events`` view of the records in range (default: 90 days)."""
    now_ms = int(time.time() * 1000)
    start_s = _seconds(str(body.start), "start", now_ms) if body.start is not None else None
    end_s = _seconds(str(body.end), "end", now_ms) if body.end is not None else None
    end = datetime.fromtimestamp(end_s if end_s is not None else now_ms // 1000, UTC)
    start = (
        datetime.fromtimestamp(start_s, UTC) if start_s is not None else end - timedelta(days=90)
    )
    if start > end:
        raise _time_error("start is after end: the time range is empty")
    trail: AuditTrail = request.app.state.services.trail
    result = await asyncio.to_thread(
        run_audit_query, trail, body.sql, start, end, max_rows=body.max_rows
    )
    return {
        "query_id": str(uuid.uuid4()),
        "status": "Complete",
        "columns": result.columns,
        "rows": result.rows,
        "truncated": result.truncated,
        "statistics": {"records_scanned": result.records_scanned, "rows": len(result.rows)},
    }
