"""Parse the timestamps watchkeep accepts: event timestamps and query/list range parameters.

Pure functions, no clock: callers pass ``now_ms``. Everything is UTC and comes back as epoch
milliseconds. Event timestamps are epoch *milliseconds* or RFC 3339; range parameters are epoch
*seconds*, RFC 3339, ``now`` or a relative offset such as ``-15m`` (DESIGN.md, Contracts: Time).
"""

from __future__ import annotations

import re
from datetime import UTC, datetime

from pydantic import StrictInt

from core.errors import BadRequest

__all__ = [
    "MAX_EPOCH_MS",
    "MIN_EPOCH_MS",
    "RangeTimeInput",
    "parse_event_timestamp",
    "parse_range_time",
]

# A range time as a request body field takes: epoch seconds as a JSON integer, or a string
# form of ``parse_range_time``. Strict, because pydantic would read ``true`` as 1 (1970).
RangeTimeInput = str | StrictInt

MIN_EPOCH_MS = 0
# 9999-12-31T23:59:59.999Z: the last instant a four-digit year can name.
MAX_EPOCH_MS = 253_402_300_799_999

_RFC3339 = re.compile(
    r"(\d{4})-(\d{2})-(\d{2})[Tt ](\d{2}):(\d{2}):(\d{2})(?:\.(\d+))?([Zz]|[+-]\d{2}:\d{2})",
    re.ASCII,
)
_RELATIVE = re.compile(r"-(\d{1,12})([smhdw])", re.ASCII)
_UNIT_MS = {"s": 1_000, "m": 60_000, "h": 3_600_000, "d": 86_400_000, "w": 604_800_000}
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_RANGE_FORMS = (
    "integer epoch seconds, an RFC 3339 string such as 2024-06-03T14:05:00Z, "
    "'now', or a relative time such as -15m, -1h, -30s, -2d, -1w"
)


def _show(value: object) -> str:
    text = repr(value)
    return text if len(text) <= 40 else text[:37] + "..."


def _rfc3339_ms(text: str) -> int | None:
    """Epoch ms of an RFC 3339 date-time; None when ``text`` is not one or names no real date."""
    match = _RFC3339.fullmatch(text)
    if match is None:
        return None
    year, month, day, hour, minute, second, fraction, zone = match.groups()
    try:
        moment = datetime(
            int(year), int(month), int(day), int(hour), int(minute), int(second), tzinfo=UTC
        )
    except ValueError:
        return None
    offset_min = 0
    if zone not in ("Z", "z"):
        zone_hours, zone_minutes = int(zone[1:3]), int(zone[4:6])
        if zone_hours > 23 or zone_minutes > 59:
            return None
        offset_min = (zone_hours * 60 + zone_minutes) * (-1 if zone[0] == "-" else 1)
    delta = moment - _EPOCH
    seconds = delta.days * 86_400 + delta.seconds - offset_min * 60
    millis = int((fraction or "0")[:3].ljust(3, "0"))
    return seconds * 1_000 + millis


def parse_event_timestamp(value: object) -> int:
    """Epoch ms of an event ``timestamp``: integer epoch milliseconds or an RFC 3339 string.

    Raises ValueError (its text is the rejection reason shown to the client).
    """
    millis: int | None = None
    if isinstance(value, int) and not isinstance(value, bool):
        millis = value
    elif isinstance(value, float) and value.is_integer():
        millis = int(value)
    elif isinstance(value, str):
        millis = _rfc3339_ms(value)
    if millis is None:
        raise ValueError(
            "timestamp: expected epoch milliseconds or an RFC 3339 string, got " + _show(value)
        )
    if not MIN_EPOCH_MS <= millis <= MAX_EPOCH_MS:
        # Numbers show as integers so that 5 and 5.0 read the same.
        shown = _show(value if isinstance(value, str) else millis)
        raise ValueError(
            f"timestamp: {shown} is outside the years 1970 to 9999 "
            "(integer timestamps are epoch milliseconds)"
        )
    return millis


def parse_range_time(value: str | int, *, now_ms: int) -> int:
    """Epoch ms of a range parameter (``start``, ``end``): epoch seconds, RFC 3339, now, -15m..."""
    millis: int | None = None
    if isinstance(value, int) and not isinstance(value, bool):
        millis = value * 1_000
    elif isinstance(value, str):
        text = value.strip()
        if text.isascii() and text.isdigit():
            millis = int(text) * 1_000
        elif text.lower() == "now":
            millis = now_ms
        elif relative := _RELATIVE.fullmatch(text):
            millis = now_ms - int(relative.group(1)) * _UNIT_MS[relative.group(2)]
        else:
            millis = _rfc3339_ms(text)
    if millis is None:
        raise BadRequest(
            f"invalid time {_show(value)}: expected {_RANGE_FORMS}",
            details={"value": str(value)[:100]},
        )
    if not MIN_EPOCH_MS <= millis <= MAX_EPOCH_MS:
        raise BadRequest(
            f"time {_show(value)} is outside the years 1970 to 9999; expected {_RANGE_FORMS}",
            details={"value": str(value)[:100]},
        )
    return millis
