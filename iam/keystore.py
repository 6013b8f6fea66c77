"""Access keys in the DuckDB catalog, and the key ring that authenticates requests with them.

The table functions are plain synchronous functions taking a connection (datasette style);
the caller decides which thread runs them. Only ciphertexts reach the database: the plain
secret lives in memory, in ``KeyRing``'s cache, and nowhere else.
"""

from __future__ import annotations

import hmac
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Final

import duckdb

from core.errors import Unauthenticated
from iam.keys import format_key_pair, generate_key_pair, parse_bearer, parse_key_pair
from iam.secrets import SecretBox

ROOT_PRINCIPAL: Final = "root"
ACTIVE: Final = "Active"
INACTIVE: Final = "Inactive"
KEY_STATUSES: Final = (ACTIVE, INACTIVE)

KEYSTORE_DDL: Final = """
CREATE TABLE IF NOT EXISTS access_keys (
    access_key_id VARCHAR PRIMARY KEY,
    secret_ciphertext BLOB NOT NULL,
    principal VARCHAR NOT NULL,  -- 'root' for the root key, later user ids
    status VARCHAR NOT NULL,     -- 'Active' or 'Inactive'
    created_ms BIGINT NOT NULL,
    last_used_ms BIGINT
)
"""

_COLUMNS = "access_key_id, secret_ciphertext, principal, status, created_ms, last_used_ms"


@dataclass(frozen=True, slots=True)
class AccessKey:
    """One stored access key; the secret is kept only as ciphertext and left out of repr."""

    access_key_id: str
    secret_ciphertext: bytes = field(repr=False)
    principal: str
    status: str
    created_ms: int
    last_used_ms: int | None = None

    @property
    def is_active(self) -> bool:
        return self.status == ACTIVE


@dataclass(frozen=True, slots=True)
class AuthenticatedKey:
    """Who a request's credentials belong to, once ``KeyRing.authenticate`` accepted them."""

    principal: str
    access_key_id: str


def ensure_schema(conn: duckdb.DuckDBPyConnection) -> None:
    """Create the ``access_keys`` table if it does not exist."""
    conn.execute(KEYSTORE_DDL)


def put_key(conn: duckdb.DuckDBPyConnection, key: AccessKey) -> None:
    """Insert ``key``, replacing any stored key with the same id."""
    _check_status(key.status)
    conn.execute(
        f"INSERT OR REPLACE INTO access_keys ({_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?)",
        [
            key.access_key_id,
            key.secret_ciphertext,
            key.principal,
            key.status,
            key.created_ms,
            key.last_used_ms,
        ],
    )


def get_key(conn: duckdb.DuckDBPyConnection, access_key_id: str) -> AccessKey | None:
    """Return the stored key with this id, or None."""
    row = conn.execute(
        f"SELECT {_COLUMNS} FROM access_keys WHERE access_key_id = ?", [access_key_id]
    ).fetchone()
    return None if row is None else _to_key(row)


def list_keys(conn: duckdb.DuckDBPyConnection) -> list[AccessKey]:
    """Return every stored key, oldest first."""
    rows = conn.execute(
        f"SELECT {_COLUMNS} FROM access_keys ORDER BY created_ms, access_key_id"
    ).fetchall()
    return [_to_key(row) for row in rows]


def set_status(conn: duckdb.DuckDBPyConnection, access_key_id: str, status: str) -> bool:
    """Set a key's status to ``Active`` or ``Inactive``; return False if no such key exists."""
    _check_status(status)
    row = conn.execute(
        "UPDATE access_keys SET status = ? WHERE access_key_id = ? RETURNING access_key_id",
        [status, access_key_id],
    ).fetchone()
    return row is not None


