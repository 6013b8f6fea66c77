"""Anchors (spec audit §4.2.6): copies of each digest's head kept outside the data directory.

After every digest each sink receives one JSON object (``anchor_record``). ``file:/path``
appends it as a JSONL line and fsyncs (put the file on another volume or a WORM mount);
``stdout`` prints it; ``http(s)://url`` POSTs it, retried. ``read_anchor_file`` is what
``verify`` uses to learn how far the trail had got.
"""

from __future__ import annotations

import json
import os
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import httpx

from audit.chain import record_bytes

ANCHOR_KEYS = (
    "trailId",
    "digestSeq",
    "digestEndTime",
    "digestSha256",
    "signature",
    "chainHeadSeq",
    "chainHeadHash",
)


class Anchor(Protocol):
    name: str

    def deliver(self, record: dict[str, Any]) -> None:
        """Send one anchor record; raise ``OSError`` or ``httpx.HTTPError`` on failure."""


class FileAnchor:
    def __init__(self, path: Path) -> None:
        self.path = path
        self.name = f"file:{path}"

    def deliver(self, record: dict[str, Any]) -> None:
        line = record_bytes(record) + b"\n"
        # O_APPEND: a single write of a whole line, so concurrent writers never interleave.
        fd = os.open(self.path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o640)
        try:
            os.write(fd, line)
            os.fsync(fd)
        finally:
            os.close(fd)


class StdoutAnchor:
    name = "stdout"

    def deliver(self, record: dict[str, Any]) -> None:
        sys.stdout.write(record_bytes(record).decode("utf-8") + "\n")
        sys.stdout.flush()


class HttpAnchor:
    def __init__(self, url: str, *, attempts: int = 3, timeout_s: float = 5.0) -> None:
        self.url = url
        self.name = url
        self._attempts = attempts
        self._timeout_s = timeout_s

    def deliver(self, record: dict[str, Any]) -> None:
        for attempt in range(self._attempts):
            try:
                response = httpx.post(
                    self.url,
                    content=record_bytes(record),
                    headers={"Content-Type": "application/json"},
                    timeout=self._timeout_s,
                )
                response.raise_for_status()
                return
            except httpx.HTTPError:
                if attempt + 1 == self._attempts:
                    raise
                time.sleep(0.5 * 2**attempt)


def parse_anchor(spec: str) -> Anchor:
    """An anchor from its setting: ``file:/path``, ``stdout`` or an ``http(s)://`` URL."""
    if spec == "stdout":
        return StdoutAnchor()
    if spec.startswith("file:"):
        return FileAnchor(Path(spec.removeprefix("file:")))
    if spec.startswith(("http://", "https://")):
        return HttpAnchor(spec)
    raise ValueError(f"unknown audit anchor {spec!r}: use file:/path, stdout or an http(s) URL")


def anchor_record(payload: dict[str, Any], payload_sha256: str, signature: str) -> dict[str, Any]:
    return {
        "trailId": payload["trailId"],
        "digestSeq": payload["digestSeq"],
        "digestEndTime": payload["digestEndTime"],
        "digestSha256": payload_sha256,
        "signature": signature,
        "chainHeadSeq": payload["chainHeadSeq"],
        "chainHeadHash": payload["chainHeadHash"],
    }


@dataclass(slots=True)
class AnchorFile:
    """What ``read_anchor_file`` found: the anchor records, and the lines that are not one."""

    path: Path
    records: list[dict[str, Any]] = field(default_factory=list)
    malformed: list[tuple[int, str]] = field(default_factory=list)  # (line number, why)


def read_anchor_file(path: Path) -> AnchorFile:
    """The anchor records of a JSONL file; a torn last line (no newline yet) is skipped.

    Any other line that is not an anchor record is listed in ``malformed``: after a crash a torn
    line can end up in the middle, with the next record appended to it, so it is not fatal by
    itself, but the caller must say so. Raises ``OSError`` when the file cannot be read.
    """
    found = AnchorFile(path)
    lines = path.read_bytes().split(b"\n")
    torn = lines.pop()  # b"" when the file ends with a newline
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        record, problem = _anchor_record(line)
        if record is not None:
            found.records.append(record)
        else:
            found.malformed.append((number, problem))
    last, _problem = _anchor_record(torn) if torn.strip() else (None, "")
    if last is not None:  # whole, only the newline is still to come
        found.records.append(last)
    return found


def _anchor_record(line: bytes) -> tuple[dict[str, Any] | None, str]:
    try:
        item = json.loads(line)
    except ValueError:
        return None, "not JSON"
    if not isinstance(item, dict):
        return None, "not a JSON object"
    missing = [k for k in ANCHOR_KEYS if k not in item]
    if missing:
        return None, f"no {', '.join(missing)}"
    for key in ("digestSeq", "chainHeadSeq"):
        value = item[key]
        if not isinstance(value, int) or isinstance(value, bool) or value < 0:
            return None, f"{key} {value!r} is not a sequence number"
    for key in ("trailId", "digestSha256"):
        if not isinstance(item[key], str):
            return None, f"{key} {item[key]!r} is not a string"
    return item, ""


__all__ = [
    "Anchor",
    "AnchorFile",
    "FileAnchor",
    "HttpAnchor",
    "StdoutAnchor",
    "anchor_record",
    "parse_anchor",
    "read_anchor_file",
]
