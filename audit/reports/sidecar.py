"""The detached signature of a report file (spec audit §6.2): ``<report>.sig.json``.

The audit key signs, with Ed25519, the SHA-256 of the report's bytes together with what the
sidecar says about them, as ASCII lines (the same key signs digests, whose signed strings start
with another tag, so neither signature can pass for the other)::

    WK-AUDIT-REPORT-1
    <sha256 hex of the report bytes>
    <reportId>
    <template>
    <reportFormat>
    <range.start>
    <range.end>
    <generatedAt>
    <publicKeyFingerprint>

Anyone holding the public key can check a copy years later, offline. No I/O here.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from audit.reports.model import Report
from audit.signing import ALGORITHM, fingerprint, sign, verify_signature

SIGN_TAG = "WK-AUDIT-REPORT-1"
SIDECAR_FORMAT = "wk-audit-report-signature-1"
SIDECAR_SUFFIX = ".sig.json"
# How GenerateReport hands the signature over HTTP, next to the report bytes.
SHA256_HEADER = "x-watchkeep-report-sha256"
SIGNATURE_HEADER = "x-watchkeep-report-signature"
SIDECAR_HEADER = "x-watchkeep-report-sidecar"  # the whole sidecar, base64url JSON
REPORT_ID_HEADER = "x-watchkeep-report-id"
_SIGNED_FIELDS = (
    "sha256",
    "reportId",
    "template",
    "reportFormat",
    "range.start",
    "range.end",
    "generatedAt",
    "publicKeyFingerprint",
)


def sha256_hex(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def sign_report(data: bytes, report: Report, fmt: str, key: Ed25519PrivateKey) -> dict[str, Any]:
    """The sidecar for ``data``, the bytes of ``report`` rendered as ``fmt``."""
    sidecar: dict[str, Any] = {
        "format": SIDECAR_FORMAT,
        "algorithm": ALGORITHM,
        "sha256": sha256_hex(data),
        "reportId": report.report_id,
        "template": report.template.name,
        "reportFormat": fmt,
        "range": {"start": report.start, "end": report.end},
        "generatedAt": report.generated_at,
        "publicKeyFingerprint": fingerprint(key.public_key()),
        "signedString": f"{SIGN_TAG} then, one a line: {', '.join(_SIGNED_FIELDS)}",
    }
    sidecar["signature"] = sign(key, string_to_sign(sidecar))
    return sidecar


def string_to_sign(sidecar: Mapping[str, Any]) -> bytes:
    """The signed lines of a sidecar; ``KeyError``/``TypeError`` if a field is missing."""
    lines = [SIGN_TAG]
    for name in _SIGNED_FIELDS:
        value: Any = sidecar
        for part in name.split("."):
            value = value[part]
        if not isinstance(value, str) or "\n" in value:
            raise TypeError(f"{name} must be a one-line string")
        lines.append(value)
    return "\n".join(lines).encode("utf-8")


def render_sidecar(sidecar: Mapping[str, Any]) -> bytes:
    return (json.dumps(sidecar, indent=2, ensure_ascii=False) + "\n").encode("utf-8")


def check_report(data: bytes, sidecar: Any, public_key: Ed25519PublicKey) -> list[str]:
    """Why ``data`` does not match its sidecar under ``public_key``; empty when it does."""
    if not isinstance(sidecar, Mapping) or sidecar.get("format") != SIDECAR_FORMAT:
        return [f"the sidecar is not a {SIDECAR_FORMAT} document"]
    try:
        message = string_to_sign(sidecar)
    except (KeyError, TypeError) as exc:
        return [f"the sidecar is incomplete: {exc}"]
    problems = []
    expected_key = fingerprint(public_key)
    if sidecar["publicKeyFingerprint"] != expected_key:
        problems.append(
            f"the sidecar names key {sidecar['publicKeyFingerprint']}, not the trusted key "
            f"{expected_key}"
        )
    actual = sha256_hex(data)
    if actual != sidecar["sha256"]:
        problems.append(
            f"the report's SHA-256 is {actual}, the sidecar says {sidecar['sha256']}: the report "
            "was changed after it was signed"
        )
    signature = sidecar.get("signature")
    if not isinstance(signature, str) or not verify_signature(public_key, signature, message):
        problems.append("the signature does not verify with the trusted key")
    return problems


__all__ = [
    "REPORT_ID_HEADER",
    "SHA256_HEADER",
    "SIDECAR_FORMAT",
    "SIDECAR_HEADER",
    "SIDECAR_SUFFIX",
    "SIGNATURE_HEADER",
    "SIGN_TAG",
    "check_report",
    "render_sidecar",
    "sha256_hex",
    "sign_report",
    "string_to_sign",
]
