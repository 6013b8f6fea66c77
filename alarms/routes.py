"""HTTP routes of alarms: DescribeAlarms, history, Put/Delete, SetAlarmState, actions, reload.

Alarms created here live beside the rule files' (spec §6.1): a body is one alarm in the rule
file's shape, as JSON, validated against the running rules of every file. Silences and the
webhook outbox (dead deliveries and their replay) are in ``alarms.silence_routes``.
"""

from __future__ import annotations

import asyncio
import math
import time
from typing import Any, Literal

import orjson
from fastapi import APIRouter, Query, Request
from pydantic import BaseModel, ConfigDict, Field

from alarms.actions import configuration
from alarms.definitions import API_SOURCE, AlarmInUse
from alarms.engine import AlarmEngine, Rule
from alarms.rule_checks import check_api_name
from alarms.state import AlarmStatus
from alarms.store import HistoryQuery
from core.bodies import read_limited
from core.errors import BadRequest, Unavailable
from core.operations import Operation, RequestTarget, operation
from core.timeparse import parse_range_time
from core.units import format_size

__all__ = ["AlarmInUse", "alarm_arn", "alarm_engine", "alarm_view", "router"]

router = APIRouter(prefix="/api/v1/alarms", tags=["alarms"])
MAX_DOCUMENT_BYTES = 120 * 1024  # CloudWatch's PutMetricAlarm request limit


def alarm_arn(target: RequestTarget, name: str) -> str:
    return f"arn:watchkeep:cloudwatch:{target.region}:{target.account_id}:alarm:{name}"


def _named(target: RequestTarget) -> list[str]:
    return [alarm_arn(target, target.path_params["name"])]


def _history_resources(target: RequestTarget) -> list[str]:
    name = target.query.get("name")
    return [alarm_arn(target, name)] if name else []


def _op(name: str, read_only: bool, resources: Any = None) -> Operation:
    if resources is None:
        return Operation(name, f"cloudwatch:{name}", read_only, True)
    return Operation(name, f"cloudwatch:{name}", read_only, True, resources=resources)


DESCRIBE_ALARMS = _op("DescribeAlarms", True)
DESCRIBE_ALARM = _op("DescribeAlarms", True, _named)
DESCRIBE_ALARM_HISTORY = _op("DescribeAlarmHistory", True, _history_resources)
PUT_METRIC_ALARM = _op("PutMetricAlarm", False, _named)
PUT_COMPOSITE_ALARM = _op("PutCompositeAlarm", False, _named)
DELETE_ALARM = _op("DeleteAlarms", False, _named)
SET_ALARM_STATE = _op("SetAlarmState", False, _named)
ENABLE_ALARM_ACTIONS = _op("EnableAlarmActions", False, _named)
DISABLE_ALARM_ACTIONS = _op("DisableAlarmActions", False, _named)
RELOAD_ALARMS = _op("ReloadAlarmRules", False)


def alarm_engine(request: Request) -> AlarmEngine:
    engine = getattr(request.app.state, "alarms", None)
    if engine is None:
        raise Unavailable("alarms are not running on this server yet", retry_after_s=5)
    return engine  # type: ignore[no-any-return]


def alarm_view(engine: AlarmEngine, rule: Rule, status: AlarmStatus) -> dict[str, Any]:
    """The AlarmView of the console and CLI: rule, state and action bookkeeping."""
    source = engine.rules.files.get(rule.name)
    runtime = status.runtime
    enabled = runtime.actions_enabled
    return {
        "name": rule.name,
        "kind": rule.kind,
        "source": "api" if source == API_SOURCE else "file",
        "file": None if source == API_SOURCE else source,
        "description": rule.description,
        "labels": rule.labels,
        "state": status.state_json(),
        "evaluation_state": status.evaluation_state,
        "actions_enabled": rule.actions_enabled if enabled is None else enabled,
        "actions_suppressed_by": runtime.held_by,
        "actions_suppressed_reason": runtime.held_reason,
        "configuration": {**configuration(rule), "actions": rule.actions.model_dump()},
    }


@router.get("")
@operation(DESCRIBE_ALARMS)
async def describe_alarms(
    request: Request,
    state: Literal["OK", "ALARM", "INSUFFICIENT_DATA"] | None = None,
    kind: Literal["metric", "composite"] | None = None,
    prefix: str | None = None,
) -> dict[str, Any]:
    engine = alarm_engine(request)

    def view(rule: Rule, status: AlarmStatus) -> dict[str, Any] | None:
        wanted = (
            (state is None or status.state == state)
            and (kind is None or rule.kind == kind)
            and (prefix is None or rule.name.startswith(prefix))
        )
        return alarm_view(engine, rule, status) if wanted else None

    views = await asyncio.to_thread(engine.render, view)
    return {"alarms": [v for v in views if v is not None]}


