"""Event timestamps and range parameters, as tables of cases."""

from __future__ import annotations

import pytest

from core.errors import BadRequest
from core.timeparse import MAX_EPOCH_MS, parse_event_timestamp, parse_range_time

NOW_MS = 1_717_423_500_000  # 2024-06-03T14:05:00Z

EVENT_OK = [
    ("int-ms", 1_717_423_500_000, 1_717_423_500_000),
    ("zero", 0, 0),
    ("integral-float", 1_717_423_500_000.0, 1_717_423_500_000),
    ("max", MAX_EPOCH_MS, MAX_EPOCH_MS),
    ("rfc3339-z", "2024-06-03T14:05:00Z", NOW_MS),
    ("rfc3339-millis-offset", "2024-06-03T16:05:00.123+02:00", NOW_MS + 123),
    ("rfc3339-negative-offset", "2024-06-03T13:35:00-00:30", NOW_MS),
    ("lowercase-t-z", "2024-06-03t14:05:00z", NOW_MS),
    ("space-separator", "2024-06-03 14:05:00Z", NOW_MS),
    ("micros-truncated", "2024-06-03T14:05:00.999999Z", NOW_MS + 999),
    ("one-fraction-digit", "2024-06-03T14:05:00.5Z", NOW_MS + 500),
    ("leap-day", "2024-02-29T00:00:00Z", 1_709_164_800_000),
    ("last-instant", "9999-12-31T23:59:59.999Z", MAX_EPOCH_MS),
]


@pytest.mark.parametrize(
    ("value", "expected"), [c[1:] for c in EVENT_OK], ids=[c[0] for c in EVENT_OK]
)
def test_event_timestamp_accepts(value: object, expected: int) -> None:
    assert parse_event_timestamp(value) == expected


EVENT_BAD = [
    ("word", "yesterday", "expected epoch milliseconds or an RFC 3339 string, got 'yesterday'"),
    ("bool", True, "got True"),
    ("none", None, "got None"),
    ("fraction", 1.5, "got 1.5"),
    ("date-only", "2024-06-03", "got '2024-06-03'"),
    ("no-zone", "2024-06-03T14:05:00", "got '2024-06-03T14:05:00'"),
    ("bad-day", "2023-02-29T00:00:00Z", "got '2023-02-29T00:00:00Z'"),
    ("leap-second", "2024-06-30T23:59:60Z", "RFC 3339"),
    ("offset-24h", "2024-06-03T14:05:00+24:00", "RFC 3339"),
    ("negative", -1, "-1 is outside the years 1970 to 9999"),
    ("too-big", MAX_EPOCH_MS + 1, "outside the years 1970 to 9999"),
    ("seconds-float-too-big", 1e300, "outside the years"),
    ("before-1970-by-offset", "1970-01-01T00:00:00+01:00", "outside the years"),
    ("list", [1], "got [1]"),
    ("long-value-truncated", "x" * 100, "got 'xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx..."),
]


@pytest.mark.parametrize(
    ("value", "fragment"), [c[1:] for c in EVENT_BAD], ids=[c[0] for c in EVENT_BAD]
)
def test_event_timestamp_rejects(value: object, fragment: str) -> None:
    with pytest.raises(ValueError, match="^timestamp: ") as info:
        parse_event_timestamp(value)
    assert fragment in str(info.value)
    assert len(str(info.value)) < 160


RANGE_OK = [
    ("epoch-seconds-int", 1_717_423_500, NOW_MS),
    ("epoch-seconds-str", "1717423500", NOW_MS),
    ("zero", 0, 0),
    ("now", "now", NOW_MS),
    ("now-uppercase", "NOW", NOW_MS),
    ("minus-30s", "-30s", NOW_MS - 30_000),
    ("minus-15m", "-15m", NOW_MS - 900_000),
    ("minus-1h", "-1h", NOW_MS - 3_600_000),
    ("minus-2d", "-2d", NOW_MS - 172_800_000),
    ("minus-1w", "-1w", NOW_MS - 604_800_000),
    ("rfc3339", "2024-06-03T14:05:00Z", NOW_MS),
    ("rfc3339-offset", "2024-06-03T16:05:00+02:00", NOW_MS),
    ("surrounding-space", " -1h ", NOW_MS - 3_600_000),
]


@pytest.mark.parametrize(
    ("value", "expected"), [c[1:] for c in RANGE_OK], ids=[c[0] for c in RANGE_OK]
)
def test_range_time_accepts(value: str | int, expected: int) -> None:
    assert parse_range_time(value, now_ms=NOW_MS) == expected


RANGE_BAD = [
    ("word", "yesterday"),
    ("empty", ""),
    ("plus-relative", "+15m"),
    ("unknown-unit", "-15y"),
    ("no-number", "-m"),
    ("float-seconds", "1717423500.5"),
    ("negative-int", -5),
    ("negative-str", "-5"),
    ("bool", True),
    ("year-10000", 253_402_300_800),
    ("before-1970", "-100000w"),
    ("unicode-digits", "١٢٣"),
]


@pytest.mark.parametrize("value", [c[1] for c in RANGE_BAD], ids=[c[0] for c in RANGE_BAD])
def test_range_time_rejects(value: str | int) -> None:
    with pytest.raises(BadRequest) as info:
        parse_range_time(value, now_ms=NOW_MS)
    assert repr(value)[:20] in info.value.message
    assert "epoch seconds" in info.value.message and "-15m" in info.value.message
