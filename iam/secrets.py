"""The master key and the encryption of access-key secrets under it.

Secrets are stored encrypted, never hashed, because SigV4 needs the plain secret on the server
(``specs/audit.md`` §10). The master key comes from ``WATCHKEEP_MASTER_KEY`` or from a key file
with mode 0600, created on first start. This module reads and creates that file; it does not
read the environment (the settings pass ``env_value`` in).
"""

from __future__ import annotations

import os
import stat
from pathlib import Path

from cryptography.fernet import Fernet, InvalidToken

_FERNET_KEY_HELP = (
    "a Fernet key is 32 url-safe base64-encoded bytes (44 characters); make one with "
    "python -c 'from cryptography.fernet import Fernet; print(Fernet.generate_key().decode())'"
)


class MasterKeyError(ValueError):
    """Raised when a master key is malformed, or cannot decrypt the secrets stored under another."""


class SecretBox:
    """Encrypts and decrypts access-key secrets with Fernet under the master key."""

    def __init__(self, master_key: bytes) -> None:
        self._fernet = _fernet(master_key, source="the master key")

    def encrypt(self, secret: str) -> bytes:
        """Return the ciphertext of ``secret``; it differs on every call (random IV)."""
        return self._fernet.encrypt(secret.encode("utf-8"))

    def decrypt(self, ciphertext: bytes, *, access_key_id: str = "") -> str:
        """Return the plain secret, or raise ``MasterKeyError`` if this master key cannot."""
        try:
            return self._fernet.decrypt(ciphertext).decode("utf-8")
        except InvalidToken:
            which = f" of access key {access_key_id}" if access_key_id else ""
            raise MasterKeyError(
                f"cannot decrypt the stored secret{which}: it was most likely encrypted under "
                "another master key. Set WATCHKEEP_MASTER_KEY or WATCHKEEP_MASTER_KEY_FILE to "
                "the master key this data directory was created with"
            ) from None

    def __repr__(self) -> str:
        return "SecretBox(<master key hidden>)"


def generate_master_key() -> bytes:
    """Return a fresh Fernet master key (44 url-safe base64 characters)."""
    return Fernet.generate_key()


def load_master_key(
    *, env_value: str | None, key_file: Path, data_dir: Path | None = None
) -> tuple[bytes, list[str]]:
    """Return the master key and the warnings to log at startup.

    ``env_value`` (``WATCHKEEP_MASTER_KEY``) wins when given, and ``key_file`` is then left
    alone. Otherwise ``key_file`` is read, or created with mode 0600 and a fresh key.
    Pass ``data_dir`` to be warned when the key file lies inside it: a backup of the data
    directory would then carry the key that decrypts it.
    """
    if env_value is not None:
        key = env_value.strip().encode("ascii", errors="replace")
        _fernet(key, source="WATCHKEEP_MASTER_KEY")
        return key, []
    warnings: list[str] = []
    if data_dir is not None and _is_inside(key_file, data_dir):
        warnings.append(
            f"master key file {key_file} lies inside the data directory {data_dir}, so a copy "
            "of the data directory can decrypt the stored secrets; move it to another volume "
            "and set WATCHKEEP_MASTER_KEY_FILE"
        )
    if key_file.exists():
        key = key_file.read_bytes().strip()
        _fernet(key, source=f"master key file {key_file}")
        mode = stat.S_IMODE(key_file.stat().st_mode)
        if mode & 0o077:
            warnings.append(
                f"master key file {key_file} has mode {mode:04o}, readable by other users; "
                f"run chmod 600 {key_file}"
            )
        return key, warnings
    return _create_key_file(key_file), warnings


def _create_key_file(key_file: Path) -> bytes:
    key = generate_master_key()
    key_file.parent.mkdir(parents=True, exist_ok=True)
    # O_EXCL: never overwrite a key file that appeared meanwhile (losing it would make every
    # stored secret unreadable); the mode is set at creation, so the key is never exposed.
    fd = os.open(key_file, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        with os.fdopen(fd, "wb") as out:
            out.write(key + b"\n")
            out.flush()
            os.fsync(out.fileno())
    except BaseException:
        key_file.unlink(missing_ok=True)
        raise
    return key


def _fernet(key: bytes, *, source: str) -> Fernet:
    try:
        return Fernet(key)
    except ValueError:  # binascii.Error is a ValueError too
        raise MasterKeyError(f"{source} is not a valid Fernet key: {_FERNET_KEY_HELP}") from None


def _is_inside(path: Path, directory: Path) -> bool:
    return path.resolve().is_relative_to(directory.resolve())
