"""HTTP routes of the native logs API: ingest, FilterLogEvents, log groups, retention."""

from __future__ import annotations

import asyncio
import logging
import time
from concurrent.futures import Future
from functools import partial
from typing import Annotated, Any

import pyarrow as pa
from fastapi import APIRouter, Query, Request, Response
from pydantic import BaseModel, ConfigDict, Field

from core.errors import BadRequest, IngestValidationError, WatchkeepError
from core.names import validate_group_name, validate_stream_name
from core.operations import Operation, RequestTarget, log_group_arn, operation
from core.timeparse import parse_range_time
from core.units import format_size
from ingest.body import decompress, read_limited
from ingest.decode import DecodedBatch, decode_events
from ingest.emf_batch import batch_metrics
from ingest.filter import MAX_LIMIT, filter_request, filter_sql, page
from ingest.metric_filters import registry_for
from store.engine import GroupInfo, Store

log = logging.getLogger(__name__)

router = APIRouter(prefix="/api/v1/logs", tags=["logs"])

# CloudWatch's accepted retention periods, in days.
RETENTION_DAYS = tuple(
    int(days)
    for days in (
        "1 3 5 7 14 30 60 90 120 150 180 365 400 545 731 1096 1827 2192 2557 2922 3288 3653"
    ).split()
)


def _groups_from_query(target: RequestTarget) -> list[str]:
    return [log_group_arn(target, g) for g in target.query_lists.get("group", [])]


def _group_from_path(target: RequestTarget) -> list[str]:
    return [log_group_arn(target, str(target.path_params["name"]))]


PUT_LOG_EVENTS = Operation(
    "PutLogEvents", "logs:PutLogEvents", False, False, _groups_from_query, payload_is_data=True
)
FILTER_LOG_EVENTS = Operation(
    "FilterLogEvents", "logs:FilterLogEvents", True, False, _groups_from_query
)
DESCRIBE_LOG_GROUPS = Operation("DescribeLogGroups", "logs:DescribeLogGroups", True, True)
GET_LOG_GROUP = Operation(
    "DescribeLogGroups", "logs:DescribeLogGroups", True, True, _group_from_path
)
CREATE_LOG_GROUP = Operation("CreateLogGroup", "logs:CreateLogGroup", False, True, _group_from_path)
DELETE_LOG_GROUP = Operation("DeleteLogGroup", "logs:DeleteLogGroup", False, True, _group_from_path)
APPLY_RETENTION = Operation("ApplyRetention", "logs:PutRetentionPolicy", False, True)


def _store(request: Request) -> Store:
    return request.app.state.store  # type: ignore[no-any-return]


def _too_large(max_bytes: int) -> str:
    return f"request body is larger than {format_size(max_bytes)}; send smaller batches"


@router.post("/events")
@operation(PUT_LOG_EVENTS)
async def put_log_events(
    request: Request,
    group: Annotated[str, Query(description="log group; created on first use")],
    stream: Annotated[str, Query(description="log stream; created on first use")] = "default",
) -> dict[str, Any]:
    """Ingest NDJSON, a JSON array or text lines (optionally gzip'd) into a log group."""
    settings = request.app.state.settings
    validate_group_name(group)
    validate_stream_name(stream)
    store = _store(request)
    _authorize_creation(request, store, group, stream)
    raw = await read_limited(
        request.headers,
        request.stream(),
        settings.max_body_bytes,
        _too_large(settings.max_body_bytes),
    )
    body = decompress(
        raw, request.headers.get("content-encoding"), max_bytes=settings.max_body_bytes
    )

    def decode_and_submit() -> tuple[Future[dict[str, Any]], pa.Table | None]:
        # One thread hop for all the CPU work of a batch. The metric rows are computed while
        # the commit thread writes and fsyncs the WAL, and stored only once it has.
        decoded = decode_events(
            body,
            request.headers.get("content-type"),
            now_ms=int(time.time() * 1000),
            max_event_bytes=settings.max_event_bytes,
            max_events=settings.max_batch_events,
        )
        response = _ingest_response(decoded)
        future = store.submit_logs(
            group,
            stream,
            decoded.events,
            decoded.fields,
            response,
            idempotency_key=request.headers.get("idempotency-key"),
        )
        return future, _metric_rows(request, group, body, decoded.events)

    request.state.audit_summary = {"logEventBytes": len(body)}
    future, rows = await asyncio.to_thread(decode_and_submit)
    result: dict[str, Any] = await asyncio.wrap_future(future)
    request.state.audit_summary["logEventCount"] = result["accepted"]
    if rows is not None and not result.get("duplicate"):  # a replay yielded them the first time
        await _publish_metrics(request, group, rows)
    return result


def _may_hold_emf(body: bytes) -> bool:
    """False when no event of ``body`` can be an EMF document: a message holds ``"_aws"``
    only if the body spells ``_aws`` literally or escapes characters with ``\\u``."""
    return b"_aws" in body or b"\\u" in body


def _metric_rows(request: Request, group: str, body: bytes, events: pa.Table) -> pa.Table | None:
    """The metric rows of a batch (EMF documents, spec metrics §3, and the group's metric
    filters, §4), or None when it yields none. Runs before the events are durable: a failure
    here is logged and never fails the ingest."""
    filters = registry_for(request.app.state)
    if not filters.filters_for(group) and not _may_hold_emf(body):
        return None
    try:
        rows = batch_metrics(events, group, filters, now_ms=int(time.time() * 1000))
    except Exception:
        log.exception("metrics of a batch for %s could not be extracted", group)
        return None
    return rows if rows.num_rows else None


