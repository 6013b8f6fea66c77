"""Access key pairs: generating them and parsing them out of headers and settings.

A key is an id ``WKIA`` + 16 base32 characters (public: it appears in the audit trail) and a
secret ``wks_`` + 40 url-safe characters (shown once, stored only encrypted). Pure code: no
I/O and no storage here.

Error messages never contain the presented secret, nor anything that might be one: a malformed
key id is not echoed either, because callers sometimes paste the pair the wrong way round.
"""

from __future__ import annotations

import re
import secrets

from core.errors import Unauthenticated

KEY_ID_PREFIX = "WKIA"
SECRET_PREFIX = "wks_"

KEY_ID_RE = re.compile(r"^WKIA[A-Z2-7]{16}$")
SECRET_RE = re.compile(r"^wks_[A-Za-z0-9_-]{40}$")

_BASE32_ALPHABET = "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567"  # RFC 4648, section 6
_KEY_ID_EXPECTED = "expected WKIA followed by 16 characters from A-Z and 2-7"
_SECRET_EXPECTED = "expected wks_ followed by 40 characters from A-Z, a-z, 0-9, '_' and '-'"
_USAGE = "send 'Authorization: Bearer <key id>:<secret>'"
# Only a scheme that looks like one (Basic, AWS4-HMAC-SHA256, Token) is echoed back;
# anything else might be a credential sent without a scheme.
_SCHEME_RE = re.compile(r"^[A-Za-z][A-Za-z0-9-]{0,31}$")


def generate_key_pair() -> tuple[str, str]:
    """Return a fresh ``(key id, secret)`` pair drawn from the ``secrets`` module."""
    key_id = KEY_ID_PREFIX + "".join(secrets.choice(_BASE32_ALPHABET) for _ in range(16))
    # 30 random bytes are exactly 40 url-safe base64 characters, with no padding.
    secret = SECRET_PREFIX + secrets.token_urlsafe(30)
    return key_id, secret


def parse_bearer(authorization: str | None) -> tuple[str, str]:
    """Return ``(key id, secret)`` from an ``Authorization: Bearer WKIA…:wks_…`` header.

    Raises ``Unauthenticated`` with the code the audit spec (§7.5) assigns to each failure:
    ``MissingAuthenticationTokenException`` when there are no credentials,
    ``UnrecognizedClientException`` when the header or key id is malformed, and
    ``InvalidSignatureException`` when a well-formed key id comes with a malformed secret.
    ``details["access_key_id"]`` holds the key id whenever it is well-formed.
    """
    if authorization is None or not authorization.strip():
        raise Unauthenticated(
            f"missing credentials: {_USAGE}", code="MissingAuthenticationTokenException"
        )
    scheme, _, credentials = authorization.strip().partition(" ")
    if scheme.lower() != "bearer":
        bare_id = scheme.partition(":")[0]
        bare_details = {"access_key_id": bare_id} if KEY_ID_RE.match(bare_id) else None
        raise _unrecognized(_describe_wrong_scheme(scheme), details=bare_details)
    credentials = credentials.strip()
    if not credentials:
        raise Unauthenticated(
            f"missing credentials: the Authorization header has nothing after 'Bearer'; {_USAGE}",
            code="MissingAuthenticationTokenException",
        )
    key_id, colon, secret = credentials.partition(":")
    details = {"access_key_id": key_id} if KEY_ID_RE.match(key_id) else None
    if not colon:
        raise _unrecognized(
            "the credentials in the Authorization header have no ':' between key id and "
            f"secret; {_USAGE}",
            details=details,
        )
    if details is None:
        raise _unrecognized(
            f"the key id in the Authorization header is not a watchkeep key id ({_KEY_ID_EXPECTED})"
        )
    if not SECRET_RE.match(secret):
        raise Unauthenticated(
            f"the secret in the Authorization header for key id {key_id} is malformed "
            f"({_SECRET_EXPECTED})",
            code="InvalidSignatureException",
            details=details,
        )
    return key_id, secret


def parse_key_pair(text: str) -> tuple[str, str]:
    """Return ``(key id, secret)`` from a ``WKIA…:wks_…`` string such as ``WATCHKEEP_ADMIN_KEY``.

    Raises ``ValueError`` saying which part is wrong, without repeating the secret.
    """
    key_id, colon, secret = text.strip().partition(":")
    if not colon:
        raise ValueError("a key pair must be '<key id>:<secret>' (WKIA…:wks_…); no ':' found")
    if not KEY_ID_RE.match(key_id):
        raise ValueError(f"the key id of the key pair is malformed ({_KEY_ID_EXPECTED})")
    if not SECRET_RE.match(secret):
        raise ValueError(
            f"the secret of the key pair for key id {key_id} is malformed ({_SECRET_EXPECTED})"
        )
    return key_id, secret


def format_key_pair(key_id: str, secret: str) -> str:
    """Return the ``WKIA…:wks_…`` form that ``parse_key_pair`` and ``Bearer`` accept."""
    return f"{key_id}:{secret}"


def _describe_wrong_scheme(scheme: str) -> str:
    if KEY_ID_RE.match(scheme.partition(":")[0]):
        return f"the Authorization header lacks the 'Bearer ' prefix; {_USAGE}"
    if _SCHEME_RE.match(scheme):
        return (
            f"the Authorization header uses the '{scheme}' scheme, which the native API "
            f"does not accept; {_USAGE}"
        )
    return f"the Authorization header does not use the Bearer scheme; {_USAGE}"


def _unrecognized(message: str, *, details: dict[str, str] | None = None) -> Unauthenticated:
    return Unauthenticated(message, code="UnrecognizedClientException", details=details)
