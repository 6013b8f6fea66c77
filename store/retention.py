"""Which partitions a retention policy expires. Pure: takes values, never reads the clock."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from store.layout import HOUR_MS

DAY_MS = 86_400_000


@dataclass(frozen=True, slots=True)
class Partition:
    group: str
    hour_ms: int


def plan_retention(
    partitions: Iterable[Partition], retention_days: Mapping[str, int | None], now_ms: int
) -> list[Partition]:
    """Partitions whose whole hour lies before their group's retention horizon.

    A partition is dropped only when every event it can hold is older than the horizon, like
    CloudWatch, which expires whole chunks rather than single events. Groups without a policy
    (None) keep everything.
    """
    expired = []
    for partition in partitions:
        days = retention_days.get(partition.group)
        if days is None:
            continue
        if partition.hour_ms + HOUR_MS <= now_ms - days * DAY_MS:
            expired.append(partition)
    return sorted(expired, key=lambda p: (p.group, p.hour_ms))
