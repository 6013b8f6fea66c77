"""Result values as the strings GetQueryResults shows (spec §2.4, §13.1). No I/O here."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

from ingest.flatten import render_number
from query.values import Kind

__all__ = ["render_rows", "render_timestamp", "render_value"]

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def render_timestamp(ms: int) -> str:
    """``2024-06-03 14:05:00.000``: UTC, always with milliseconds."""
    try:
        moment = _EPOCH + timedelta(milliseconds=ms)
    except OverflowError:
        return str(ms)
    return (
        f"{moment.year:04d}-{moment.month:02d}-{moment.day:02d} "
        f"{moment.hour:02d}:{moment.minute:02d}:{moment.second:02d}.{ms % 1000:03d}"
    )


def render_value(value: Any, kind: Kind) -> str | None:
    """One value as text; None for a missing value, which the row leaves out."""
    if value is None:
        return None
    if kind is Kind.TS:
        return render_timestamp(int(value))
    if isinstance(value, bool):
        return "1" if value else "0"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        return render_number(value)
    return str(value)


def render_rows(
    columns: Sequence[tuple[str, Kind]], rows: Sequence[Sequence[Any]]
) -> list[list[dict[str, str]]]:
    """Rows of ``{"field", "value"}`` pairs in projection order, nulls left out (spec §13.1)."""
    out: list[list[dict[str, str]]] = []
    for row in rows:
        pairs: list[dict[str, str]] = []
        for (name, kind), value in zip(columns, row, strict=True):
            text = render_value(value, kind)
            if text is not None:
                pairs.append({"field": name, "value": text})
        out.append(pairs)
    return out
