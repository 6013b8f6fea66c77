"""A report request's inputs, checked: the template, its parameters, the time range, the format.

Every error names the parameter and says what to send instead. No I/O here.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from typing import Any

from audit.reports.model import FORMATS, Param, Template
from core.errors import BadRequest
from core.timeparse import parse_range_time

DEFAULT_RANGE = timedelta(hours=24)
# Query-string names that are not template parameters.
RESERVED = frozenset({"template", "start", "end", "format"})


class InvalidTimeRange(BadRequest):
    """Raised when ``start``/``end`` cannot be read or ``start`` is after ``end``."""

    code = "InvalidTimeRangeException"


def pick_template(name: str | None, templates: Mapping[str, Template]) -> Template:
    """The template called ``name``; the error lists the names, with a guess for a typo."""
    names = ", ".join(templates)
    if not name:
        raise BadRequest(f"template is required: one of {names}")
    template = templates.get(name)
    if template is None:
        close = difflib.get_close_matches(name, list(templates), n=1)
        hint = f' Did you mean "{close[0]}"?' if close else ""
        raise BadRequest(f'Unknown report template "{name}".{hint} Templates: {names}')
    return template


def pick_format(value: str | None) -> str:
    fmt = (value or "json").lower()
    if fmt not in FORMATS:
        raise BadRequest(f'Unknown report format "{value}": use one of {", ".join(FORMATS)}')
    return fmt


def resolve_range(
    start: str | None, end: str | None, *, now: datetime
) -> tuple[datetime, datetime]:
    """``[start, end]`` at whole seconds, ``end`` no later than ``now``; defaults: the 24 hours
    up to ``now``."""
    now_ms = int(now.timestamp() * 1000)
    # A report attests what the trail holds: the future holds nothing yet.
    end_at = min(_time(end, "end", now_ms), now) if end else now
    start_at = _time(start, "start", now_ms) if start else end_at - DEFAULT_RANGE
    start_at, end_at = start_at.replace(microsecond=0), end_at.replace(microsecond=0)
    if start_at > end_at:
        raise InvalidTimeRange(
            f"start {start_at:%Y-%m-%dT%H:%M:%SZ} is after end {end_at:%Y-%m-%dT%H:%M:%SZ}: "
            "the time range is empty"
        )
    return start_at, end_at


def parse_params(template: Template, raw: Mapping[str, str]) -> dict[str, Any]:
    """The template's parameters from query-string values, defaults filled in."""
    known = {p.name: p for p in template.params}
    unknown = sorted(set(raw) - set(known) - RESERVED)
    if unknown:
        accepted = ", ".join(known) or "none"
        raise BadRequest(
            f'Template "{template.name}" takes no parameter {", ".join(unknown)} '
            f"(it accepts: {accepted})"
        )
    values: dict[str, Any] = {}
    for name, param in known.items():
        text = raw.get(name)
        if text is None or text == "":
            if param.required:
                raise BadRequest(
                    f'Template "{template.name}" needs {name} ({param.option}): {param.help}'
                )
            values[name] = param.default
            continue
        values[name] = _value(param, text)
    return values


def _value(param: Param, text: str) -> int | str:
    if param.kind == "int":
        try:
            number = int(text)
        except ValueError:
            raise BadRequest(f"{param.name} must be a whole number, not {text[:40]!r}") from None
        if not param.minimum <= number <= param.maximum:
            raise BadRequest(
                f"{param.name} must be between {param.minimum} and {param.maximum}, not {number}"
            )
        return number
    if len(text) > param.max_chars or any(ord(c) < 32 for c in text):
        raise BadRequest(f"{param.name} must be at most {param.max_chars} printable characters")
    if param.pattern is not None and not re.fullmatch(param.pattern, text):
        raise BadRequest(f"{param.name} {text[:80]!r} is not valid: {param.help}")
    return text


def _time(value: str, name: str, now_ms: int) -> datetime:
    try:
        millis = parse_range_time(value, now_ms=now_ms)
    except BadRequest as exc:
        raise InvalidTimeRange(f"{name}: {exc.message}") from None
    return datetime.fromtimestamp(millis / 1000, UTC)


__all__ = [
    "DEFAULT_RANGE",
    "InvalidTimeRange",
    "parse_params",
    "pick_format",
    "pick_template",
    "resolve_range",
]
