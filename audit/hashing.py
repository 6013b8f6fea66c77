"""HMAC of audit values (spec audit §2.5 R6): ``hmac-sha256:v<k>:<hex>`` with a
per-installation key, kept apart from the digest signing key, so an investigator can search
the trail for a known value without the trail holding it."""

from __future__ import annotations

import hashlib
import hmac
import os
import secrets
from pathlib import Path

KEY_VERSION = 1


class AuditHasher:
    def __init__(self, key: bytes, version: int = KEY_VERSION) -> None:
        self._key = key
        self._version = version

    @classmethod
    def from_file(cls, path: Path) -> AuditHasher:
        return cls(random_key_file(path))

    def hash(self, value: str) -> str:
        digest = hmac.new(self._key, value.encode("utf-8"), hashlib.sha256).hexdigest()
        return f"hmac-sha256:v{self._version}:{digest}"


def random_key_file(path: Path) -> bytes:
    """The 32 random bytes kept in ``path``, created (mode 0600) on first use."""
    if not path.exists():
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "wb") as handle:
            handle.write(secrets.token_bytes(32))
    return path.read_bytes()
