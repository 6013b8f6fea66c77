"""The hash chain of the audit trail (spec audit §4.2.2): record bytes, genesis, entry hashes.

Pure functions. ``E(n) = SHA-256("WK-AUDIT-ENTRY-1" 0x00 trail_id u64be(n) E(n-1) SHA-256(R_n))``
binds each record to its position and its trail, so renumbering, reordering or splicing in
rows from another installation all change every later hash.
"""

from __future__ import annotations

import hashlib
import json
import uuid
from typing import Any

GENESIS_TAG = b"WK-AUDIT-GENESIS-1\x00"
ENTRY_TAG = b"WK-AUDIT-ENTRY-1\x00"


# What ``canonical_json`` raises for a value without a canonical form: ValueError for NaN,
# infinities and lone surrogates (UnicodeEncodeError), TypeError for a type JSON lacks,
# RecursionError for nesting deeper than the encoder recurses.
NOT_JSON_ERRORS = (ValueError, TypeError, RecursionError)


def canonical_json(value: Any) -> bytes:
    """``value`` in the canonical form of record bytes (one of ``NOT_JSON_ERRORS`` if none)."""
    text = json.dumps(
        value, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False
    )
    return text.encode("utf-8")


def record_bytes(record: dict[str, Any]) -> bytes:
    """The canonical bytes of a record: what is stored, hashed and returned as-is."""
    return canonical_json(record)


def genesis(trail_id: uuid.UUID) -> bytes:
    """``E(0)``: the hash every trail's chain starts from."""
    return hashlib.sha256(GENESIS_TAG + trail_id.bytes).digest()


def entry_hash(trail_id: uuid.UUID, seq: int, prev: bytes, record_sha256: bytes) -> bytes:
    """``E(seq)``, given ``E(seq - 1)`` and the SHA-256 of the record's bytes."""
    return hashlib.sha256(
        ENTRY_TAG + trail_id.bytes + seq.to_bytes(8, "big") + prev + record_sha256
    ).digest()
