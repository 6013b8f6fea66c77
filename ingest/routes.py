"""HTTP routes of the native logs API: ingest, FilterLogEvents, log groups, retention."""

from __future__ import annotations

import asyncio
import logging
import time
from concurrent.futures import Future
from dataclasses import replace
from functools import partial
from typing import Annotated, Any, Literal

import pyarrow as pa
from fastapi import APIRouter, Query, Request, Response
from pydantic import BaseModel, ConfigDict, Field

from core.errors import BadRequest, Conflict, IngestValidationError, WatchkeepError
from core.names import validate_group_name, validate_stream_name
from core.operations import Operation, RequestTarget, group_arn, log_group_arn, operation
from core.timeparse import MAX_EPOCH_MS, MIN_EPOCH_MS, parse_range_time
from core.units import format_size
from ingest.body import decompress, idempotency_key, read_limited
from ingest.decode import DecodedBatch, decode_events
from ingest.emf_batch import batch_metrics
from ingest.filter import (
    MAX_LIMIT,
    FilterRequest,
    bind_cursor,
    filter_request,
    filter_sql,
    page,
)
from ingest.groups import RETENTION_DAYS, parse_group_body, parse_retention_body
from ingest.metric_filters import registry_for
from ingest.retention import apply_log_retention, group_summaries
from store.engine import GroupInfo, Store

log = logging.getLogger(__name__)

router = APIRouter(prefix="/api/v1/logs", tags=["logs"])


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
PUT_RETENTION_POLICY = Operation(
    "PutRetentionPolicy", "logs:PutRetentionPolicy", False, True, _group_from_path
)
DELETE_RETENTION_POLICY = Operation(
    "DeleteRetentionPolicy", "logs:DeleteRetentionPolicy", False, True, _group_from_path
)


def _put_group_operation(target: RequestTarget, app_state: Any) -> Operation:
    """``PUT /groups/{name}`` with a body on an existing group changes its retention (the first
    API's way): a PutRetentionPolicy. Otherwise it ensures the group exists: CreateLogGroup."""
    name = str(target.path_params["name"])
    store: Store | None = getattr(app_state, "store", None)
    if target.has_body and store is not None and store.has_group(name):
        return PUT_RETENTION_POLICY
    return CREATE_LOG_GROUP


PUT_LOG_GROUP = replace(CREATE_LOG_GROUP, choose=_put_group_operation)
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
    retry_key = idempotency_key(request.headers)
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
            idempotency_key=retry_key,
            principal=request.state.principal.arn,
            request_body=body,
        )
        return future, _metric_rows(request, group, body, decoded)

    request.state.audit_summary = {"logEventBytes": len(body)}
    future, rows = await asyncio.to_thread(decode_and_submit)
    result: dict[str, Any] = await asyncio.wrap_future(future)
    request.state.audit_summary["logEventCount"] = result["accepted"]
    if rows is not None and not result.get("duplicate"):  # a replay yielded them the first time
        await _publish_metrics(request, group, rows)
    return result


def _may_hold_emf(body: bytes, decoded: DecodedBatch) -> bool:
    """False when no event of the batch can be an EMF document (a JSON object with a root
    ``_aws`` member). Where the decoder saw every event's keys that is a set lookup; else a
    message holds ``"_aws"`` only if the body spells ``_aws`` or escapes characters with
    ``\\u`` (a scan of the body: about 0.5 ms for 1,000 events)."""
    if decoded.root_keys is not None:
        return "_aws" in decoded.root_keys
    return b"_aws" in body or b"\\u" in body


