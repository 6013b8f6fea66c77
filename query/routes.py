"""HTTP routes of Logs Insights: StartQuery (``?wait=true``), GetQueryResults, StopQuery,
DescribeQueries, and saved query definitions.

The log groups of a query are named in its body (or belong to a stored query), so these
routes authorize them themselves through ``request.state.authorize``.
"""

from __future__ import annotations

import asyncio
import re
import time
from typing import Annotated, Any

from fastapi import APIRouter, Query, Request, Response
from pydantic import BaseModel, ConfigDict, Field

from core.errors import BadRequest
from core.names import validate_group_name, validate_query_definition_name
from core.operations import Operation, operation
from core.timeparse import RangeTimeInput, parse_range_time
from query.run import validate_query
from query.service import QueryRecord, QueryService, QueryStatus
from store import saved_queries
from store.engine import Store

router = APIRouter(prefix="/api/v1", tags=["queries"])

START_QUERY = Operation("StartQuery", "logs:StartQuery", True, True, resources_in_handler=True)
GET_QUERY_RESULTS = Operation(
    "GetQueryResults", "logs:GetQueryResults", True, True, resources_in_handler=True
)
STOP_QUERY = Operation("StopQuery", "logs:StopQuery", False, True, resources_in_handler=True)
DESCRIBE_QUERIES = Operation("DescribeQueries", "logs:DescribeQueries", True, True)
PUT_QUERY_DEFINITION = Operation(
    "PutQueryDefinition", "logs:PutQueryDefinition", False, True, resources_in_handler=True
)
DESCRIBE_QUERY_DEFINITIONS = Operation(
    "DescribeQueryDefinitions", "logs:DescribeQueryDefinitions", True, True
)
DELETE_QUERY_DEFINITION = Operation(
    "DeleteQueryDefinition", "logs:DeleteQueryDefinition", False, True
)

# How long ``?wait=true`` holds the request before answering with the current status.
MAX_WAIT_S = 60.0


class StartQueryBody(BaseModel):
    model_config = ConfigDict(extra="forbid")
    query: str
    log_groups: list[str] = Field(min_length=1)
    start: RangeTimeInput
    end: RangeTimeInput
    limit: int | None = None


class QueryDefinitionBody(BaseModel):
    model_config = ConfigDict(extra="forbid")
    query: str = Field(min_length=1, max_length=10_000)
    log_groups: list[str] = Field(default_factory=list)


def _service(request: Request) -> QueryService:
    return request.app.state.queries  # type: ignore[no-any-return]


def _store(request: Request) -> Store:
    return request.app.state.store  # type: ignore[no-any-return]


def _group_arns(request: Request, groups: list[str] | tuple[str, ...]) -> list[str]:
    settings = request.app.state.settings
    prefix = f"arn:watchkeep:logs:{settings.region}:{settings.account_id}:log-group:"
    return [prefix + group for group in groups]


def _authorize_groups(request: Request, action: str, groups: list[str] | tuple[str, ...]) -> None:
    request.state.authorize(action, _group_arns(request, groups))


@router.post("/queries")
@operation(START_QUERY)
async def start_query(request: Request, body: StartQueryBody, wait: bool = False) -> dict[str, Any]:
    """StartQuery: run a Logs Insights query over log groups and a time range."""
    # A group named twice is one group: read twice, its events came back twice.
    groups = list(dict.fromkeys(body.log_groups))
    _authorize_groups(request, START_QUERY.action, body.log_groups)
    now_ms = int(time.time() * 1000)
    start_ms = parse_range_time(body.start, now_ms=now_ms)
    end_ms = parse_range_time(body.end, now_ms=now_ms)
    service = _service(request)
    query_id = await asyncio.to_thread(
        service.start, body.query, groups, start_ms, end_ms, limit=body.limit
    )
    if not wait:
        return {"query_id": query_id}
    record = await service.wait_async(query_id, MAX_WAIT_S)
    return {"query_id": query_id, **_results(record)}