@router.get("/history")
@operation(DESCRIBE_ALARM_HISTORY)
async def describe_alarm_history(
    request: Request,
    name: str | None = None,
    type: Literal["ConfigurationUpdate", "StateUpdate", "Action"] | None = None,
    alarm_type: Literal["MetricAlarm", "CompositeAlarm"] | None = None,
    start: str | None = None,
    end: str | None = None,
    max_records: int = Query(100, ge=1, le=100),
    next_token: str | None = None,
    scan_by: Literal["TimestampDescending", "TimestampAscending"] = "TimestampDescending",
) -> dict[str, Any]:
    """DescribeAlarmHistory (spec §5.9): kept 30 days, also for deleted alarms."""
    engine = alarm_engine(request)
    now = int(time.time() * 1_000)
    query = HistoryQuery(
        name=name,
        alarm_types=[alarm_type] if alarm_type else [],
        item_type=type,
        start_ms=parse_range_time(start, now_ms=now) if start else None,
        end_ms=parse_range_time(end, now_ms=now) if end else None,
        max_records=max_records,
        next_token=next_token,
        oldest_first=scan_by == "TimestampAscending",
    )
    page = await asyncio.to_thread(engine.store.history, query)
    return {"items": [item.to_json() for item in page.items], "next_token": page.next_token}


@router.post("/reload")
@operation(RELOAD_ALARMS)
async def reload_rules(request: Request) -> dict[str, Any]:
    """Load the rule directory again, atomically (spec §6.1); an invalid file changes nothing."""
    engine = alarm_engine(request)
    rules = await asyncio.to_thread(engine.reload)
    return {
        "alarms": len(rules.alarms),
        "composites": len(rules.composites),
        "targets": len(rules.targets),
        "silences": len(rules.silences),
    }


@router.get("/{name}")
@operation(DESCRIBE_ALARM)
async def describe_alarm(request: Request, name: str) -> dict[str, Any]:
    return await _view(alarm_engine(request), name)


@router.put("/{name}")
@operation(PUT_METRIC_ALARM)
async def put_metric_alarm(request: Request, name: str) -> dict[str, Any]:
    """PutMetricAlarm: create or replace an API alarm; the state of an existing one is kept."""
    return await _put(request, name, "metric")


@router.put("/composites/{name}")
@operation(PUT_COMPOSITE_ALARM)
async def put_composite_alarm(request: Request, name: str) -> dict[str, Any]:
    return await _put(request, name, "composite")


@router.delete("/{name}")
@operation(DELETE_ALARM)
async def delete_alarm(request: Request, name: str) -> dict[str, Any]:
    """DeleteAlarms of one API alarm: 404 when unknown; 409 (``AlarmInUse``) while a composite
    references it, or when a rule file defines it."""
    engine = alarm_engine(request)
    await asyncio.to_thread(engine.delete_definition, name)
    return {"deleted": name}


class SetStateBody(BaseModel):
    model_config = ConfigDict(extra="forbid")
    state: Literal["OK", "ALARM", "INSUFFICIENT_DATA"]
    reason: str = Field(min_length=0, max_length=1023)
    reason_data: dict[str, Any] | str | None = None


@router.post("/{name}/state")
@operation(SET_ALARM_STATE)
async def set_alarm_state(request: Request, name: str, body: SetStateBody) -> dict[str, Any]:
    """SetAlarmState (spec §5.8.4): a transition runs the new state's actions."""
    engine = alarm_engine(request)
    data = _reason_data(body.reason_data)
    await asyncio.to_thread(engine.set_state, name, body.state, body.reason, data)
    return await _view(engine, name)


@router.post("/{name}/actions/enable")
@operation(ENABLE_ALARM_ACTIONS)
async def enable_alarm_actions(request: Request, name: str) -> dict[str, Any]:
    return await _actions(request, name, True)


@router.post("/{name}/actions/disable")
@operation(DISABLE_ALARM_ACTIONS)
async def disable_alarm_actions(request: Request, name: str) -> dict[str, Any]:
    return await _actions(request, name, False)


async def _actions(request: Request, name: str, enabled: bool) -> dict[str, Any]:
    engine = alarm_engine(request)
    await asyncio.to_thread(engine.set_actions_enabled, name, enabled)
    return await _view(engine, name)


# Paths under /api/v1/alarms that the GET of an alarm with that name would never reach.
RESERVED_NAMES = frozenset({"silences", "history", "deliveries", "reload"})