def _metric_rows(
    request: Request, group: str, body: bytes, decoded: DecodedBatch
) -> pa.Table | None:
    """The metric rows of a batch (EMF documents, spec metrics §3, and the group's metric
    filters, §4), or None when it yields none. Runs before the events are durable: a failure
    here is logged and never fails the ingest."""
    filters = registry_for(request.app.state)
    if not filters.filters_for(group) and not _may_hold_emf(body, decoded):
        return None
    try:
        rows = batch_metrics(decoded.events, group, filters, now_ms=int(time.time() * 1000))
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
    settings = request.app.state.settings
    arn = group_arn(settings.region, settings.account_id, group)
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
    order: Annotated[
        Literal["asc", "desc", "ingest"],
        Query(description="by timestamp (asc, desc) or in ingestion order (ingest)"),
    ] = "asc",
    next_token: str | None = None,
    filter_pattern: Annotated[
        str, Query(description="filter pattern (text, { JSON } or [ space-delimited ])")
    ] = "",
) -> dict[str, Any]:
    """FilterLogEvents: raw events of groups and streams in a time range, paginated; with
    ``order=ingest``, in ingestion order with a ``follow_token`` to poll for newer events."""
    now_ms = int(time.time() * 1000)
    start_ms = parse_range_time(start, now_ms=now_ms) if start else 0
    end_ms = parse_range_time(end, now_ms=now_ms) if end else MAX_EPOCH_MS + 1
    if end_ms <= start_ms:
        raise BadRequest("end must be after start", details={"start": start, "end": end})
    query = filter_request(
        groups=tuple(group),
        streams=tuple(stream or ()),
        limit=limit,
        order=order,
        next_token=next_token,
        filter_pattern=filter_pattern,
        range_ms=(start_ms, end_ms) if start or end else None,
    )
    store = _store(request)
    if query.ingest_order:
        return await asyncio.to_thread(_ingest_order_page, store, group, query)
    sql, params = filter_sql(query)
    table = await asyncio.to_thread(
        partial(store.query_logs, newest_first=query.descending),
        group,
        start_ms,
        end_ms,
        sql,
        params,
    )
    return page(table.to_pylist(), query)


# Every valid event time: without a range, order=ingest reads the whole groups.
_ALL_TIME_MS = (MIN_EPOCH_MS, MAX_EPOCH_MS + 1)


def _ingest_order_page(store: Store, groups: list[str], query: FilterRequest) -> dict[str, Any]:
    """One page in ingestion order. The cursor is bound to the groups' incarnations first (a
    re-created group restarts its sequence). When some events may be left out, the high-water
    mark is read (from metadata) before the page, so that anything ingested after it is still
    after the follow token. The cursor also lets the store skip segments and memtable batches
    that hold nothing newer."""
    # A group deleted and re-created between this line and the reads below is read with the
    # old incarnation's number, but the token still names the old incarnation, so the next
    # poll reads the new one from 0: its events may repeat then, none is skipped.
    query = bind_cursor(query, {name: store.incarnation(name) for name in groups})
    high_water = store.high_water_seq(groups) if query.narrowed else {}
    sql, params = filter_sql(query)
    start_ms, end_ms = query.range_ms or _ALL_TIME_MS
    table = store.query_logs(
        groups, start_ms, end_ms, sql, params, newest_first=False, after_seq=dict(query.cursor)
    )
    return page(table.to_pylist(), query, high_water=high_water)


class GroupBody(BaseModel):
    """The optional body of ``PUT /groups/{name}`` (documentation only: the handler parses it,
    so that a missing key and ``null`` differ and errors say where the JSON is wrong)."""

    model_config = ConfigDict(extra="forbid")
    retention_days: int | None = Field(
        default=None, description="days to keep; null = for ever; absent = unchanged"
    )


class RetentionBody(BaseModel):
    """The body of PutRetentionPolicy (documentation only, as ``GroupBody``)."""

    model_config = ConfigDict(extra="forbid")
    retention_days: int = Field(description="days to keep: " + ", ".join(map(str, RETENTION_DAYS)))


def _documented_body(model: type[BaseModel], *, required: bool) -> dict[str, Any]:
    schema = model.model_json_schema()
    return {
        "requestBody": {"required": required, "content": {"application/json": {"schema": schema}}}
    }


_MAX_GROUP_BODY_BYTES = 64 * 1024


