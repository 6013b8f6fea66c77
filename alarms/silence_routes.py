"""HTTP routes of silences (spec §6.6) and of the webhook outbox (spec §6.4: dead deliveries are
kept for inspection and manual replay).

Included before ``alarms.routes``, whose ``/{name}`` would otherwise take these paths.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from typing import Any, Literal

from fastapi import APIRouter, Query, Request

from alarms.routes import alarm_engine, json_object
from alarms.rule_checks import check_api_name
from alarms.silences import is_active
from core.errors import BadRequest, Unavailable
from core.operations import Operation, RequestTarget, operation

__all__ = ["router"]

router = APIRouter(prefix="/api/v1/alarms", tags=["alarms"])


def _silence_arn(target: RequestTarget) -> list[str]:
    silence = target.path_params["silence_id"]
    return [f"arn:watchkeep:cloudwatch:{target.region}:{target.account_id}:silence:{silence}"]


LIST_SILENCES = Operation("ListSilences", "cloudwatch:ListSilences", True, True)
PUT_SILENCE = Operation("PutSilence", "cloudwatch:PutSilence", False, True)
DELETE_SILENCE = Operation(
    "DeleteSilence", "cloudwatch:DeleteSilence", False, True, resources=_silence_arn
)
LIST_DELIVERIES = Operation("ListAlarmDeliveries", "cloudwatch:ListAlarmDeliveries", True, True)
REPLAY_DELIVERY = Operation("ReplayAlarmDelivery", "cloudwatch:ReplayAlarmDelivery", False, True)


@router.get("/silences")
@operation(LIST_SILENCES)
async def list_silences(request: Request) -> dict[str, Any]:
    """Every silence, from files and from the API, and whether it holds actions now."""
    engine = alarm_engine(request)
    stored = set(await asyncio.to_thread(engine.store.silences))
    now = int(time.time() * 1_000)
    return {
        "silences": [
            {
                **silence.model_dump(mode="json", exclude_none=True),
                "source": "api" if silence.id in stored else "file",
                "active": is_active(silence, now),
            }
            for silence in engine.rules.silences
        ]
    }


@router.post("/silences", status_code=201)
@operation(PUT_SILENCE)
async def put_silence(request: Request) -> dict[str, Any]:
    """Create or replace a silence; ``id`` defaults to a new UUID. Its author (``created_by``)
    is the authenticated caller, never the body's word."""
    engine = alarm_engine(request)
    document = await json_object(request, "one silence")
    if "created_by" in document:
        # Refused like any unknown key of an alarm body: a typo or a forged author must not
        # pass silently.
        raise BadRequest(
            "unknown key 'created_by': the author of a silence created through the API is "
            "the authenticated caller; leave the key out",
            details={"field": "created_by"},
        )
    document["created_by"] = request.state.principal.arn
    silence_id = document.setdefault("id", str(uuid.uuid4()))
    if not isinstance(silence_id, str):
        raise BadRequest("the silence's `id` must be a string", details={"field": "id"})
    if problem := check_api_name(silence_id, silence=True):
        raise BadRequest(problem, details={"field": "id"})
    await asyncio.to_thread(engine.put_silence, document)
    return {"id": silence_id}


@router.delete("/silences/{silence_id}")
@operation(DELETE_SILENCE)
async def delete_silence(request: Request, silence_id: str) -> dict[str, Any]:
    engine = alarm_engine(request)
    await asyncio.to_thread(engine.delete_silence, silence_id)
    return {"deleted": silence_id}


@router.get("/deliveries")
@operation(LIST_DELIVERIES)
async def list_deliveries(
    request: Request,
    status: Literal["pending", "delivered", "dead"] | None = None,
    target: str | None = None,
    alarm: str | None = None,
    limit: int = Query(100, ge=1, le=1000),
) -> dict[str, Any]:
    outbox = _outbox(request)
    found = await asyncio.to_thread(
        outbox.list, status=status, target=target, alarm=alarm, limit=limit
    )
    return {"deliveries": [delivery.to_json() for delivery in found]}


@router.post("/deliveries/{delivery_id}/replay")
@operation(REPLAY_DELIVERY)
async def replay_delivery(request: Request, delivery_id: str) -> dict[str, Any]:
    """A dead delivery goes back to the queue with the same id and body (receivers dedupe)."""
    outbox = _outbox(request)
    delivery = await asyncio.to_thread(outbox.replay, delivery_id, int(time.time() * 1_000))
    notifier = getattr(request.app.state, "notifier", None)
    if notifier is not None:
        notifier.wake()
    return delivery.to_json()  # type: ignore[no-any-return]


def _outbox(request: Request) -> Any:
    outbox = getattr(request.app.state, "outbox", None)
    if outbox is None:
        raise Unavailable("alarms are not running on this server yet", retry_after_s=5)
    return outbox
