"""How an evaluation is worded: state reasons and StateReasonData (spec §5.7). No I/O, no clock.

``alarms.evaluate`` decides; ``Wording`` turns a decision over the buckets of the evaluation
range into an ``Evaluation`` with CloudWatch's reason text and reason data. The helpers format
values and times the way CloudWatch's reasons show them.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from alarms.outcome import Breach, Datapoint, Evaluation, State
from alarms.rules import MetricAlarm
from query.metrics.statistic import Percentile

__all__ = ["Wording", "count_text", "long_time", "plural", "short_time", "value_text", "were"]

_PHRASE = {
    "GreaterThanThreshold": "greater than",
    "GreaterThanOrEqualToThreshold": "greater than or equal to",
    "LessThanThreshold": "less than",
    "LessThanOrEqualToThreshold": "less than or equal to",
}
_SIMPLE = frozenset({"SampleCount", "Average", "Sum", "Minimum", "Maximum"})


@dataclass(slots=True)
class Wording:
    """One evaluation's range: the alarm, the anchor and the real datapoints by age."""

    alarm: MetricAlarm
    anchor: int
    at_ms: int
    period_ms: int
    threshold: float
    by_age: dict[int, Datapoint]
    prev: State

    def keep(self, reason: str) -> Evaluation:
        return Evaluation(self.prev, reason[:1023], {}, False, kept=True)

    def decide(
        self,
        state: State,
        ages: Sequence[int],
        hits: int,
        *,
        count: int,
        fills: Sequence[int] = (),
        word: str = "",
    ) -> Evaluation:
        points = [self.by_age[age] for age in ages]
        listed = ", ".join(f"{value_text(p.value)} ({short_time(p.start_ms)})" for p in points)
        verb = "was" if hits == 1 else "were"
        m = self.alarm.m
        filled = ""
        if fills:
            filled = (
                f", with {len(fills)} missing datapoint{plural(len(fills))} treated as [{word}]"
            )
        reason = (
            f"Threshold Crossed: {hits} out of the last {count} datapoint{plural(count)} "
            f"[{listed}] {verb} {_PHRASE[self.alarm.comparison]} the threshold "
            f"({value_text(self.threshold)}){filled} (minimum {m} datapoint{plural(m)} for "
            "OK -> ALARM transition)."
        )
        return self.result(state, reason, ages, fills=fills)

    def result(
        self, state: State, reason: str, ages: Sequence[int], *, fills: Sequence[int] = ()
    ) -> Evaluation:
        used = tuple(self.by_age[age] for age in ages)
        breach = None
        if used:
            newest = used[0].value
            less = self.alarm.comparison.startswith("LessThan")
            delta = self.threshold - newest if less else newest - self.threshold
            breach = Breach(newest, self.threshold, delta)
        return Evaluation(
            state,
            reason[:1023],
            self.reason_data(ages, fills),
            state != self.prev,
            used,
            breach=breach,
        )

    def reason_data(self, ages: Sequence[int], fills: Sequence[int]) -> dict[str, Any]:
        alarm = self.alarm
        data: dict[str, Any] = {"version": "1.0", "queryDate": long_time(self.at_ms)}
        every = sorted({*ages, *fills}, reverse=True)  # oldest first
        if every:
            data["startDate"] = long_time(self._start(every[0]))
        if alarm.statistic is not None:
            statistic = alarm.parsed_statistic
            key = "statistic" if not isinstance(statistic, Percentile) else "extendedStatistic"
            if key == "statistic" and alarm.statistic not in _SIMPLE:
                key = "extendedStatistic"
            data[key] = alarm.statistic
        data["period"] = alarm.period_s
        if alarm.unit is not None:
            data["unit"] = alarm.unit
        data["recentDatapoints"] = [self.by_age[a].value for a in sorted(self.by_age, reverse=True)]
        data["threshold"] = self.threshold
        evaluated: list[dict[str, Any]] = []
        for age in sorted({*ages, *fills}):  # newest first
            entry: dict[str, Any] = {"timestamp": long_time(self._start(age))}
            point = self.by_age.get(age)
            if point is not None:
                if point.sample_count is not None:
                    entry["sampleCount"] = float(point.sample_count)
                entry["value"] = point.value
            evaluated.append(entry)
        data["evaluatedDatapoints"] = evaluated
        return data

    def _start(self, age: int) -> int:
        return self.anchor - age * self.period_ms


def plural(count: int) -> str:
    return "" if count == 1 else "s"


def were(count: int) -> str:
    return "was" if count == 1 else "were"


def value_text(value: float) -> str:
    return repr(float(value))


def count_text(count: float) -> str:
    return str(int(count)) if float(count).is_integer() else repr(count)


# A round formats the same few bucket starts for every alarm: cached, strftime was a tenth of
# the pure evaluation's time.
@functools.lru_cache(maxsize=4_096)
def short_time(ms: int) -> str:
    """``dd/MM/yy HH:mm:ss`` as in CloudWatch's state reasons."""
    return datetime.fromtimestamp(ms / 1_000, UTC).strftime("%d/%m/%y %H:%M:%S")


@functools.lru_cache(maxsize=4_096)
def long_time(ms: int) -> str:
    """``yyyy-MM-dd'T'HH:mm:ss.SSS+0000`` as in StateReasonData."""
    moment = datetime.fromtimestamp(ms // 1_000, UTC)
    return f"{moment.strftime('%Y-%m-%dT%H:%M:%S')}.{ms % 1_000:03d}+0000"