@router.get("/queries/{query_id}")
@operation(GET_QUERY_RESULTS)
async def get_query_results(
    request: Request,
    query_id: str,
    max_items: Annotated[int | None, Query(ge=1, le=10_000)] = None,
    next_token: str | None = None,
) -> dict[str, Any]:
    """GetQueryResults: the status, rows (once complete) and statistics of a query."""
    record = _service(request).get(query_id)
    _authorize_groups(request, GET_QUERY_RESULTS.action, record.groups)
    return {"query_id": query_id, **_results(record, max_items, next_token)}


@router.delete("/queries/{query_id}")
@operation(STOP_QUERY)
async def stop_query(request: Request, query_id: str) -> dict[str, Any]:
    """StopQuery: cancel a scheduled or running query."""
    service = _service(request)
    _authorize_groups(request, STOP_QUERY.action, service.get(query_id).groups)
    return {"success": await asyncio.to_thread(service.stop, query_id)}


@router.get("/queries")
@operation(DESCRIBE_QUERIES)
async def describe_queries(
    request: Request,
    group: str | None = None,
    status: QueryStatus | None = None,
    max_items: Annotated[int, Query(ge=1, le=1000)] = 1000,
) -> dict[str, Any]:
    """DescribeQueries: recent queries, newest first."""
    described = _service(request).describe(group=group, status=status, max_items=max_items)
    return {"queries": [_snake_keys(entry) for entry in described]}


@router.put("/query-definitions/{name}")
@operation(PUT_QUERY_DEFINITION)
async def put_query_definition(
    request: Request, response: Response, name: str, body: QueryDefinitionBody
) -> dict[str, Any]:
    """PutQueryDefinition: save a query (checked first) under a name."""
    _authorize_groups(request, PUT_QUERY_DEFINITION.action, body.log_groups or ["*"])
    validate_query_definition_name(name)
    _check_definition_groups(body.log_groups)
    validate_query(body.query)  # a saved query that cannot run is refused now, not later

    def save() -> tuple[saved_queries.SavedQuery, bool]:
        with _store(request).cursor() as conn:
            return saved_queries.put(
                conn, name, body.query, body.log_groups, int(time.time() * 1000)
            )

    saved, created = await asyncio.to_thread(save)
    response.status_code = 201 if created else 200
    return saved.to_json()


# As many as StartQuery takes in CloudWatch.
MAX_DEFINITION_GROUPS = 50


def _check_definition_groups(groups: list[str]) -> None:
    for group in groups:
        validate_group_name(group)
    seen: set[str] = set()
    for group in groups:
        if group in seen:
            raise BadRequest(f"log group {group!r} is listed twice in log_groups")
        seen.add(group)
    if len(groups) > MAX_DEFINITION_GROUPS:
        raise BadRequest(
            f"log_groups lists {len(groups)} log groups; a query definition takes at most "
            f"{MAX_DEFINITION_GROUPS}"
        )


@router.get("/query-definitions")
@operation(DESCRIBE_QUERY_DEFINITIONS)
async def describe_query_definitions(request: Request, prefix: str = "") -> dict[str, Any]:
    """DescribeQueryDefinitions: the saved queries, by name."""

    def load() -> list[saved_queries.SavedQuery]:
        with _store(request).cursor() as conn:
            return saved_queries.list_all(conn, prefix)

    return {"query_definitions": [q.to_json() for q in await asyncio.to_thread(load)]}


@router.delete("/query-definitions/{name}", status_code=204)
@operation(DELETE_QUERY_DEFINITION)
async def delete_query_definition(request: Request, name: str) -> Response:
    def remove() -> None:
        with _store(request).cursor() as conn:
            saved_queries.delete(conn, name)

    await asyncio.to_thread(remove)
    return Response(status_code=204)


def _results(
    record: QueryRecord, max_items: int | None = None, next_token: str | None = None
) -> dict[str, Any]:
    body = record.results(max_items=max_items, next_token=next_token)
    return {
        "status": body["status"],
        "results": body["results"],
        "statistics": _snake_keys(body["statistics"]),
        "next_token": body.get("nextToken"),
        **({"error": body["error"]} if "error" in body else {}),
    }


_CAMEL = re.compile(r"(?<!^)(?=[A-Z])")


def _snake_keys(entry: dict[str, Any]) -> dict[str, Any]:
    """AWS's camelCase member names in the native API's snake_case."""
    return {_CAMEL.sub("_", key).lower(): value for key, value in entry.items()}
