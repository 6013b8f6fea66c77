"""Time windows of metric reads (spec §2.1, §1.8): valid periods, start rounding, buckets.

Pure functions: the caller passes ``now_ms`` (the request time, or an alarm's evaluation
instant), never the wall clock. Times are epoch milliseconds, periods seconds. No I/O here.

Decisions (WK):

- A 1-second period rounds the start down to the second, like the 5/10/20/30-second periods;
  rounding it to the minute, as the letter of §2.1.2 reads, would return data from before the
  requested start.
- The "too old" rule of §1.8 drops whole buckets: a bucket whose start is older than the horizon
  of the finest tier that can answer the period returns no datapoint.
- Sub-minute periods read only high-resolution data (§1.6: such buckets find no standard data).
- Rolled-up rows feed only buckets they fit whole (``Window.rollup_resolutions``); the data of
  a misaligned bucket in a rolled-up range is missing, like data past a horizon.
"""

from __future__ import annotations

from dataclasses import dataclass

from core.metric_errors import InvalidParameterValue
from store.metric_config import DEFAULT_TIERS, ROLLUP_RESOLUTIONS_S, Tiers

__all__ = [
    "DEFAULT_TIERS",
    "HIGH_RESOLUTION_PERIODS",
    "MAX_STATISTICS_DATAPOINTS",
    "Tiers",
    "Window",
    "check_period",
    "plan_window",
    "round_start",
]

HIGH_RESOLUTION_PERIODS = (1, 5, 10, 20, 30)
MAX_STATISTICS_DATAPOINTS = 1_440  # GetMetricStatistics, spec §2.2
_MINUTE_MS = 60_000


@dataclass(frozen=True, slots=True)
class Window:
    """Buckets ``[start + k*period, start + (k+1)*period)`` cut off at ``end`` (exclusive).

    ``start_ms`` is the rounded start; ``readable_from_ms`` is the first bucket start the data
    tiers can still answer (buckets before it are empty, §1.8).
    """

    start_ms: int
    end_ms: int
    period_s: int
    readable_from_ms: int

    @property
    def period_ms(self) -> int:
        return self.period_s * 1_000

    @property
    def high_resolution_only(self) -> bool:
        return self.period_s < 60

    @property
    def rollup_resolutions(self) -> tuple[int, ...]:
        """The rolled-up tiers (seconds) whose rows fit whole into this window's buckets.

        A rolled-up row stands for ``[ts, ts + tier)`` and cannot be split: it may feed only
        buckets whose period is a multiple of the tier and whose start is on the tier's grid.
        The age rules of §1.8 (``plan_window``) make the data of a readable bucket live in such
        a tier; this guard keeps a misaligned read (an alarm's sliding buckets on old data, a
        roll-up that ran with other horizons) from folding a row into the wrong bucket.
        """
        return tuple(
            tier
            for tier in ROLLUP_RESOLUTIONS_S
            if self.period_s % tier == 0 and self.start_ms % (tier * 1_000) == 0
        )

    def bucket_starts(self) -> list[int]:
        """Every bucket of the window, readable or not: what FILL and TIME_SERIES fill."""
        return list(range(self.start_ms, self.end_ms, self.period_ms))


def check_period(period_s: object) -> int:
    """Spec §2.1.5: 1, 5, 10, 20, 30 or a positive multiple of 60 seconds."""
    if (
        isinstance(period_s, bool)
        or not isinstance(period_s, int)
        or not (period_s in HIGH_RESOLUTION_PERIODS or (period_s > 0 and period_s % 60 == 0))
    ):
        raise InvalidParameterValue(
            f"period must be 1, 5, 10, 20, 30 or a multiple of 60 seconds, not {period_s!r}"
        )
    return period_s


def round_start(start_ms: int, period_s: int, now_ms: int, tiers: Tiers = DEFAULT_TIERS) -> int:
    """Spec §2.1.2: round down to the granularity of the tier the start falls in."""
    if period_s in HIGH_RESOLUTION_PERIODS:
        step = period_s * 1_000  # divides a minute, so "within its minute" is the same
    else:
        age_ms = now_ms - start_ms
        if age_ms < tiers.minute_ms:
            step = _MINUTE_MS
        elif age_ms < tiers.five_minutes_ms:
            step = 5 * _MINUTE_MS
        else:
            step = 60 * _MINUTE_MS
    return start_ms - start_ms % step


def _horizon_ms(period_s: int, tiers: Tiers) -> int:
    """How far back the finest tier that can answer this period reaches."""
    if period_s % 3_600 == 0:
        return tiers.hour_ms
    if period_s % 300 == 0:
        return tiers.five_minutes_ms
    if period_s % 60 == 0:
        return tiers.minute_ms
    return tiers.sub_minute_ms


def plan_window(
    start_ms: int,
    end_ms: int,
    period_s: int,
    now_ms: int,
    *,
    max_datapoints: int | None = None,
    tiers: Tiers = DEFAULT_TIERS,
) -> Window:
    """Validate a read and lay out its buckets (spec §2.1; §2.2's 1,440 with max_datapoints)."""
    check_period(period_s)
    if start_ms >= end_ms:
        raise InvalidParameterValue("the start time must be before the end time")
    if max_datapoints is not None and end_ms - start_ms > max_datapoints * period_s * 1_000:
        raise InvalidParameterValue(
            f"the window divided by the period exceeds {max_datapoints} datapoints: "
            "ask for a larger period or a shorter window"
        )
    rounded = round_start(start_ms, period_s, now_ms, tiers)
    oldest_ms = now_ms - _horizon_ms(period_s, tiers)
    period_ms = period_s * 1_000
    if oldest_ms <= rounded:
        readable = rounded
    else:
        # The first bucket that starts at or after the horizon.
        readable = rounded + -(-(oldest_ms - rounded) // period_ms) * period_ms
    return Window(rounded, end_ms, period_s, readable)
