"""Which silence, if any, holds an alarm's actions at an instant (spec §6.6).

A silence is a one-off window (``starts``/``ends``) or a schedule: a five-field cron
expression in a time zone, each firing opening a window of ``duration``. It is active at
``now`` when some firing happened in ``(now - duration, now]``, which APScheduler's cron
trigger answers as "the first firing at or after ``now - duration`` is not after ``now``".
"""

from __future__ import annotations

import functools
import logging
import zoneinfo
from collections.abc import Iterable
from datetime import UTC, datetime, timedelta

from apscheduler.triggers.cron import CronTrigger

from alarms.rules import Schedule, Silence

log = logging.getLogger(__name__)

__all__ = ["active_silences", "is_active"]


def is_active(silence: Silence, now_ms: int) -> bool:
    now = datetime.fromtimestamp(now_ms / 1_000, UTC)
    if silence.schedule is None:
        assert silence.starts is not None and silence.ends is not None
        return silence.starts <= now < silence.ends
    window = timedelta(seconds=silence.schedule.duration)
    since = now - window + timedelta(microseconds=1)
    fire = _trigger(silence.schedule).get_next_fire_time(None, since)
    return fire is not None and fire <= now


def active_silences(silences: Iterable[Silence], now_ms: int) -> list[Silence]:
    """The silences active at ``now_ms``; one that cannot be evaluated counts as inactive."""
    active = []
    for silence in silences:
        try:
            if is_active(silence, now_ms):
                active.append(silence)
        except ValueError:  # refused at load; kept from stopping a round all the same
            log.exception("silence %s cannot be evaluated", silence.id)
    return active


@functools.lru_cache(maxsize=256)
def _trigger(schedule: Schedule) -> CronTrigger:
    return CronTrigger.from_crontab(schedule.cron, timezone=zoneinfo.ZoneInfo(schedule.timezone))
