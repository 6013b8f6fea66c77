"""The small JSON bodies of the log-group calls, and the retention periods they may ask for.

``PUT /api/v1/logs/groups/{name}`` ensures a group exists (CreateLogGroup) and, for callers of
the first API, still changes an existing group's retention when its body names
``retention_days`` (then it is a PutRetentionPolicy); ``PUT`` and ``DELETE
/api/v1/logs/retention-policies/{name}`` are PutRetentionPolicy and DeleteRetentionPolicy.
No I/O here.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import orjson

from core.errors import BadRequest

__all__ = ["RETENTION_DAYS", "RetentionRequest", "parse_group_body", "parse_retention_body"]

# CloudWatch's accepted retention periods, in days.
RETENTION_DAYS = tuple(
    int(days)
    for days in (
        "1 3 5 7 14 30 60 90 120 150 180 365 400 545 731 1096 1827 2192 2557 2922 3288 3653"
    ).split()
)
_EXAMPLE = '{"retention_days": 30}'
_KINDS = {list: "an array", str: "a string", int: "a number", float: "a number"}
_KINDS |= {bool: "a boolean", type(None): "null"}


@dataclass(frozen=True, slots=True)
class RetentionRequest:
    """What a body asks of a group's retention: nothing (``given`` False), days, or None
    (keep events for ever)."""

    given: bool
    days: int | None = None


def parse_group_body(raw: bytes) -> RetentionRequest:
    """The body of ``PUT /groups/{name}``: empty, ``{}`` or ``{"retention_days": n|null}``."""
    if not raw.strip(b" \t\r\n"):
        return RetentionRequest(given=False)
    obj = _json_object(raw)
    if "retention_days" not in obj:
        return RetentionRequest(given=False)
    return RetentionRequest(given=True, days=_retention_days(obj["retention_days"], nullable=True))


def parse_retention_body(raw: bytes, group: str) -> int:
    """The days of a PutRetentionPolicy body, ``{"retention_days": n}``."""
    delete_hint = f"to keep events for ever, DELETE /api/v1/logs/retention-policies/{group}"
    if not raw.strip(b" \t\r\n"):
        raise BadRequest(f"the body is empty: send {_EXAMPLE}; {delete_hint}")
    obj = _json_object(raw)
    if obj.get("retention_days") is None:
        raise BadRequest(
            f"retention_days is missing or null: send {_EXAMPLE}; {delete_hint}",
            details={"field": "retention_days"},
        )
    days = _retention_days(obj["retention_days"], nullable=False)
    assert days is not None
    return days


def _json_object(raw: bytes) -> dict[str, Any]:
    try:
        raw.decode()
    except UnicodeDecodeError as exc:
        raise BadRequest(
            f"the body is not valid UTF-8: invalid byte at offset {exc.start}; "
            f"send UTF-8 JSON such as {_EXAMPLE}",
            details={"offset": exc.start},
        ) from exc
    try:
        value = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        raise BadRequest(
            f"the body is not valid JSON: {exc.msg} at line {exc.lineno}, column {exc.colno}; "
            f"send an object such as {_EXAMPLE}",
            details={"line": exc.lineno, "column": exc.colno},
        ) from exc
    if not isinstance(value, dict):
        raise BadRequest(
            f"the body must be a JSON object such as {_EXAMPLE}, not {_KINDS[type(value)]}"
        )
    unknown = sorted(set(value) - {"retention_days"})
    if unknown:
        raise BadRequest(
            f"unknown field {unknown[0]!r} in the body: the only field is retention_days",
            details={"field": unknown[0]},
        )
    return value


def _retention_days(value: object, *, nullable: bool) -> int | None:
    if value is None and nullable:
        return None
    if isinstance(value, int) and not isinstance(value, bool) and value in RETENTION_DAYS:
        return value
    raise BadRequest(
        f"retention_days {orjson.dumps(value).decode()[:40]} is not one of "
        f"{', '.join(map(str, RETENTION_DAYS))}" + (" or null" if nullable else ""),
        details={"retention_days": value if isinstance(value, int | None) else str(value)},
    )