async def _small_body(request: Request) -> bytes:
    return await read_limited(
        request.headers,
        request.stream(),
        _MAX_GROUP_BODY_BYTES,
        f"the body is larger than {format_size(_MAX_GROUP_BODY_BYTES)}; "
        'send {"retention_days": n}',
    )


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


@router.put("/groups/{name:path}", openapi_extra=_documented_body(GroupBody, required=False))
@operation(PUT_LOG_GROUP)
async def put_group(request: Request, response: Response, name: str) -> dict[str, Any]:
    """CreateLogGroup: make sure a group exists (201 when created, with ``retention_days`` if
    given; 200 and unchanged when it exists). On an existing group a body naming
    ``retention_days`` still sets it, as a PutRetentionPolicy (``null`` removes the policy);
    ``PUT /retention-policies/{name}`` is the clearer way."""
    validate_group_name(name)
    wanted = parse_group_body(await _small_body(request))
    store = _store(request)
    if request.state.operation is PUT_RETENTION_POLICY:  # the gate saw the group and a body
        if not wanted.given:
            return _group_json(store.get_group(name))
        return _group_json(await asyncio.to_thread(store.put_retention, name, wanted.days))
    if not store.has_group(name):
        try:
            info = await asyncio.to_thread(store.create_group, name, retention_days=wanted.days)
        except Conflict:
            pass  # created by another request since: ensuring it exists is done
        else:
            response.status_code = 201
            return _group_json(info)
    info = store.get_group(name)
    if wanted.given and wanted.days != info.retention_days:
        # Authorized as CreateLogGroup, which must not change an existing group.
        raise Conflict(
            f"log group {name!r} was created by another request meanwhile; set its retention "
            f"with PUT /api/v1/logs/retention-policies/{name}",
            details={"group": name},
        )
    return _group_json(info)


@router.delete("/groups/{name:path}")
@operation(DELETE_LOG_GROUP)
async def delete_group(request: Request, name: str) -> dict[str, Any]:
    """DeleteLogGroup; its metric filters go with it, as in CloudWatch."""
    await asyncio.to_thread(_store(request).delete_group, name)
    await asyncio.to_thread(registry_for(request.app.state).delete_group, name)
    return {"deleted": name}


@router.put(
    "/retention-policies/{name:path}",
    openapi_extra=_documented_body(RetentionBody, required=True),
)
@operation(PUT_RETENTION_POLICY)
async def put_retention_policy(request: Request, name: str) -> dict[str, Any]:
    """PutRetentionPolicy: keep a group's events ``retention_days`` days."""
    validate_group_name(name)
    days = parse_retention_body(await _small_body(request), name)
    return _group_json(await asyncio.to_thread(_store(request).put_retention, name, days))


@router.delete("/retention-policies/{name:path}")
@operation(DELETE_RETENTION_POLICY)
async def delete_retention_policy(request: Request, name: str) -> dict[str, Any]:
    """DeleteRetentionPolicy: keep a group's events for ever."""
    return _group_json(await asyncio.to_thread(_store(request).put_retention, name, None))


# The audit record's ``additionalEventData.watchkeep`` is capped at 28 KiB as a whole.
_SUMMARY_GROUPS = 50


@router.post("/retention")
@operation(APPLY_RETENTION)
async def apply_retention(request: Request, dry_run: bool = False) -> dict[str, Any]:
    """Drop the partitions that retention policies expire now (or list them with dry_run)."""
    expired = await asyncio.to_thread(apply_log_retention, _store(request), dry_run=dry_run)
    if expired:
        # The response (the record's responseElements) names every partition, but is left out
        # of the record past 100 KiB; the per-group summary names them as exactly.
        groups = group_summaries(expired)
        summary: dict[str, Any] = {
            "partitions": len(expired),
            "logGroups": groups[:_SUMMARY_GROUPS],
        }
        if len(groups) > _SUMMARY_GROUPS:
            summary["moreLogGroups"] = len(groups) - _SUMMARY_GROUPS
        request.state.audit_summary = summary
    return {
        "dry_run": dry_run,
        "expired": [{"log_group": p.log_group, "hour_ms": p.hour_ms} for p in expired],
    }
