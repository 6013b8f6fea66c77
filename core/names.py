"""Validation of resource names, with CloudWatch's rules and messages that say how to fix them."""

from __future__ import annotations

import re

from core.errors import BadRequest

_GROUP_RE = re.compile(r"[A-Za-z0-9._/#-]{1,512}")
_STREAM_FORBIDDEN = re.compile(r"[:*]")


def validate_group_name(name: str | None) -> str:
    """A log group name: 1-512 of letters, digits and ``. _ / # -`` (as CloudWatch allows)."""
    if not name:
        raise BadRequest("missing log group name: pass ?group=<name>")
    if not _GROUP_RE.fullmatch(name):
        raise BadRequest(
            f"invalid log group name {name[:80]!r}: use 1-512 letters, digits and . _ / # -",
            details={"group": name[:512]},
        )
    return name


def validate_stream_name(name: str | None) -> str:
    """A log stream name: 1-512 characters, none of them ``:`` or ``*``."""
    if not name:
        raise BadRequest("missing log stream name: pass ?stream=<name>")
    if len(name) > 512 or _STREAM_FORBIDDEN.search(name) or not name.isprintable():
        raise BadRequest(
            f"invalid log stream name {name[:80]!r}: use 1-512 printable characters "
            "other than : and *",
            details={"stream": name[:512]},
        )
    return name


def validate_query_definition_name(name: str) -> str:
    """A saved query's name: 1-255 printable characters, neither blank nor starting or ending
    with whitespace (CloudWatch's PutQueryDefinition allows 1-255)."""
    if not (0 < len(name) <= 255 and name.isprintable() and name.strip() == name):
        raise BadRequest(
            f"invalid query definition name {name[:80]!r}: use 1-255 printable characters, "
            "not blank and without whitespace at either end",
            details={"name": name[:255]},
        )
    return name
