"""Valid periods, start rounding and the age rules of spec §2.1 and §1.8."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from core.metric_errors import InvalidParameterValue
from query.metrics.window import Tiers, check_period, plan_window, round_start

DAY_S = 86_400


def ms(text: str) -> int:
    return int(datetime.fromisoformat(text).replace(tzinfo=UTC).timestamp() * 1000)


NOW = ms("2026-03-01T12:00:00")


@pytest.mark.parametrize("period_s", [1, 5, 10, 20, 30, 60, 120, 300, 3600, 86_400])
def test_valid_periods(period_s: int) -> None:
    assert check_period(period_s) == period_s


@pytest.mark.parametrize("period_s", [0, -60, 2, 15, 45, 59, 61, 90, 1.5, "60", True])
def test_invalid_periods(period_s: object) -> None:
    with pytest.raises(InvalidParameterValue, match="period must be"):
        check_period(period_s)


ROUNDING_CASES = [
    # name, start, period, now, rounded start
    ("recent-to-minute", "2026-03-01T12:32:34", 300, NOW, "2026-03-01T12:32:00"),
    ("recent-period-60", "2026-03-01T11:05:59.999", 60, NOW, "2026-03-01T11:05:00"),
    ("ten-seconds-within-minute", "2026-03-01T01:05:23", 10, NOW, "2026-03-01T01:05:20"),
    ("five-seconds", "2026-03-01T01:05:23", 5, NOW, "2026-03-01T01:05:20"),
    ("twenty-seconds", "2026-03-01T01:05:59", 20, NOW, "2026-03-01T01:05:40"),
    ("thirty-seconds", "2026-03-01T01:05:29", 30, NOW, "2026-03-01T01:05:00"),
    ("one-second-to-the-second", "2026-03-01T01:05:23.700", 1, NOW, "2026-03-01T01:05:23"),
    ("just-under-15-days", "2026-02-14T12:32:34", 60, NOW, "2026-02-14T12:32:00"),
    ("15-days-to-five-minutes", "2026-02-14T11:32:34", 300, NOW, "2026-02-14T11:30:00"),
    ("62-days-to-five-minutes", "2025-12-31T12:34:56", 300, NOW, "2025-12-31T12:30:00"),
    ("63-days-to-the-hour", "2025-12-27T12:34:56", 3600, NOW, "2025-12-27T12:00:00"),
    ("a-year-to-the-hour", "2025-03-01T12:34:56", 3600, NOW, "2025-03-01T12:00:00"),
]


@pytest.mark.parametrize(
    ("start", "period_s", "now_ms", "expected"),
    [case[1:] for case in ROUNDING_CASES],
    ids=[case[0] for case in ROUNDING_CASES],
)
def test_round_start(start: str, period_s: int, now_ms: int, expected: str) -> None:
    assert round_start(ms(start), period_s, now_ms) == ms(expected)


def test_buckets_start_at_the_rounded_start_not_the_epoch() -> None:
    # Spec §2.1.3: rounded start 12:32, period 300 -> buckets at 12:32, 12:37, 12:42.
    window = plan_window(ms("2026-03-01T11:32:34"), ms("2026-03-01T11:45:00"), 300, NOW)
    assert window.start_ms == ms("2026-03-01T11:32:00")
    assert window.bucket_starts() == [
        ms("2026-03-01T11:32:00"),
        ms("2026-03-01T11:37:00"),
        ms("2026-03-01T11:42:00"),
    ]
    assert window.readable_from_ms == window.start_ms


WINDOW_ERRORS = [
    ("start-after-end", NOW, NOW - 1, 60, None, "before the end"),
    ("start-equals-end", NOW, NOW, 60, None, "before the end"),
    ("more-than-1440", NOW - 1441 * 60_000, NOW, 60, 1440, "1440 datapoints"),
    ("bad-period", NOW - 60_000, NOW, 7, None, "period must be"),
]


@pytest.mark.parametrize(
    ("start_ms", "end_ms", "period_s", "limit", "fragment"),
    [case[1:] for case in WINDOW_ERRORS],
    ids=[case[0] for case in WINDOW_ERRORS],
)
def test_window_errors(
    start_ms: int, end_ms: int, period_s: int, limit: int | None, fragment: str
) -> None:
    with pytest.raises(InvalidParameterValue, match=fragment) as caught:
        plan_window(start_ms, end_ms, period_s, NOW, max_datapoints=limit)
    assert caught.value.code == "InvalidParameterValueException"


def test_exactly_1440_datapoints_is_allowed() -> None:
    window = plan_window(NOW - 1440 * 60_000, NOW, 60, NOW, max_datapoints=1440)
    assert len(window.bucket_starts()) == 1440


HORIZON_CASES = [
    # name, start age (s), period, first readable bucket age (s) or None when all readable
    ("sub-minute-recent", 2 * 3600, 10, None),
    ("sub-minute-older-than-3h", 4 * 3600, 10, 3 * 3600),
    ("minute-within-15d", 14 * DAY_S, 60, None),
    ("minute-older-than-15d", 20 * DAY_S, 60, 15 * DAY_S),
    ("five-minutes-older-than-15d", 20 * DAY_S, 300, None),
    ("five-minutes-older-than-63d", 70 * DAY_S, 300, 63 * DAY_S),
    ("hour-older-than-63d", 70 * DAY_S, 3600, None),
    ("hour-older-than-455d", 500 * DAY_S, 3600, 455 * DAY_S),
]


@pytest.mark.parametrize(
    ("age_s", "period_s", "readable_age_s"),
    [case[1:] for case in HORIZON_CASES],
    ids=[case[0] for case in HORIZON_CASES],
)
def test_too_old_buckets_are_unreadable(
    age_s: int, period_s: int, readable_age_s: int | None
) -> None:
    window = plan_window(NOW - age_s * 1000, NOW, period_s, NOW)
    if readable_age_s is None:
        assert window.readable_from_ms == window.start_ms
    else:
        # The first bucket starting at or after the horizon.
        assert (
            NOW - readable_age_s * 1000
            <= window.readable_from_ms
            < NOW - readable_age_s * 1000 + period_s * 1000
        )
        assert (window.readable_from_ms - window.start_ms) % (period_s * 1000) == 0


def test_tiers_are_configurable_and_use_the_evaluation_instant() -> None:
    tiers = Tiers(minute_ms=30 * DAY_S * 1000)
    at = NOW - 100 * DAY_S * 1000  # an alarm evaluated "at" an old instant
    window = plan_window(at - 20 * DAY_S * 1000, at, 60, at, tiers=tiers)
    assert window.readable_from_ms == window.start_ms
