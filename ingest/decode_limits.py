"""The limits one ingest request is decoded under, shared by the parts of ``ingest.decode``."""

from __future__ import annotations

from dataclasses import dataclass

from core.errors import PayloadTooLarge

__all__ = ["_Limits", "_too_many"]


@dataclass(frozen=True, slots=True)
class _Limits:
    now_ms: int
    max_event_bytes: int
    max_events: int


def _too_many(count: int, limits: _Limits) -> PayloadTooLarge:
    return PayloadTooLarge(
        f"the batch has {count} events; the limit is {limits.max_events} per request; "
        "send smaller batches",
        details={"events": count, "limit": limits.max_events},
    )
