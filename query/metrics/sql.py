"""SQL pieces that carry their ``?`` parameters, so that composing SQL keeps them in order.

Repeating a piece in a template repeats its parameters too, which hand-kept parameter lists get
wrong as soon as one expression is used twice. No I/O here.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

__all__ = ["Sql", "join", "param", "sql"]


@dataclass(frozen=True, slots=True)
class Sql:
    text: str
    params: tuple[Any, ...] = ()


def param(value: Any, sql_type: str | None = None) -> Sql:
    """A bound value; ``sql_type`` casts it, for VALUES lists whose NULLs need a type."""
    return Sql(f"?::{sql_type}" if sql_type else "?", (value,))


def sql(template: str, *parts: Sql | str) -> Sql:
    """Fill each ``{}`` of ``template`` with a part, gathering parameters in text order."""
    pieces = template.split("{}")
    if len(pieces) != len(parts) + 1:
        raise ValueError(f"{len(pieces) - 1} placeholders for {len(parts)} parts: {template!r}")
    text, params = pieces[0], list[Any]()
    for part, piece in zip(parts, pieces[1:], strict=True):
        part = Sql(part) if isinstance(part, str) else part
        text += part.text + piece
        params += part.params
    return Sql(text, tuple(params))


def join(separator: str, parts: list[Sql]) -> Sql:
    return sql(separator.join("{}" for _ in parts), *parts)
