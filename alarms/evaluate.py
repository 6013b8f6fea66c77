"""The pure evaluation of an alarm at one instant (spec §5.3-§5.7, §5.11.2). No I/O, no clock.

``evaluate(alarm, datapoints, previous_state, at_ms)`` classifies the buckets of the alarm's
evaluation range and applies the decision procedure of §5.5.2 (M out of N over the newest real
datapoints, the four missing-data treatments, the premature-alarm rule of §5.5.3) and the
low-sample percentile rule of §5.6. ``datapoints`` are the buckets of the range that have a
value (``query.metrics.alarm_reads.AlarmBucket`` or ``Datapoint``), read with the range anchored
at ``anchor_ms(alarm, at_ms)``; buckets outside the range are ignored.

An evaluation that *keeps* the state (``ignore`` with nothing to decide on, a premature alarm
under ``ignore``, a low-sample percentile under ``ignore``) returns ``kept=True``: the caller
leaves the state, its reason and its reason data as they were and may record ``reason`` in the
history only. The outcome types are in ``alarms.outcome``, the reason texts and reason data in
``alarms.reasons``: this module decides, that one words the decision.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from fractions import Fraction

from alarms.composite import evaluate_rule
from alarms.outcome import (
    INITIAL_REASON,
    Breach,
    BucketLike,
    Datapoint,
    Evaluation,
    State,
    to_state,
)
from alarms.reasons import Wording, count_text, long_time, plural, short_time, value_text, were
from alarms.rules import BAND_OPERATORS, CompositeAlarm, MetricAlarm
from query.metrics.statistic import Percentile

# The outcome types live in alarms.outcome and the wording in alarms.reasons; importing the
# types from here is the public way.
__all__ = [
    "INITIAL_REASON",
    "Breach",
    "BucketLike",
    "Datapoint",
    "Evaluation",
    "State",
    "anchor_ms",
    "cadence_s",
    "compare",
    "evaluate",
    "evaluate_composite",
    "evaluation_error",
    "is_due",
    "low_sample_limit",
]

_HOUR_MS = 3_600_000


# ---- scheduling helpers (spec §5.3)


def cadence_s(alarm: MetricAlarm) -> int:
    """Seconds between evaluations: 10 (high resolution), 60, or 3600 (window over a day)."""
    period = alarm.period_s
    if period * alarm.n > 86_400:
        return 3_600
    return 10 if period < 60 else 60


def is_due(alarm: MetricAlarm, at_ms: int) -> bool:
    """Whether ``at_ms`` is one of the alarm's evaluation instants."""
    return at_ms % (cadence_s(alarm) * 1_000) == 0


def anchor_ms(alarm: MetricAlarm, at_ms: int) -> int:
    """Where the sliding buckets end: ``at_ms``, or the last full hour for windows over a day."""
    if alarm.period_s * alarm.n > 86_400:
        return at_ms - at_ms % _HOUR_MS
    return at_ms


def compare(operator: str, value: float, threshold: float) -> bool:
    """Whether ``value`` breaches (spec §5.4); the datapoint is the left operand."""
    if operator == "GreaterThanThreshold":
        return value > threshold
    if operator == "GreaterThanOrEqualToThreshold":
        return value >= threshold
    if operator == "LessThanThreshold":
        return value < threshold
    if operator == "LessThanOrEqualToThreshold":
        return value <= threshold
    if operator in BAND_OPERATORS:
        raise ValueError(f"{operator} needs an anomaly band, which is not supported yet")
    raise ValueError(f"unknown comparison operator {operator!r}")


def low_sample_limit(statistic: object) -> int | None:
    """Samples a percentile bucket needs (spec §5.6), exactly; None when there is no limit."""
    if not isinstance(statistic, Percentile):
        return None
    q = Fraction(statistic.basis_points, 10_000)
    if q <= 0 or q >= 1:
        return None
    limit = Fraction(10) / (1 - q) if q >= Fraction(1, 2) else Fraction(10) / q
    return math.ceil(limit)


# ---- the evaluation