async def _publish_metrics(request: Request, group: str, rows: pa.Table) -> None:
    """Store a batch's metric rows after the events themselves, in one append: a failure here
    never takes back the acknowledged events."""
    try:
        await asyncio.wrap_future(request.app.state.metrics.put(rows))
    except WatchkeepError as exc:
        log.warning("metrics of a batch for %s were not stored: %s", group, exc.message)


def _authorize_creation(request: Request, store: Store, group: str, stream: str) -> None:
    """Creating a group or stream on first use needs its own permission (DESIGN, Contracts)."""
    authorize = request.state.authorize
    arn = (
        f"arn:watchkeep:logs:{request.app.state.settings.region}:"
        f"{request.app.state.settings.account_id}:log-group:{group}"
    )
    if not store.has_group(group):
        authorize("logs:CreateLogGroup", [arn])
    if not store.has_stream(group, stream):
        authorize("logs:CreateLogStream", [f"{arn}:log-stream:{stream}"])


def _ingest_response(decoded: DecodedBatch) -> dict[str, Any]:
    rejected = [{"index": r.index, "reason": r.reason} for r in decoded.rejected]
    if decoded.received == 0:
        raise BadRequest("the body holds no events: send NDJSON, a JSON array or text lines")
    if decoded.events.num_rows == 0:
        raise IngestValidationError(
            f"all {decoded.received} events were rejected; the first: {rejected[0]['reason']}",
            details={"rejected": rejected[:1000]},
        )
    return {"accepted": decoded.events.num_rows, "rejected": rejected}


@router.get("/events")
@operation(FILTER_LOG_EVENTS)
async def filter_log_events(
    request: Request,
    group: Annotated[list[str], Query(description="log group; repeat for several")],
    stream: Annotated[list[str] | None, Query()] = None,
    start: str | None = None,
    end: str | None = None,
    limit: Annotated[int, Query(ge=1, le=MAX_LIMIT)] = 1000,
    order: Annotated[str, Query(pattern="^(asc|desc)$")] = "asc",
    next_token: str | None = None,
    filter_pattern: Annotated[
        str, Query(description="filter pattern (text, { JSON } or [ space-delimited ])")
    ] = "",
) -> dict[str, Any]:
    """FilterLogEvents: raw events of groups and streams in a time range, paginated."""
    now_ms = int(time.time() * 1000)
    start_ms = parse_range_time(start, now_ms=now_ms) if start else 0
    end_ms = parse_range_time(end, now_ms=now_ms) if end else now_ms + 86_400_000 * 365 * 100
    if end_ms <= start_ms:
        raise BadRequest("end must be after start", details={"start": start, "end": end})
    descending = order == "desc"
    query = filter_request(
        streams=tuple(stream or ()),
        limit=limit,
        descending=descending,
        next_token=next_token,
        filter_pattern=filter_pattern,
    )
    sql, params = filter_sql(query)
    store = _store(request)
    table = await asyncio.to_thread(
        partial(store.query_logs, newest_first=descending), group, start_ms, end_ms, sql, params
    )
    return page(table.to_pylist(), query)


class GroupBody(BaseModel):
    model_config = ConfigDict(extra="forbid")
    retention_days: int | None = Field(default=None, description="days to keep; null = forever")


def _group_json(info: GroupInfo) -> dict[str, Any]:
    return {
        "name": info.name,
        "creation_time": info.created_ms,
        "retention_days": info.retention_days,
        "stored_bytes": info.stored_bytes,
        "segment_count": info.segment_count,
    }


@router.get("/groups")
@operation(DESCRIBE_LOG_GROUPS)
async def list_groups(request: Request, prefix: str = "") -> dict[str, Any]:
    return {"log_groups": [_group_json(g) for g in _store(request).list_groups(prefix)]}


@router.get("/groups/{name:path}")
@operation(GET_LOG_GROUP)
async def get_group(request: Request, name: str) -> dict[str, Any]:
    return _group_json(_store(request).get_group(name))


@router.put("/groups/{name:path}")
@operation(CREATE_LOG_GROUP)
async def put_group(
    request: Request, response: Response, name: str, body: GroupBody | None = None
) -> dict[str, Any]:
    """Create a log group, or change the retention of an existing one."""
    validate_group_name(name)
    days = body.retention_days if body else None
    if days is not None and days not in RETENTION_DAYS:
        raise BadRequest(
            f"retention_days {days} is not one of {', '.join(map(str, RETENTION_DAYS))}",
            details={"retention_days": days},
        )
    store = _store(request)
    if store.has_group(name):
        info = await asyncio.to_thread(store.put_retention, name, days)
    else:
        info = await asyncio.to_thread(store.create_group, name, retention_days=days)
        response.status_code = 201
    return _group_json(info)


@router.delete("/groups/{name:path}")
@operation(DELETE_LOG_GROUP)
async def delete_group(request: Request, name: str) -> dict[str, Any]:
    """DeleteLogGroup; its metric filters go with it, as in CloudWatch."""
    await asyncio.to_thread(_store(request).delete_group, name)
    await asyncio.to_thread(registry_for(request.app.state).delete_group, name)
    return {"deleted": name}


@router.post("/retention")
@operation(APPLY_RETENTION)
async def apply_retention(request: Request, dry_run: bool = False) -> dict[str, Any]:
    """Drop the partitions that retention policies expire now (or list them with dry_run)."""
    expired = await asyncio.to_thread(_store(request).apply_retention, dry_run=dry_run)
    return {
        "dry_run": dry_run,
        "expired": [{"log_group": g, "hour_ms": h} for g, h in expired],
    }
