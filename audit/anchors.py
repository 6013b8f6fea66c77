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


def read_anchor_file(path: Path) -> list[dict[str, Any]]:
    """The well-formed anchor records of a JSONL file (a torn last line is skipped)."""
    records = []
    for line in path.read_bytes().splitlines():
        try:
            item = json.loads(line)
        except ValueError:
            continue
        if isinstance(item, dict) and all(k in item for k in ANCHOR_KEYS):
            records.append(item)
    return records


__all__ = [
    "Anchor",
    "FileAnchor",
    "HttpAnchor",
    "StdoutAnchor",
    "anchor_record",
    "parse_anchor",
    "read_anchor_file",
]