async def _put(request: Request, name: str, kind: str) -> dict[str, Any]:
    engine = alarm_engine(request)
    if name in RESERVED_NAMES:
        raise BadRequest(
            f"{name!r} cannot name an alarm created through the API: /api/v1/alarms/{name} "
            "is another resource; choose another name",
            details={"field": "name"},
        )
    if problem := check_api_name(name):
        raise BadRequest(problem, details={"field": "name"})
    document = await json_object(request, "one alarm")
    named = document.setdefault("name", name)
    if named != name:
        raise BadRequest(
            f"the body names the alarm {named!r} but the path names {name!r}",
            details={"field": "name"},
        )
    await asyncio.to_thread(engine.put_definition, kind, document)
    return await _view(engine, name)


async def _view(engine: AlarmEngine, name: str) -> dict[str, Any]:
    views = await asyncio.to_thread(
        engine.render, lambda rule, status: alarm_view(engine, rule, status), [name]
    )
    return views[0]


async def json_object(request: Request, what: str) -> dict[str, Any]:
    """The body as one JSON object of at most ``MAX_DOCUMENT_BYTES`` (PutMetricAlarm's limit)."""
    raw = await read_limited(
        request.headers,
        request.stream(),
        MAX_DOCUMENT_BYTES,
        f"{what} is limited to {format_size(MAX_DOCUMENT_BYTES)}",
    )
    try:
        document = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        raise BadRequest(f"the body is not valid JSON: {exc}") from None
    if not isinstance(document, dict):
        raise BadRequest(f"the body must be a JSON object: {what} as in a rule file")
    if problem := not_json(document, "the body"):
        raise BadRequest(problem)
    return document


class InvalidFormat(BadRequest):
    """Raised when SetAlarmState's reason data is not a JSON object of at most 4000 chars."""

    code = "InvalidFormat"


MAX_REASON_DATA_CHARS = 4_000


def _reason_data(value: dict[str, Any] | str | None) -> dict[str, Any]:
    """StateReasonData must be JSON (spec §5.8.4): an object, or a string holding one."""
    if value is None:
        return {}
    if isinstance(value, str):
        try:
            value = orjson.loads(value)
        except orjson.JSONDecodeError as exc:
            raise InvalidFormat(f"reason_data is not valid JSON: {exc}") from None
        if not isinstance(value, dict):
            raise InvalidFormat("reason_data must be a JSON object")
    # The object form comes from FastAPI's parser, which reads NaN, Infinity, 1e400 and lone
    # surrogates: refused here, before the state changes, as the string form is by orjson.
    if problem := not_json(value, "reason_data"):
        raise InvalidFormat(
            f"{problem}; StateReasonData must be valid JSON (spec §5.8.4)",
            details={"field": "reason_data"},
        )
    return _bounded(value)


# Far deeper than any alarm, silence or reason data; bodies are written again inside other
# documents (rule texts, states, webhooks), and orjson writes at most 254 levels.
MAX_NESTING = 64


def not_json(value: Any, path: str) -> str | None:
    """What in ``value`` is not JSON, or nested too deeply to be written again, or None."""
    return _not_json(value, path, path, 0)


def _not_json(value: Any, path: str, root: str, depth: int) -> str | None:
    if depth > MAX_NESTING:
        return f"{root} is nested more than {MAX_NESTING} levels deep"
    if isinstance(value, float) and not math.isfinite(value):
        shown = "NaN" if math.isnan(value) else "Infinity or a number beyond ±1.8e308"
        return f"{path} is {shown}, which is not a JSON number"
    if isinstance(value, str) and not _is_utf8(value):
        return f"{path} holds a lone surrogate (\\ud800-\\udfff), which is not JSON text"
    if isinstance(value, list):
        for index, item in enumerate(value):
            if problem := _not_json(item, f"{path}[{index}]", root, depth + 1):
                return problem
    elif isinstance(value, dict):
        for key, item in value.items():
            if not _is_utf8(key):
                return f"a key in {path} holds a lone surrogate, which is not JSON text"
            if problem := _not_json(item, f"{path}.{key}", root, depth + 1):
                return problem
    return None


def _is_utf8(text: str) -> bool:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def _bounded(data: dict[str, Any]) -> dict[str, Any]:
    size = len(orjson.dumps(data).decode())
    if size > MAX_REASON_DATA_CHARS:
        raise InvalidFormat(
            f"reason_data is {size} characters of JSON; StateReasonData is limited to "
            f"{MAX_REASON_DATA_CHARS} (spec §5.7)",
            details={"field": "reason_data"},
        )
    return data