def evaluate(
    alarm: MetricAlarm,
    datapoints: Iterable[BucketLike],
    previous_state: str,
    at_ms: int,
) -> Evaluation:
    """Evaluate a metric alarm at ``at_ms`` from the datapoints of its evaluation range."""
    period_ms = alarm.period_s * 1_000
    n, m, length = alarm.n, alarm.m, alarm.range_length
    anchor = anchor_ms(alarm, at_ms)
    threshold = float(alarm.threshold if alarm.threshold is not None else math.nan)
    operator = alarm.comparison
    prev: State = to_state(previous_state)

    by_age: dict[int, Datapoint] = {}
    for point in datapoints:
        offset = anchor - point.start_ms
        if offset <= 0 or offset > length * period_ms or not math.isfinite(point.value):
            continue
        if offset % period_ms:
            raise ValueError(
                f"bucket {point.start_ms} is not aligned to the range anchored at {anchor}"
            )
        by_age[offset // period_ms] = Datapoint(point.start_ms, point.value, point.sample_count)
    ages = sorted(by_age)  # newest first
    breaching = {age: compare(operator, by_age[age].value, threshold) for age in ages}
    ctx = Wording(alarm, anchor, at_ms, period_ms, threshold, by_age, prev)
    real = len(ages)

    if real >= n:  # case 1: the N newest real datapoints decide; missing data is not consulted
        used = ages[:n]
        if skipped := _low_sample(alarm, by_age, used):
            return ctx.keep(skipped)
        hits = sum(breaching[age] for age in used)
        return ctx.decide(("ALARM" if hits >= m else "OK"), used, hits, count=n)

    treatment = alarm.treat_missing_data
    if real == 0:  # case 2
        unknown = f"Insufficient Data: {n} datapoint{plural(n)} {were(n)} unknown."
        if treatment == "missing":
            return ctx.result("INSUFFICIENT_DATA", unknown, [])
        if treatment == "ignore":
            return ctx.keep(unknown)
        word = "Breaching" if treatment == "breaching" else "NonBreaching"
        state: State = "ALARM" if treatment == "breaching" else "OK"
        fills = _fill_ages(by_age, n, n)
        reason = (
            f"Threshold Crossed: no datapoints were received for {n} period{plural(n)} and {n} "
            f"missing datapoint{plural(n)} {were(n)} treated as [{word}]."
        )
        return ctx.result(state, reason, [], fills=fills)

    # case 3: every real datapoint of the range takes part, and N - R buckets are filled
    if skipped := _low_sample(alarm, by_age, ages):
        return ctx.keep(skipped)
    fill_count = n - real
    fills = _fill_ages(by_age, n, fill_count)
    hits = sum(breaching[age] for age in ages)
    good = real - hits
    if treatment == "breaching":
        total = hits + fill_count
        return ctx.decide(
            "ALARM" if total >= m else "OK", ages, total, count=n, fills=fills, word="Breaching"
        )
    if treatment == "notBreaching":
        return ctx.decide(
            "ALARM" if hits >= m else "OK", ages, hits, count=n, fills=fills, word="NonBreaching"
        )
    if hits >= m:
        return ctx.decide("ALARM", ages, hits, count=real)
    premature = _premature(ages, breaching, n, m)
    if premature is not None:
        point = by_age[premature[0]]
        reason = (
            f"Threshold Crossed: a breaching datapoint [{value_text(point.value)} "
            f"({short_time(point.start_ms)})] has stood for {premature[1]} period"
            f"{plural(premature[1])} with no datapoint within the threshold since "
            "(premature-alarm rule)."
        )
        if treatment == "ignore":
            return ctx.keep(reason)
        return ctx.result("ALARM", reason, ages)
    if good >= 1:
        return ctx.decide("OK", ages, hits, count=real)
    reason = (
        f"Insufficient Data: {fill_count} datapoint{plural(fill_count)} {were(fill_count)} unknown."
    )
    if treatment == "ignore":
        return ctx.keep(reason)
    return ctx.result("INSUFFICIENT_DATA", reason, ages)


def evaluation_error(previous_state: str, message: str, *, failure: bool = False) -> Evaluation:
    """The state is left unchanged; ``EVALUATION_ERROR`` or ``EVALUATION_FAILURE`` (spec §5.2)."""
    return Evaluation(
        to_state(previous_state),
        message,
        {},
        False,
        kept=True,
        evaluation_state="EVALUATION_FAILURE" if failure else "EVALUATION_ERROR",
    )


def evaluate_composite(
    alarm: CompositeAlarm, states: Mapping[str, str], previous_state: str, at_ms: int
) -> Evaluation:
    """A composite is ALARM when its rule is true and OK otherwise (spec §5.11.2)."""
    rule = alarm.parsed_rule
    value = evaluate_rule(rule.expr, states)
    state: State = "ALARM" if value else "OK"
    children = [
        {"name": name, "state": {"value": states.get(name, "INSUFFICIENT_DATA")}}
        for name in rule.children
    ]
    listed = ", ".join(
        f"{name} is {states.get(name, 'INSUFFICIENT_DATA')}" for name in rule.children
    )
    reason = f"Composite rule evaluated to {'TRUE' if value else 'FALSE'} ({listed})."
    data = {"version": "1.0", "queryDate": long_time(at_ms), "triggeringAlarms": children}
    return Evaluation(state, reason[:1023], data, state != previous_state)


# ---- internals


def _low_sample(
    alarm: MetricAlarm, by_age: Mapping[int, Datapoint], ages: Sequence[int]
) -> str | None:
    """The note of spec §5.7 when ``ignore`` applies and a used bucket has too few samples."""
    if alarm.evaluate_low_sample_count_percentile != "ignore":
        return None
    statistic = alarm.parsed_statistic
    limit = low_sample_limit(statistic)
    if limit is None:
        return None
    for age in ages:
        count = by_age[age].sample_count
        if count is not None and count < limit:
            assert statistic is not None
            return (
                f"Percentile evaluation skipped: {count_text(count)} samples, fewer than the "
                f"{limit} needed for {statistic.text}."
            )
    return None


def _fill_ages(by_age: Mapping[int, Datapoint], n: int, count: int) -> list[int]:
    """The newest ``count`` empty buckets of the window (ages 1 to N): where fills go."""
    return [age for age in range(1, n + 1) if age not in by_age][:count]


def _premature(
    ages: Sequence[int], breaching: Mapping[int, bool], n: int, m: int
) -> tuple[int, int] | None:
    """Spec §5.5.3: (age of the breaching datapoint, its age in the window) when the rule holds.

    Spares (real datapoints older than the window) move into the window's empty buckets,
    oldest spare into oldest empty bucket. The rule holds when the oldest breaching bucket of
    the resulting window is at least M old and no non-breaching bucket is newer.
    """
    spares = sorted((age for age in ages if age > n), reverse=True)  # oldest first
    empties = [age for age in range(n, 0, -1) if age not in breaching]  # oldest first
    window: dict[int, int] = {age: age for age in ages if age <= n}  # window age -> real age
    for spare, empty in zip(spares, empties, strict=False):
        window[empty] = spare
    oldest = max((slot for slot, real in window.items() if breaching[real]), default=None)
    if oldest is None or oldest < m:
        return None
    if any(slot < oldest and not breaching[real] for slot, real in window.items()):
        return None
    return window[oldest], oldest
