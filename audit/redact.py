"""Redaction of audit records (spec audit §2.5), applied to in-memory objects before anything
is serialized, so no secret can reach the WAL, a segment, a digest or a lookup.

R2: members an operation marks sensitive are dropped or hidden. R3: a key whose name looks like
a credential has its whole value hidden (pagination cursors excepted). R4: strings holding a
known secret format (watchkeep secrets, PEM private keys, JWTs) are hidden wherever they
appear. R7: oversized objects are replaced by a marker, and so are values that have no JSON
form (``omit_not_json``). Every replaced path is reported.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

import orjson

from audit.chain import NOT_JSON_ERRORS, canonical_json

HIDDEN = "HIDDEN_DUE_TO_SECURITY_REASONS"

# How a member an operation marks sensitive is treated (R2): "drop" or "hide".
Treatment = Literal["drop", "hide"]

_DENIED_NAME_PARTS = (
    "password",
    "passwd",
    "secret",
    "token",
    "apikey",
    "authorization",
    "privatekey",
    "credential",
    "cookie",
    "signature",
)
# Names that contain a denied part but are not secrets, each with its reason.
_ALLOWED_NAMES = {
    "nexttoken": "a pagination cursor",
    "sequencetoken": "a CloudWatch Logs ordering cursor",
    "paginationtoken": "a pagination cursor",
    "maxtokens": "a count",
}

_SECRET_VALUE = re.compile(
    r"wks_[A-Za-z0-9_-]{8,}"  # watchkeep secret keys carry a fixed prefix for this reason
    r"|-----BEGIN (?:[A-Z0-9]+ )*PRIVATE KEY-----.*?(?:-----END (?:[A-Z0-9]+ )*PRIVATE KEY-----|$)"
    r"|eyJ[A-Za-z0-9_-]{2,}\.[A-Za-z0-9_-]{2,}\.[A-Za-z0-9_-]*",
    re.DOTALL,
)

MAX_PARAMETERS_BYTES = 100 * 1024
MAX_ADDITIONAL_BYTES = 28 * 1024
MAX_STRING_BYTES = 1024


@dataclass(slots=True)
class Redactor:
    """Collects the redacted paths of one record while its parts are redacted."""

    paths: list[str] = field(default_factory=list)

    def redact(self, value: Any, root: str, sensitive: Mapping[str, str] | None = None) -> Any:
        """A redacted copy of ``value``; ``sensitive`` maps top-level member names (R2)."""
        if value is None:
            return None
        if sensitive and isinstance(value, dict):
            value = dict(value)
            for name, treatment in sensitive.items():
                if name in value:
                    self.paths.append(f"{root}.{name}")
                    if treatment == "drop":
                        del value[name]
                    else:
                        value[name] = HIDDEN
        return self._walk(value, root)

    def scrub_text(self, text: str, path: str) -> str:
        """R4 on a free-text field (``errorMessage``, ``userAgent``), then the 1 KiB cap."""
        scrubbed = _SECRET_VALUE.sub(HIDDEN, text)
        if scrubbed != text:
            self.paths.append(path)
        return truncate_utf8(scrubbed, MAX_STRING_BYTES)

    def _walk(self, value: Any, path: str) -> Any:
        if isinstance(value, dict):
            out: dict[str, Any] = {}
            for key, item in value.items():
                child = f"{path}.{key}"
                if item is not None and looks_secret(str(key)):
                    if item != HIDDEN:
                        self.paths.append(child)
                    out[key] = HIDDEN
                else:
                    out[key] = self._walk(item, child)
            return out
        if isinstance(value, list):
            return [self._walk(item, f"{path}[{i}]") for i, item in enumerate(value)]
        if isinstance(value, str) and _SECRET_VALUE.search(value):
            self.paths.append(path)
            return _SECRET_VALUE.sub(HIDDEN, value)
        return value


def looks_secret(name: str) -> bool:
    """R3: does a member name look like it holds a credential?"""
    normal = name.lower().replace("_", "").replace("-", "")
    if normal in _ALLOWED_NAMES:
        return False
    return any(part in normal for part in _DENIED_NAME_PARTS)


def cap_size(value: Any, limit: int) -> Any:
    """R7: ``value`` itself, or a marker when its serialized form exceeds ``limit`` bytes."""
    if value is None:
        return None
    size: int | None
    try:
        size = len(orjson.dumps(value, default=str))
    except orjson.JSONEncodeError:
        # orjson stops at 254 levels of nesting, which a JSON body may exceed; a record that
        # cannot be built leaves the request without a record and its caller without an answer.
        size = _json_size(value)
    if size is None:
        return not_json_marker(value)
    if size <= limit:
        return value
    return {"omitted": True, "reason": "size", "originalBytes": size}


# The blocks of a record that the recorder builds itself: a member inside them that is not
# JSON is replaced alone, so the status, authorization and sequence number stay in the record.
_OWN_BLOCKS = frozenset({"additionalEventData", "watchkeep"})


def omit_not_json(record: dict[str, Any]) -> tuple[dict[str, Any], list[str]]:
    """``record`` with every member that has no canonical JSON form (NaN, infinities, lone
    surrogates, types JSON lacks, nesting too deep) replaced by a marker, and their paths."""
    paths: list[str] = []
    return _omit_not_json(record, "", paths), paths


def _omit_not_json(block: dict[str, Any], path: str, paths: list[str]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in block.items():
        child = f"{path}.{key}" if path else str(key)
        try:
            canonical_json(value)
        except NOT_JSON_ERRORS:
            if key in _OWN_BLOCKS and isinstance(value, dict):
                out[key] = _omit_not_json(value, child, paths)
            else:
                paths.append(child)
                out[key] = not_json_marker(value)
            continue
        out[key] = value
    return out


def not_json_marker(value: Any) -> dict[str, Any]:
    """The marker that stands for a value the trail cannot store as JSON (as for a body)."""
    marker: dict[str, Any] = {"omitted": True, "reason": "not JSON"}
    size = _json_size(value)
    if size is not None:
        marker["originalBytes"] = size
    return marker


def _json_size(value: Any) -> int | None:
    """The size of ``value`` written as leniently as ``json`` can (NaN as ``NaN``)."""
    try:
        return len(json.dumps(value, default=str, ensure_ascii=False).encode("utf-8", "replace"))
    except NOT_JSON_ERRORS:
        return None


def truncate_utf8(text: str, limit: int) -> str:
    """``text`` cut to at most ``limit`` UTF-8 bytes, on a character boundary."""
    data = text.encode("utf-8")
    if len(data) <= limit:
        return text
    return data[:limit].decode("utf-8", errors="ignore")
