"""HTTP routes of log metric filters (spec metrics-and-alarms.md §4): PutMetricFilter,
DescribeMetricFilters, DeleteMetricFilter, TestMetricFilter.

The log group travels in the query string (``?group=G``), as for ingest and FilterLogEvents:
group names may contain ``/`` and filter names too, so neither can sit in front of another path
segment. The gate derives the log group ARN from it before the body is read.
"""

from __future__ import annotations

import asyncio
import base64
import time
from typing import Annotated, Any

import orjson
from fastapi import APIRouter, Query, Request, Response
from pydantic import BaseModel, ConfigDict, Field

from core.errors import BadRequest
from core.operations import Operation, RequestTarget, log_group_arn, operation
from ingest.filter_pattern import (
    check_metric_transformation,
    dimension_values,
    match,
    metric_sample,
    metric_selectors,
    parse_filter_pattern,
)
from ingest.filter_pattern.metric import render_field
from ingest.metric_filters import build_filter, registry_for, require_group
from store.engine import Store
from store.metric_filters import MetricFilter

router = APIRouter(prefix="/api/v1/logs/metric-filters", tags=["logs"])

MAX_DESCRIBE_LIMIT = 50  # as CloudWatch's DescribeMetricFilters
MAX_TEST_MESSAGES = 50  # as CloudWatch's TestMetricFilter


def _group_from_query(target: RequestTarget) -> list[str]:
    return [log_group_arn(target, g) for g in target.query_lists.get("group", [])]


PUT_METRIC_FILTER = Operation(
    "PutMetricFilter", "logs:PutMetricFilter", False, True, _group_from_query
)
DESCRIBE_METRIC_FILTERS = Operation(
    "DescribeMetricFilters", "logs:DescribeMetricFilters", True, True, _group_from_query
)
DELETE_METRIC_FILTER = Operation(
    "DeleteMetricFilter", "logs:DeleteMetricFilter", False, True, _group_from_query
)
# CloudWatch's TestMetricFilter names no log group: IAM decides on ``*``.
TEST_METRIC_FILTER = Operation("TestMetricFilter", "logs:TestMetricFilter", True, True)


class MetricTransformation(BaseModel):
    model_config = ConfigDict(extra="forbid")
    metric_namespace: str
    metric_name: str
    metric_value: str = Field(description="a number, $.json.selector or $field of [ ] pattern")
    default_value: float | None = None
    dimensions: dict[str, str] = Field(default_factory=dict)
    unit: str | None = None


class PutMetricFilterBody(BaseModel):
    model_config = ConfigDict(extra="forbid")
    filter_pattern: str = ""
    metric_transformations: list[MetricTransformation] = Field(min_length=1, max_length=1)


class TestMetricFilterBody(BaseModel):
    model_config = ConfigDict(extra="forbid")
    filter_pattern: str
    log_event_messages: list[str] = Field(min_length=1, max_length=MAX_TEST_MESSAGES)
    # Not in CloudWatch: also show what a transformation would read (value, dimensions).
    metric_value: str | None = None
    dimensions: dict[str, str] = Field(default_factory=dict)


def _store(request: Request) -> Store:
    return request.app.state.store  # type: ignore[no-any-return]


@router.put("")
@operation(PUT_METRIC_FILTER)
async def put_metric_filter(
    request: Request,
    response: Response,
    group: Annotated[str, Query(description="the log group")],
    name: Annotated[str, Query(description="the filter name")],
    body: PutMetricFilterBody,
) -> dict[str, Any]:
    """PutMetricFilter: create or replace a filter of an existing log group."""
    store = _store(request)
    require_group(store.has_group, group)
    t = body.metric_transformations[0]
    spec = build_filter(
        log_group=group,
        filter_name=name,
        filter_pattern=body.filter_pattern,
        metric_namespace=t.metric_namespace,
        metric_name=t.metric_name,
        metric_value=t.metric_value,
        default_value=t.default_value,
        dimensions=t.dimensions,
        unit=t.unit,
        now_ms=int(time.time() * 1000),
    )

    def save() -> tuple[MetricFilter, bool]:
        return registry_for(request.app.state).put(spec)

    stored, created = await asyncio.to_thread(save)
    response.status_code = 201 if created else 200
    return stored.to_json()


