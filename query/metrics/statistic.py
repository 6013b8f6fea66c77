"""Statistic names (spec §2.3): ``Average``, ``p99.9``, ``tm90``, ``TM(10%:90%)``, ``PR(:300)``...

Percentages are kept as whole basis points (hundredths of a percent), so that ranks such as
``ceil(q * n)`` are computed exactly: ``p7`` over 100 samples is rank 7, never 8 through a
rounding error of 0.07 * 100. No I/O here.
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from dataclasses import dataclass

from core.metric_errors import InvalidParameterCombination, InvalidParameterValue

__all__ = [
    "SIMPLE_STATISTICS",
    "Percentile",
    "Simple",
    "Statistic",
    "Trimmed",
    "parse_statistic",
    "parse_statistics_request",
]

SIMPLE_STATISTICS = ("SampleCount", "Average", "Sum", "Minimum", "Maximum")
MAX_SIMPLE_REQUESTED = 5  # GetMetricStatistics, spec §2.2
MAX_EXTENDED_REQUESTED = 10
FULL_RANGE_BP = 10_000

_PERCENT = r"(?:100(?:\.0{1,2})?|[0-9]{1,2}(?:\.[0-9]{1,2})?)"
_NUMBER = r"[+-]?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)(?:[eE][+-]?[0-9]+)?"
_SHORT = re.compile(rf"(p|tm|wm|tc|ts)({_PERCENT})", re.IGNORECASE)
_RANGE = re.compile(rf"(tm|wm|tc|ts|pr)\(\s*({_NUMBER}%?)?\s*:\s*({_NUMBER}%?)?\s*\)", re.I)


@dataclass(frozen=True, slots=True)
class Simple:
    """SampleCount, Average, Sum, Minimum or Maximum."""

    text: str


@dataclass(frozen=True, slots=True)
class Percentile:
    """``pNN``: nearest rank, ``x_r`` with ``r = max(1, ceil(q * n))``."""

    text: str
    basis_points: int


@dataclass(frozen=True, slots=True)
class Trimmed:
    """TM, WM, TC, TS or PR over the kept values of spec §2.3.2.

    With ``percent`` the bounds are basis points of the rank range (``floor(a*n) < r <=
    ceil(b*n)``), else sample values (``lower < x <= upper``; None is unbounded).
    """

    text: str
    kind: str  # "TM", "WM", "TC", "TS", "PR"
    percent: bool
    lower: float | None
    upper: float | None


Statistic = Simple | Percentile | Trimmed


def _basis_points(text: str) -> int:
    whole, _, fraction = text.partition(".")
    return int(whole) * 100 + int((fraction + "00")[:2])


def parse_statistic(text: str, *, extended: bool | None = None) -> Statistic:
    """Parse a statistic; ``extended`` True/False accepts only extended/simple ones."""
    if text in SIMPLE_STATISTICS:
        if extended:
            raise InvalidParameterValue(
                f"{text} is a simple statistic: ask for it in statistics, not extended_statistics"
            )
        return Simple(text)
    parsed = _parse_extended(text)
    if parsed is None:
        raise InvalidParameterValue(
            f"unknown statistic {text[:40]!r}: use one of {', '.join(SIMPLE_STATISTICS)}, or "
            "pNN(.NN), tmNN, wmNN, tcNN, tsNN, TM(a%:b%), WM(...), TC(...), TS(...), IQM, PR(v1:v2)"
        )
    if extended is False:
        raise InvalidParameterValue(
            f"{text} is an extended statistic: ask for it in extended_statistics"
        )
    return parsed


def _parse_extended(text: str) -> Statistic | None:
    if text.upper() == "IQM":
        return Trimmed(text, "TM", True, 2_500, 7_500)
    if short := _SHORT.fullmatch(text):
        kind, percent = short.group(1).upper(), _basis_points(short.group(2))
        if kind == "P":
            return Percentile(text, percent)
        return Trimmed(text, kind, True, 0, percent)
    ranged = _RANGE.fullmatch(text)
    if ranged is None:
        return None
    kind, lower, upper = ranged.group(1).upper(), ranged.group(2), ranged.group(3)
    marks = {bound.endswith("%") for bound in (lower, upper) if bound}
    if len(marks) > 1:
        raise InvalidParameterValue(f"{text}: give both bounds as percentages or both as values")
    if marks == {True}:
        if kind == "PR":
            raise InvalidParameterValue(f"{text}: PR takes sample values, not percentages")
        return _percent_range(text, kind, lower, upper)
    low, high = (float(lower) if lower else None), (float(upper) if upper else None)
    for bound in (low, high):
        if bound is not None and not math.isfinite(bound):
            raise InvalidParameterValue(f"{text}: bounds must be finite numbers")
    if low is not None and high is not None and low > high:
        raise InvalidParameterValue(f"{text}: the lower bound is above the upper bound")
    return Trimmed(text, kind, False, low, high)


def _percent_range(text: str, kind: str, lower: str | None, upper: str | None) -> Trimmed:
    bounds = []
    for bound, default in ((lower, 0), (upper, FULL_RANGE_BP)):
        if not bound:
            bounds.append(default)
            continue
        if not re.fullmatch(_PERCENT + "%", bound):
            raise InvalidParameterValue(
                f"{text}: a percentage bound is 0% to 100% with at most two decimals"
            )
        bounds.append(_basis_points(bound[:-1]))
    if bounds[0] > bounds[1]:
        raise InvalidParameterValue(f"{text}: the lower bound is above the upper bound")
    return Trimmed(text, kind, True, bounds[0], bounds[1])


def parse_statistics_request(
    statistics: Sequence[str] | None, extended_statistics: Sequence[str] | None
) -> tuple[Statistic, ...]:
    """GetMetricStatistics (spec §2.2): 1-5 simple statistics or 1-10 extended, not both."""
    if bool(statistics) == bool(extended_statistics):
        raise InvalidParameterCombination(
            "give either statistics or extended_statistics, exactly one of the two"
        )
    texts, extended, limit = (
        (statistics, False, MAX_SIMPLE_REQUESTED)
        if statistics
        else (extended_statistics, True, MAX_EXTENDED_REQUESTED)
    )
    assert texts is not None
    if len(texts) > limit:
        which = "extended_statistics" if extended else "statistics"
        raise InvalidParameterValue(f"{which} may list {limit} statistics at most")
    return tuple(parse_statistic(text, extended=extended) for text in texts)
