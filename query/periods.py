"""Periods (``5m``, ``1h``, ``1mo``) and time buckets in SQL (spec §12.2-§12.3).

Timestamps are BIGINT epoch milliseconds. Fixed periods bucket by integer arithmetic from the
Unix epoch (weeks from a Monday); months, quarters and years by calendar arithmetic in UTC.
No I/O here.
"""

from __future__ import annotations

from dataclasses import dataclass

from query.errors import QueryError
from query.nodes import Period

__all__ = ["Bucket", "ceil_sql", "floor_sql", "resolve_period"]

_SPELLINGS = {
    "millisecond": ("ms", "msec", "millisecond"),
    "second": ("s", "sec", "second"),
    "minute": ("m", "min", "minute"),
    "hour": ("h", "hr", "hour"),
    "day": ("d", "day"),
    "week": ("w", "week"),
    "month": ("mo", "mon", "month"),
    "quarter": ("q", "qtr", "quarter"),
    "year": ("y", "yr", "year"),
}
_UNITS: dict[str, str] = {}
for _unit, _words in _SPELLINGS.items():
    for _word in _words:
        _UNITS[_word] = _unit
        if len(_word) > 1:
            _UNITS[_word + "s"] = _unit

_FIXED_MS = {
    "millisecond": 1,
    "second": 1_000,
    "minute": 60_000,
    "hour": 3_600_000,
    "day": 86_400_000,
    "week": 604_800_000,
}
_CALENDAR_MONTHS = {"month": 1, "quarter": 3, "year": 12}
# AWS documents these caps: bin(300s) behaves as bin(60s).
_CAPS = {"millisecond": 1000, "second": 60, "minute": 60, "hour": 24}
# 1969-12-29, the Monday before the epoch: weeks start on Mondays (spec §12.3).
_MONDAY_MS = -3 * 86_400_000


@dataclass(frozen=True, slots=True)
class Bucket:
    """A validated period: ``size_ms`` for fixed units, ``months`` for calendar ones."""

    size_ms: int = 0
    months: int = 0
    offset_ms: int = 0
    warning: str | None = None


def resolve_period(period: Period) -> Bucket:
    """Validate a period and turn it into a bucket size; raise ``QueryError`` if invalid."""
    unit = _UNITS.get(period.unit.lower())
    text = f"{period.quantity}{period.unit}"
    if unit is None:
        raise QueryError(
            f'Unknown period unit "{period.unit}" in {text} at line {period.span.line}, column '
            f"{period.span.column}: use ms, s, m, h, d, w, mo, q or y (e.g. 5m, 1h, 1d).",
            period.span,
        )
    if period.quantity <= 0:
        raise QueryError(
            f"The period {text} at line {period.span.line}, column {period.span.column} must be "
            "a positive number of units.",
            period.span,
        )
    quantity, warning = period.quantity, None
    cap = _CAPS.get(unit)
    if cap is not None and quantity > cap:
        warning = f"period {text} is capped at {cap}{period.unit}, as in CloudWatch"
        quantity = cap
    if unit in _CALENDAR_MONTHS:
        return Bucket(months=quantity * _CALENDAR_MONTHS[unit], warning=warning)
    offset = _MONDAY_MS if unit == "week" else 0
    return Bucket(size_ms=quantity * _FIXED_MS[unit], offset_ms=offset, warning=warning)


def floor_sql(ts: str, bucket: Bucket) -> str:
    """SQL rounding the epoch-ms expression ``ts`` down to the bucket boundary."""
    if bucket.months:
        if bucket.months == 1:
            return f"epoch_ms(date_trunc('month', epoch_ms({ts})))"
        if bucket.months == 12:
            return f"epoch_ms(date_trunc('year', epoch_ms({ts})))"
        months = (
            f"CAST(floor(datediff('month', TIMESTAMP '1970-01-01', epoch_ms({ts})) "
            f"/ {bucket.months}) * {bucket.months} AS INTEGER)"
        )
        return f"epoch_ms(TIMESTAMP '1970-01-01' + to_months({months}))"
    size = bucket.size_ms
    if size == 1:
        return ts
    shifted = f"({ts} - {bucket.offset_ms})" if bucket.offset_ms else ts
    # DuckDB's % truncates toward zero; this is the floored remainder, right before 1970 too.
    return f"({ts} - (({shifted} % {size}) + {size}) % {size})"


def ceil_sql(ts: str, bucket: Bucket) -> str:
    """SQL rounding up; a value already on a boundary stays where it is (spec D18)."""
    floor = floor_sql(ts, bucket)
    if bucket.months:
        up = f"epoch_ms(epoch_ms({floor}) + to_months({bucket.months}))"
    else:
        up = f"({floor} + {bucket.size_ms})"
    return f"CASE WHEN {floor} = {ts} THEN {ts} ELSE {up} END"