@router.get("")
@operation(DESCRIBE_METRIC_FILTERS)
async def describe_metric_filters(
    request: Request,
    group: str | None = None,
    name_prefix: str = "",
    metric_name: str | None = None,
    metric_namespace: str | None = None,
    limit: Annotated[int, Query(ge=1, le=MAX_DESCRIBE_LIMIT)] = MAX_DESCRIBE_LIMIT,
    next_token: str | None = None,
) -> dict[str, Any]:
    """DescribeMetricFilters: by group (and name prefix), or by metric across groups."""
    if name_prefix and group is None:
        raise BadRequest("name_prefix needs group: a prefix is looked up within one log group")
    if (metric_name is None) != (metric_namespace is None):
        raise BadRequest("give metric_name and metric_namespace together, or neither")
    if group is not None:
        require_group(_store(request).has_group, group)
    after = _decode_token(next_token) if next_token else None

    def load() -> list[MetricFilter]:
        return registry_for(request.app.state).describe(
            log_group=group,
            name_prefix=name_prefix,
            metric_name=metric_name,
            metric_namespace=metric_namespace,
            after=after,
            limit=limit + 1,
        )

    found = await asyncio.to_thread(load)
    page, more = found[:limit], len(found) > limit
    token = _encode_token(page[-1].log_group, page[-1].filter_name) if more else None
    return {"metric_filters": [f.to_json() for f in page], "next_token": token}


@router.delete("", status_code=204)
@operation(DELETE_METRIC_FILTER)
async def delete_metric_filter(
    request: Request,
    group: Annotated[str, Query(description="the log group")],
    name: Annotated[str, Query(description="the filter name")],
) -> Response:
    """DeleteMetricFilter: its metrics keep the data already published."""
    require_group(_store(request).has_group, group)
    await asyncio.to_thread(lambda: registry_for(request.app.state).delete(group, name))
    return Response(status_code=204)


@router.post("/test")
@operation(TEST_METRIC_FILTER)
async def test_metric_filter(body: TestMetricFilterBody) -> dict[str, Any]:
    """TestMetricFilter: which sample messages match, and the values read from them."""
    pattern = parse_filter_pattern(body.filter_pattern)
    if body.metric_value is not None:
        check_metric_transformation(pattern, body.metric_value, body.dimensions)
    selectors = metric_selectors(body.metric_value or "0", body.dimensions)
    matches = []
    for number, message in enumerate(body.log_event_messages, start=1):
        result = match(pattern, message, selectors=selectors)
        if not result.matched:
            continue
        found: dict[str, Any] = {
            "event_number": number,
            "event_message": message,
            "extracted_values": {k: render_field(v) for k, v in result.fields.items()},
        }
        if body.metric_value is not None:
            found["metric_value"] = metric_sample(result, body.metric_value)
            found["dimensions"] = dimension_values(result, body.dimensions)
        matches.append(found)
    return {"matches": matches}


def _encode_token(group: str, name: str) -> str:
    return base64.urlsafe_b64encode(orjson.dumps([group, name])).decode()


def _decode_token(token: str) -> tuple[str, str]:
    try:
        group, name = orjson.loads(base64.urlsafe_b64decode(token.encode()))
    except (ValueError, TypeError):
        raise BadRequest(
            "next_token is not one this API returned", details={"next_token": token}
        ) from None
    if not isinstance(group, str) or not isinstance(name, str):
        raise BadRequest("next_token is not one this API returned", details={"next_token": token})
    return group, name
