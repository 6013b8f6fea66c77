"""Sparse time series for metric math: ascending bucket starts and their values. No I/O here.

Every series carries its period, so that two series are only combined when their buckets line
up, and a label for the caller's output. Points whose value is not finite (a division by zero,
an overflow) are dropped on construction: spec §2.6 turns them into missing points.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass

__all__ = ["Series", "align", "map_values"]


@dataclass(frozen=True, slots=True)
class Series:
    timestamps: tuple[int, ...]  # bucket starts, epoch ms, ascending
    values: tuple[float, ...]
    period_s: int
    label: str = ""

    @classmethod
    def of(
        cls,
        points: Mapping[int, float] | Iterable[tuple[int, float]],
        period_s: int,
        label: str = "",
    ) -> Series:
        """A series from (timestamp, value) pairs in any order; non-finite values are dropped."""
        pairs = points.items() if isinstance(points, Mapping) else points
        kept = sorted((int(t), float(v)) for t, v in pairs if math.isfinite(v))
        return cls(tuple(t for t, _ in kept), tuple(v for _, v in kept), period_s, label)

    def points(self) -> dict[int, float]:
        return dict(zip(self.timestamps, self.values, strict=True))

    def relabel(self, label: str) -> Series:
        return Series(self.timestamps, self.values, self.period_s, label)


def map_values(series: Series, function: Callable[[float], float]) -> Series:
    """Apply ``function`` to every point; a point whose result is not finite is dropped."""
    return Series.of(
        ((t, _safe(function, v)) for t, v in zip(series.timestamps, series.values, strict=True)),
        series.period_s,
        series.label,
    )


def align(
    left: Series, right: Series, function: Callable[[float, float], float], missing: float = 0.0
) -> Series:
    """Combine two series by timestamp; a side without a point counts as ``missing``."""
    a, b = left.points(), right.points()
    return Series.of(
        ((t, _safe2(function, a.get(t, missing), b.get(t, missing))) for t in a.keys() | b.keys()),
        left.period_s,
        left.label,
    )


def _safe(function: Callable[[float], float], value: float) -> float:
    try:
        return function(value)
    except (ArithmeticError, ValueError):
        return math.nan


def _safe2(function: Callable[[float, float], float], left: float, right: float) -> float:
    # ZeroDivisionError, OverflowError and math domain errors all become a missing point.
    try:
        return function(left, right)
    except (ArithmeticError, ValueError):
        return math.nan