class KeyRing:
    """Bootstraps the root key and authenticates ``Authorization`` headers against stored keys.

    ``connect`` returns a connection for one call, which the ring closes afterwards: pass a
    shared database's ``cursor`` method (DuckDB lets one process's threads share a database
    through cursors). The ring is safe to use from several threads at once.
    """

    def __init__(self, box: SecretBox, connect: Callable[[], duckdb.DuckDBPyConnection]) -> None:
        self._box = box
        self._connect = connect
        self._lock = threading.Lock()
        # access key id -> (ciphertext, plain secret); keyed by ciphertext as well, so a key
        # stored again with a new secret is decrypted afresh.
        self._secrets: dict[str, tuple[bytes, str]] = {}
        # access key id -> its row, so the hot path needs no database round trip (it was 15 %
        # of ingest CPU). Only keys that exist are cached; unknown ids always go to the
        # database, so random ids cannot grow this. Key changes go through the ring, which
        # calls ``forget``; a change made behind its back needs a ``forget`` too.
        self._keys: dict[str, AccessKey] = {}

    def forget(self) -> None:
        """Drop cached key rows, so the next lookups read the database."""
        with self._lock:
            self._keys.clear()

    def ensure_root_key(self, admin_key: str | None, now_ms: int) -> str | None:
        """Make sure an active root key exists; return a generated pair to print once, or None.

        With ``admin_key`` (``WKIA…:wks_…``, from ``WATCHKEEP_ADMIN_KEY``) exactly that pair
        becomes the active root key, and every other root key is deactivated. Without it, a
        root key is generated only when no active one exists. Also creates the table, and
        raises ``MasterKeyError`` at once if the master key cannot decrypt the root key.
        """
        with self._connect() as conn:
            ensure_schema(conn)
            conn.begin()
            try:
                generated = self._ensure_root_key(conn, admin_key, now_ms)
                conn.commit()
            except BaseException:
                conn.rollback()
                raise
            finally:
                self.forget()
        return generated

    def authenticate(self, authorization_header: str | None) -> AuthenticatedKey:
        """Return the principal an ``Authorization`` header authenticates, or raise.

        Raises ``Unauthenticated``: the codes of ``parse_bearer``, then
        ``UnrecognizedClientException`` for an unknown or inactive key (details carry
        ``key_status`` for an inactive one, meant for the audit trail only) and
        ``InvalidSignatureException`` for a wrong secret.
        """
        key_id, presented = parse_bearer(authorization_header)
        return self._check(key_id, presented, self._lookup(key_id))

    def authenticate_cached(self, authorization_header: str | None) -> AuthenticatedKey | None:
        """``authenticate`` when it needs no database read or decryption (the key and its
        secret were seen before), so the event loop can call it; else None."""
        key_id, presented = parse_bearer(authorization_header)
        with self._lock:
            key = self._keys.get(key_id)
            cached = self._secrets.get(key_id)
        if key is None or cached is None or cached[0] != key.secret_ciphertext:
            return None
        return self._check(key_id, presented, key)

    def _check(self, key_id: str, presented: str, key: AccessKey | None) -> AuthenticatedKey:
        if key is None or not key.is_active:
            details = {"access_key_id": key_id}
            if key is not None:
                details["key_status"] = key.status
            raise Unauthenticated(
                f"the access key id {key_id} is not recognised: it does not exist or is not active",
                code="UnrecognizedClientException",
                details=details,
            )
        stored = self._secret_of(key)
        if not hmac.compare_digest(stored.encode("utf-8"), presented.encode("utf-8")):
            raise Unauthenticated(
                f"the secret presented for access key id {key_id} is wrong",
                code="InvalidSignatureException",
                details={"access_key_id": key_id},
            )
        return AuthenticatedKey(principal=key.principal, access_key_id=key_id)

    def _lookup(self, key_id: str) -> AccessKey | None:
        with self._lock:
            key = self._keys.get(key_id)
        if key is not None:
            return key
        with self._connect() as conn:
            key = get_key(conn, key_id)
        if key is not None:
            with self._lock:
                self._keys[key_id] = key
        return key

    def _ensure_root_key(
        self, conn: duckdb.DuckDBPyConnection, admin_key: str | None, now_ms: int
    ) -> str | None:
        roots = [k for k in list_keys(conn) if k.principal == ROOT_PRINCIPAL]
        if admin_key is None:
            active = [k for k in roots if k.is_active]
            for key in active:
                self._secret_of(key)  # fail at startup, not on the first request
            if active:
                return None
            key_id, secret = generate_key_pair()
            self._store_root(conn, key_id, secret, now_ms)
            return format_key_pair(key_id, secret)

        key_id, secret = parse_key_pair(admin_key)
        existing = get_key(conn, key_id)
        if existing is not None and existing.principal != ROOT_PRINCIPAL:
            raise ValueError(
                f"the admin key id {key_id} already belongs to principal "
                f"{existing.principal!r}; choose another key id for the root key"
            )
        if existing is None or not self._secret_matches(existing, secret):
            self._store_root(conn, key_id, secret, now_ms)
        elif not existing.is_active:
            set_status(conn, key_id, ACTIVE)
        for key in roots:
            if key.access_key_id != key_id and key.is_active:
                set_status(conn, key.access_key_id, INACTIVE)
        return None

    def _store_root(
        self, conn: duckdb.DuckDBPyConnection, key_id: str, secret: str, now_ms: int
    ) -> None:
        ciphertext = self._box.encrypt(secret)
        put_key(
            conn,
            AccessKey(
                access_key_id=key_id,
                secret_ciphertext=ciphertext,
                principal=ROOT_PRINCIPAL,
                status=ACTIVE,
                created_ms=now_ms,
            ),
        )

    def _secret_matches(self, key: AccessKey, secret: str) -> bool:
        return hmac.compare_digest(self._secret_of(key).encode("utf-8"), secret.encode("utf-8"))

    def _secret_of(self, key: AccessKey) -> str:
        with self._lock:
            cached = self._secrets.get(key.access_key_id)
        if cached is not None and cached[0] == key.secret_ciphertext:
            return cached[1]
        secret = self._box.decrypt(key.secret_ciphertext, access_key_id=key.access_key_id)
        with self._lock:
            self._secrets[key.access_key_id] = (key.secret_ciphertext, secret)
        return secret


def _to_key(row: tuple[Any, ...]) -> AccessKey:
    key_id, ciphertext, principal, status, created_ms, last_used_ms = row
    return AccessKey(key_id, bytes(ciphertext), principal, status, created_ms, last_used_ms)


def _check_status(status: str) -> None:
    if status not in KEY_STATUSES:
        raise ValueError(f"key status must be one of {', '.join(KEY_STATUSES)}, not {status!r}")
