"""The digest format (spec audit §4.2.4), shared by the digester and ``verify``: payload keys,
reasons, file names, timestamps, and reading digest files. No writing here.
"""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson

DIGEST_FORMAT = "wk-audit-digest-1"
REASONS = ("startup", "scheduled", "shutdown", "manual", "key-rotation", "retention")
DIGEST_KEYS = (
    "digestFormat",
    "trailId",
    "trailName",
    "accountId",
    "region",
    "digestSeq",
    "digestPath",
    "reason",
    "digestStartTime",
    "digestEndTime",
    "firstEventSeq",
    "lastEventSeq",
    "eventCount",
    "chainHeadSeq",
    "chainHeadHash",
    "oldestEventTime",
    "newestEventTime",
    "segments",
    "previousDigestSeq",
    "previousDigestPath",
    "previousDigestSha256",
    "previousDigestSignature",
    "signatureAlgorithm",
    "publicKeyFingerprint",
    "nextPublicKeyFingerprint",
    "retention",
)
SEGMENT_KEYS = (
    "path",
    "sha256",
    "byteSize",
    "firstSeq",
    "lastSeq",
    "eventCount",
    "firstPrevHash",
    "lastEntryHash",
    "oldestEventTime",
    "newestEventTime",
    "checkpoints",
)


def format_time(ts: float | datetime) -> str:
    at = ts if isinstance(ts, datetime) else datetime.fromtimestamp(ts, UTC)
    return at.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def parse_time(text: str) -> datetime:
    return datetime.strptime(text, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC)


def digest_relpath(trail_name: str, digest_seq: int, end_time: str) -> str:
    end = parse_time(end_time)
    return (
        f"digests/{end.strftime('%Y/%m/%d')}/"
        f"{trail_name}_{digest_seq:08d}_{end.strftime('%Y%m%dT%H%M%SZ')}.json"
    )


def list_digest_files(root: Path) -> list[Path]:
    return sorted(p for p in (root / "digests").rglob("*.json") if not p.name.startswith("."))


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        while chunk := handle.read(1 << 20):
            digest.update(chunk)
    return digest.hexdigest()


def read_signature(path: Path) -> dict[str, Any] | None:
    """The parsed ``<digest>.sig`` next to ``path``, or None if absent or malformed."""
    try:
        item = orjson.loads((path.parent / f"{path.name}.sig").read_bytes())
    except (OSError, orjson.JSONDecodeError):
        return None
    return item if isinstance(item, dict) else None


__all__ = [
    "DIGEST_FORMAT",
    "DIGEST_KEYS",
    "REASONS",
    "SEGMENT_KEYS",
    "digest_relpath",
    "format_time",
    "list_digest_files",
    "parse_time",
    "read_signature",
    "sha256_file",
]
