"""What ``watchkeep audit verify`` found, and its text and JSON renderings (spec audit §4.2.8).

The finding codes are a stable API: scripts and alarms match on them. No I/O here.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

ERROR, WARNING, INFO = "error", "warning", "info"

SEVERITIES = {
    "DIGEST_MOVED": ERROR,
    "DIGEST_FORMAT_INVALID": ERROR,
    "DIGEST_KEY_UNTRUSTED": ERROR,
    "DIGEST_SIGNATURE_INVALID": ERROR,
    "DIGEST_MISSING": ERROR,
    "DIGEST_CHAIN_BROKEN": ERROR,
    "SEGMENT_MISSING": ERROR,
    "SEGMENT_PRUNED": INFO,
    "SEGMENT_HASH_MISMATCH": ERROR,
    "SEGMENT_UNREADABLE": ERROR,
    "SEGMENT_UNREFERENCED": ERROR,
    "EVENT_MODIFIED": ERROR,
    "PROJECTION_MISMATCH": ERROR,
    "EVENT_MISSING": ERROR,
    "EVENT_INSERTED": ERROR,
    "EVENT_DUPLICATE": ERROR,
    "EVENT_REORDERED": ERROR,
    "CHAIN_BREAK": ERROR,
    "CHAIN_HEAD_MISMATCH": ERROR,
    "CHAIN_REWRITTEN": ERROR,
    "TAIL_TRUNCATED": ERROR,
    "TAIL_UNSIGNED": INFO,
    "STALE_DIGEST_CHAIN": ERROR,
    "UNCLEAN_SHUTDOWN": WARNING,
    "DOWNTIME": INFO,
    "ANCHOR_AHEAD": ERROR,
    "ANCHOR_MISMATCH": ERROR,
    "LIVE_HEAD_BEHIND": ERROR,
    "LIVE_HEAD_AHEAD": ERROR,
    "CLOCK_REGRESSION": WARNING,
}

EXIT_VALID, EXIT_INVALID, EXIT_CONFIG, EXIT_NO_DIGESTS = 0, 1, 2, 3


class VerifyConfigError(ValueError):
    """Raised when verify cannot run at all: no trusted key, unreadable directory (exit 2)."""


@dataclass(slots=True)
class Finding:
    code: str
    kind: str  # DIGEST, SEGMENT, EVENT, RANGE, TAIL, ANCHOR, SERVER
    message: str
    path: str | None = None
    digest_seq: int | None = None
    seq_start: int | None = None
    seq_end: int | None = None
    event_id: str | None = None
    expected: str | None = None
    actual: str | None = None
    subject: str | None = None  # the text line's middle column, when not derived

    @property
    def severity(self) -> str:
        return SEVERITIES[self.code]

    def to_json(self) -> dict[str, Any]:
        return {
            "code": self.code,
            "severity": self.severity,
            "kind": self.kind,
            "path": self.path,
            "digestSeq": self.digest_seq,
            "seqStart": self.seq_start,
            "seqEnd": self.seq_end,
            "eventId": self.event_id,
            "expected": self.expected,
            "actual": self.actual,
            "message": self.message,
        }

    def line_subject(self) -> str:
        if self.subject is not None:
            return self.subject
        if self.kind == "EVENT" and self.seq_start is not None:
            event = f" eventID={self.event_id}" if self.event_id else ""
            return f"seq={self.seq_start}{event}"
        if self.kind == "RANGE" and self.seq_start is not None:
            return f"seq={self.seq_start}..{self.seq_end}"
        return self.path or "-"


@dataclass(frozen=True, slots=True)
class Valid:
    """An object that passed every check (printed with ``--verbose``)."""

    kind: str
    subject: str


@dataclass(slots=True)
class VerifyReport:
    trail_name: str
    trail_id: str | None
    requested: dict[str, str | None]
    found: dict[str, str | None]
    entries: list[Finding | Valid] = field(default_factory=list)
    digests_total: int = 0
    digests_valid: int = 0
    segments_total: int = 0
    segments_valid: int = 0
    records_total: int = 0
    records_verified: int = 0

    @property
    def findings(self) -> list[Finding]:
        return [e for e in self.entries if isinstance(e, Finding)]

    def codes(self) -> list[str]:
        return [f.code for f in self.findings]

    def count(self, severity: str) -> int:
        return sum(1 for f in self.findings if f.severity == severity)

    @property
    def summary(self) -> dict[str, int]:
        return {
            "digestsValid": self.digests_valid,
            "digestsTotal": self.digests_total,
            "segmentsValid": self.segments_valid,
            "segmentsTotal": self.segments_total,
            "recordsVerified": self.records_verified,
            "recordsTotal": self.records_total,
            "errors": self.count(ERROR),
            "warnings": self.count(WARNING),
            "info": self.count(INFO),
        }

    @property
    def exit_status(self) -> int:
        if self.count(ERROR):
            return EXIT_INVALID
        if self.digests_total == 0:
            return EXIT_NO_DIGESTS
        return EXIT_VALID

    def to_json(self) -> dict[str, Any]:
        return {
            "result": "invalid" if self.count(ERROR) else "valid",
            "trailName": self.trail_name,
            "trailId": self.trail_id,
            "requested": self.requested,
            "found": self.found,
            "summary": self.summary,
            "findings": [f.to_json() for f in self.findings],
        }

    def render_json(self) -> str:
        return json.dumps(self.to_json(), indent=2, ensure_ascii=False)

    def render_text(self, *, verbose: bool = False) -> str:
        frm, to = self.requested.get("start") or "the beginning", self.requested.get("end")
        lines = [f"Verifying trail {self.trail_name} (trail_id {self.trail_id}) from {frm} to {to}"]
        for entry in self.entries:
            if isinstance(entry, Valid):
                if verbose:
                    lines.append(_line(entry.kind, entry.subject, "valid"))
                continue
            status = {ERROR: "INVALID", WARNING: "warning", INFO: "info"}[entry.severity]
            text = f"{status}: {entry.code} {entry.message}".rstrip()
            lines.append(_line(entry.kind, entry.line_subject(), text))
        found_from = self.found.get("start") or "-"
        found_to = self.found.get("end") or "-"
        lines += [
            "",
            f"Results requested for {frm} to {to}",
            f"Results found for {found_from} to {found_to}",
            f"{self.digests_valid}/{self.digests_total} digests valid; "
            f"{self.segments_valid}/{self.segments_total} segments valid; "
            f"{self.records_verified}/{self.records_total} records verified; "
            f"{_plural(self.count(ERROR), 'error')}, {_plural(self.count(WARNING), 'warning')}",
        ]
        return "\n".join(lines)


def _line(kind: str, subject: str, status: str) -> str:
    return f"{kind:<9}{subject}   {status}"


def _plural(n: int, word: str) -> str:
    return f"{n} {word}" if n == 1 else f"{n} {word}s"


def short_hash(value: str | None) -> str:
    return f"{value[:12]}…" if value else "null"


def format_duration(seconds: float) -> str:
    """``1h10m``, ``5m``, ``42s``: how old a digest is, for a human."""
    total = int(seconds)
    days, rest = divmod(total, 86400)
    hours, rest = divmod(rest, 3600)
    minutes, secs = divmod(rest, 60)
    if days:
        return f"{days}d{hours}h"
    if hours:
        return f"{hours}h{minutes}m"
    if minutes:
        return f"{minutes}m{secs}s" if secs else f"{minutes}m"
    return f"{secs}s"


__all__ = [
    "EXIT_CONFIG",
    "EXIT_INVALID",
    "EXIT_NO_DIGESTS",
    "EXIT_VALID",
    "SEVERITIES",
    "Finding",
    "Valid",
    "VerifyConfigError",
    "VerifyReport",
]
