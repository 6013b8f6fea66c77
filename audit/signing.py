"""Ed25519 keys that sign audit digests (spec audit §4.2.4-4.2.5).

The private key is a PKCS#8 PEM file (mode 0600) that belongs *outside* the data directory;
the public key travels as PEM or DER ``SubjectPublicKeyInfo``, and is named by its fingerprint:
the lowercase hex SHA-256 of its 32 raw bytes. Trust comes from pinning that fingerprint, never
from a key found next to the data it vouches for.
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

ALGORITHM = "Ed25519"
SIGN_TAG = "WK-AUDIT-DIGEST-1"
KEY_FILE_MODE = 0o600


class SigningKeyError(ValueError):
    """Raised when a key file is missing, unreadable or not an Ed25519 key."""


def generate_key(path: Path, *, create_parents: bool = True) -> Ed25519PrivateKey:
    """Create a new private key in ``path`` (mode 0600); an existing file is never replaced.

    With ``create_parents=False`` (the CLI's ``--out``) a missing directory is an error rather
    than created: a typo in a path should not leave the key somewhere nobody looks.
    """
    key = Ed25519PrivateKey.generate()
    pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    if create_parents:
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise SigningKeyError(
                f"cannot create the directory {path.parent}: {exc.strerror or exc}"
            ) from None
    elif not path.parent.is_dir():
        raise SigningKeyError(f"the directory {path.parent} does not exist; create it first")
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, KEY_FILE_MODE)
    except FileExistsError:
        raise SigningKeyError(f"{path} already exists; choose another --out file") from None
    except OSError as exc:
        raise SigningKeyError(f"cannot create key file {path}: {exc.strerror or exc}") from None
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(pem)
            handle.flush()
            os.fsync(handle.fileno())
    except OSError as exc:
        path.unlink(missing_ok=True)  # a key half written is no key
        raise SigningKeyError(f"cannot write key file {path}: {exc.strerror or exc}") from None
    return key


def load_private_key(path: Path) -> Ed25519PrivateKey:
    """The Ed25519 private key in a PKCS#8 PEM file."""
    data = _read(path)
    try:
        key = serialization.load_pem_private_key(data, password=None)
    except (ValueError, TypeError) as exc:
        raise SigningKeyError(
            f"{path} is not an unencrypted PKCS#8 PEM private key: {exc}"
        ) from None
    if not isinstance(key, Ed25519PrivateKey):
        raise SigningKeyError(f"{path} holds a {type(key).__name__}, not an Ed25519 key")
    return key


def load_public_key(path: Path) -> Ed25519PublicKey:
    """The public key in ``path``: PEM or DER SPKI, a private key file, or a ``keys/*.json``."""
    data = _read(path)
    if data.lstrip().startswith(b"{"):
        try:
            data = json.loads(data)["publicKey"].encode("ascii")
        except (ValueError, KeyError, TypeError, AttributeError):
            raise SigningKeyError(f"{path} is JSON without a PEM `publicKey`") from None
    if b"PRIVATE KEY" in data:
        return load_private_key(path).public_key()
    try:
        if b"-----BEGIN" in data:
            key = serialization.load_pem_public_key(data)
        else:
            key = serialization.load_der_public_key(data)
    except (ValueError, TypeError) as exc:
        raise SigningKeyError(f"{path} is not a PEM or DER public key: {exc}") from None
    if not isinstance(key, Ed25519PublicKey):
        raise SigningKeyError(f"{path} holds a {type(key).__name__}, not an Ed25519 key")
    return key


def ensure_signing_key(
    path: Path, *, create_parents: bool = True
) -> tuple[Ed25519PrivateKey, bool]:
    """The key in ``path``, generated first if the file does not exist; ``True`` if generated."""
    if path.exists():
        return load_private_key(path), False
    return generate_key(path, create_parents=create_parents), True


def fingerprint(key: Ed25519PublicKey) -> str:
    """Lowercase hex SHA-256 of the 32 raw public key bytes."""
    raw = key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    return hashlib.sha256(raw).hexdigest()


def public_key_pem(key: Ed25519PublicKey) -> str:
    return key.public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    ).decode("ascii")


def public_key_der(key: Ed25519PublicKey) -> bytes:
    """DER ``SubjectPublicKeyInfo``: the ``Value`` of ``ListPublicKeys``."""
    return key.public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )


def string_to_sign(
    *,
    trail_id: str,
    digest_seq: int,
    digest_end_time: str,
    digest_path: str,
    payload_sha256: str,
    previous_signature: str | None,
) -> bytes:
    """The signed string of a digest (§4.2.4): ASCII lines, no trailing newline."""
    lines = [
        SIGN_TAG,
        trail_id,
        str(digest_seq),
        digest_end_time,
        digest_path,
        payload_sha256,
        previous_signature if previous_signature is not None else "null",
    ]
    # ASCII for every digest we write; UTF-8 so that a forged, non-ASCII path fails to verify
    # instead of failing to encode.
    return "\n".join(lines).encode("utf-8")


def sign(key: Ed25519PrivateKey, message: bytes) -> str:
    """The hex Ed25519 signature (64 bytes) of ``message``."""
    return key.sign(message).hex()


def verify_signature(key: Ed25519PublicKey, signature_hex: str, message: bytes) -> bool:
    try:
        key.verify(bytes.fromhex(signature_hex), message)
    except (InvalidSignature, ValueError, TypeError):
        return False
    return True


def _read(path: Path) -> bytes:
    try:
        return path.read_bytes()
    except OSError as exc:
        raise SigningKeyError(f"cannot read key file {path}: {exc.strerror or exc}") from None


__all__ = [
    "ALGORITHM",
    "SigningKeyError",
    "ensure_signing_key",
    "fingerprint",
    "generate_key",
    "load_private_key",
    "load_public_key",
    "public_key_der",
    "public_key_pem",
    "sign",
    "string_to_sign",
    "verify_signature",
]
