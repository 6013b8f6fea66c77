"""Principals: users, groups, managed policies and their attachments, in the DuckDB catalog.

The directory answers the one question the request path asks, "which policies apply to the
owner of this key?", from an in-memory cache that every write through the directory clears.
Policy documents are validated when stored (``iam.policy.parse_policy``), never when used.
"""

from __future__ import annotations

import re
import secrets
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Final

import duckdb
import orjson

from core.errors import BadRequest, Conflict, NotFound
from iam.decide import decide
from iam.keys import format_key_pair, generate_key_pair
from iam.keystore import (
    ACTIVE,
    ROOT_PRINCIPAL,
    AccessKey,
    AuthenticatedKey,
    KeyRing,
    get_key,
    list_keys,
    put_key,
    set_status,
)
from iam.matching import RequestContext
from iam.policy import NamedPolicy, parse_policy
from iam.secrets import SecretBox
from iam.usage import KeyUsage

MAX_KEYS_PER_USER: Final = 2
# ASCII only, as IAM's: without the flag \w also takes letters such as é, which the
# error message (and AWS) does not allow.
_NAME_RE = re.compile(r"[\w+=,.@-]{1,64}", re.ASCII)
_POLICY_NAME_RE = re.compile(r"[\w+=,.@-]{1,128}", re.ASCII)
_BASE32 = "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567"

DIRECTORY_DDL: Final = (
    """CREATE TABLE IF NOT EXISTS iam_users (
        user_id VARCHAR PRIMARY KEY, name VARCHAR UNIQUE NOT NULL, created_ms BIGINT NOT NULL)""",
    """CREATE TABLE IF NOT EXISTS iam_groups (
        group_id VARCHAR PRIMARY KEY, name VARCHAR UNIQUE NOT NULL, created_ms BIGINT NOT NULL)""",
    """CREATE TABLE IF NOT EXISTS iam_group_members (
        group_name VARCHAR NOT NULL, user_name VARCHAR NOT NULL,
        PRIMARY KEY (group_name, user_name))""",
    """CREATE TABLE IF NOT EXISTS iam_policies (
        policy_id VARCHAR PRIMARY KEY, name VARCHAR UNIQUE NOT NULL, document VARCHAR NOT NULL,
        created_ms BIGINT NOT NULL, updated_ms BIGINT NOT NULL)""",
    """CREATE TABLE IF NOT EXISTS iam_attachments (
        policy_name VARCHAR NOT NULL, target_kind VARCHAR NOT NULL, target_name VARCHAR NOT NULL,
        PRIMARY KEY (policy_name, target_kind, target_name))""",
)


@dataclass(frozen=True, slots=True)
class Principal:
    """Who made a request, with every policy that applies to them."""

    kind: str  # "Root" or "IAMUser"
    arn: str
    access_key_id: str
    user_id: str | None = None
    user_name: str | None = None
    policies: tuple[NamedPolicy, ...] = ()

    @property
    def is_root(self) -> bool:
        return self.kind == "Root"


class Directory:
    def __init__(
        self,
        connect: Callable[[], duckdb.DuckDBPyConnection],
        keyring: KeyRing,
        box: SecretBox,
        *,
        account_id: str,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._connect = connect
        self._keyring = keyring
        self._box = box
        self._account_id = account_id
        self._clock = clock
        self._lock = threading.Lock()
        # Held while a key is deactivated or deleted: two callers must not each remove one of
        # the last two active root keys, both having seen the other.
        self._key_changes = threading.Lock()
        self._principals: dict[str, Principal] = {}
        self.usage = KeyUsage(connect)

    def ensure_schema(self) -> None:
        with self._connect() as conn:
            for ddl in DIRECTORY_DDL:
                conn.execute(ddl)
        self.usage.ensure_schema()

    # ---- the request path ----------------------------------------------------------------

    def principal(self, key: AuthenticatedKey) -> Principal:
        """The principal that owns an authenticated key, with its policies (cached)."""
        if key.principal == ROOT_PRINCIPAL:
            return Principal("Root", self.root_arn, key.access_key_id)
        with self._lock:
            cached = self._principals.get(key.principal)
        if cached is None:
            cached = self._load_principal(key.principal)
            with self._lock:
                self._principals[key.principal] = cached
        return Principal(
            cached.kind,
            cached.arn,
            key.access_key_id,
            cached.user_id,
            cached.user_name,
            cached.policies,
        )

    @property
    def root_arn(self) -> str:
        return f"arn:watchkeep:iam::{self._account_id}:root"

    def user_arn(self, name: str) -> str:
        return f"arn:watchkeep:iam::{self._account_id}:user/{name}"

    def _load_principal(self, user_id: str) -> Principal:
        with self._connect() as conn:
            row = conn.execute("SELECT name FROM iam_users WHERE user_id = ?", [user_id]).fetchone()
            if row is None:  # the user was deleted while a cached key still named it
                return Principal("IAMUser", "", "", user_id, None, ())
            name = row[0]
            rows = conn.execute(
                """SELECT DISTINCT p.name, p.document FROM iam_policies p
                   JOIN iam_attachments a ON a.policy_name = p.name
                   WHERE (a.target_kind = 'user' AND a.target_name = ?)
                      OR (a.target_kind = 'group' AND a.target_name IN
                          (SELECT group_name FROM iam_group_members WHERE user_name = ?))
                   ORDER BY p.name""",
                [name, name],
            ).fetchall()
        policies = tuple(NamedPolicy(n, parse_policy(doc)) for n, doc in rows)
        return Principal("IAMUser", self.user_arn(name), "", user_id, name, policies)

    def admin_users(self, ctx: RequestContext) -> list[str]:
        """Users whose policies let them manage IAM (the ones who could replace root)."""
        admins = []
        with self._connect() as conn:
            rows = conn.execute("SELECT user_id, name FROM iam_users ORDER BY name").fetchall()
        for user_id, name in rows:
            policies = self._load_principal(user_id).policies
            if decide(policies, "iam:CreateAccessKey", ["*"], ctx, is_root=False).allowed:
                admins.append(name)
        return admins

    def _changed(self) -> None:
        with self._lock:
            self._principals.clear()
        self._keyring.forget()

    # ---- users ---------------------------------------------------------------------------

    def create_user(self, name: str) -> dict[str, Any]:
        _check_name(name, _NAME_RE, "user")
        if name.lower() == "root":
            # The audit trail names the root principal "root": a user of that name could
            # not be told from it in lookups by Username.
            raise BadRequest("the user name 'root' is reserved for the root principal")
        user_id = "WKUA" + "".join(secrets.choice(_BASE32) for _ in range(17))
        with self._connect() as conn:
            if _exists(conn, "iam_users", name):
                raise Conflict(f"a user named {name!r} already exists")
            conn.execute("INSERT INTO iam_users VALUES (?, ?, ?)", [user_id, name, self._now_ms()])
        self._changed()
        return self.get_user(name)

    def get_user(self, name: str) -> dict[str, Any]:
        with self._connect() as conn:
            row = conn.execute(
                "SELECT user_id, name, created_ms FROM iam_users WHERE name = ?", [name]
            ).fetchone()
            if row is None:
                raise NotFound(f"no user named {name!r}")
            groups = [
                r[0]
                for r in conn.execute(
                    "SELECT group_name FROM iam_group_members WHERE user_name = ? ORDER BY 1",
                    [name],
                ).fetchall()
            ]
            policies = _attached(conn, "user", name)
        return {
            "user_name": row[1],
            "user_id": row[0],
            "arn": self.user_arn(row[1]),
            "created_ms": row[2],
            "groups": groups,
            "policies": policies,
        }

    def list_users(self) -> list[dict[str, Any]]:
        with self._connect() as conn:
            names = [
                r[0] for r in conn.execute("SELECT name FROM iam_users ORDER BY name").fetchall()
            ]
        return [self.get_user(name) for name in names]

    def delete_user(self, name: str) -> None:
        """Delete a user with its keys, group memberships and policy attachments."""
        user_id = self._user_id(name)
        with self._connect() as conn:
            conn.begin()
            conn.execute("DELETE FROM access_keys WHERE principal = ?", [user_id])
            conn.execute("DELETE FROM iam_group_members WHERE user_name = ?", [name])
            conn.execute(
                "DELETE FROM iam_attachments WHERE target_kind = 'user' AND target_name = ?",
                [name],
            )
            conn.execute("DELETE FROM iam_users WHERE user_id = ?", [user_id])
            conn.commit()
        self._changed()

    def _user_id(self, name: str) -> str:
        with self._connect() as conn:
            row = conn.execute("SELECT user_id FROM iam_users WHERE name = ?", [name]).fetchone()
        if row is None:
            raise NotFound(f"no user named {name!r}")
        return str(row[0])

    # ---- access keys ---------------------------------------------------------------------

    def create_access_key(self, user_name: str) -> dict[str, Any]:
        """A new key for a user; the only time its secret is ever returned."""
        user_id = self._user_id(user_name)
        with self._connect() as conn:
            owned = [k for k in list_keys(conn) if k.principal == user_id]
            if len(owned) >= MAX_KEYS_PER_USER:
                raise Conflict(
                    f"user {user_name!r} already has {MAX_KEYS_PER_USER} access keys; "
                    "delete one before creating another",
                    details={"limit": MAX_KEYS_PER_USER},
                )
            key_id, secret = generate_key_pair()
            put_key(
                conn,
                AccessKey(key_id, self._box.encrypt(secret), user_id, ACTIVE, self._now_ms()),
            )
        self._changed()
        return {
            "access_key_id": key_id,
            "secret_access_key": secret,
            "key": format_key_pair(key_id, secret),
            "user_name": user_name,
            "status": ACTIVE,
        }

    def list_access_keys(self, user_name: str | None = None) -> list[dict[str, Any]]:
        with self._connect() as conn:
            names = dict(conn.execute("SELECT user_id, name FROM iam_users").fetchall())
            keys = list_keys(conn)
        names[ROOT_PRINCIPAL] = "root"
        uses = self.usage.last_uses()
        listed = []
        for key in keys:
            owner = names.get(key.principal, key.principal)
            if user_name is not None and owner != user_name:
                continue
            use = uses.get(key.access_key_id)
            listed.append(
                {
                    "access_key_id": key.access_key_id,
                    "user_name": owner,
                    "status": key.status,
                    "created_ms": key.created_ms,
                    "last_used": None
                    if use is None
                    else {
                        "time_ms": use.last_used_ms,
                        "operation": use.operation,
                        "source_ip": use.source_ip,
                    },
                }
            )
        return listed

    def set_access_key_status(self, key_id: str, status: str) -> None:
        with self._key_changes, self._connect() as conn:
            if status != ACTIVE:
                _keep_a_root_key(conn, key_id, "deactivate")
            if not set_status(conn, key_id, status):
                raise NotFound(f"no access key {key_id}")
        self._changed()

    def delete_access_key(self, key_id: str) -> None:
        with self._key_changes, self._connect() as conn:
            _keep_a_root_key(conn, key_id, "delete")
            row = conn.execute(
                "DELETE FROM access_keys WHERE access_key_id = ? RETURNING principal", [key_id]
            ).fetchone()
        if row is None:
            raise NotFound(f"no access key {key_id}")
        self.usage.forget(key_id)
        self._changed()

    # ---- groups --------------------------------------------------------------------------

    def create_group(self, name: str) -> dict[str, Any]:
        _check_name(name, _NAME_RE, "group")
        with self._connect() as conn:
            if _exists(conn, "iam_groups", name):
                raise Conflict(f"a group named {name!r} already exists")
            group_id = "WKGA" + "".join(secrets.choice(_BASE32) for _ in range(17))
            conn.execute(
                "INSERT INTO iam_groups VALUES (?, ?, ?)", [group_id, name, self._now_ms()]
            )
        self._changed()
        return self.get_group(name)

    def get_group(self, name: str) -> dict[str, Any]:
        with self._connect() as conn:
            row = conn.execute(
                "SELECT group_id, created_ms FROM iam_groups WHERE name = ?", [name]
            ).fetchone()
            if row is None:
                raise NotFound(f"no group named {name!r}")
            members = [
                r[0]
                for r in conn.execute(
                    "SELECT user_name FROM iam_group_members WHERE group_name = ? ORDER BY 1",
                    [name],
                ).fetchall()
            ]
            policies = _attached(conn, "group", name)
        return {
            "group_name": name,
            "group_id": row[0],
            "created_ms": row[1],
            "members": members,
            "policies": policies,
        }

    def list_groups(self) -> list[dict[str, Any]]:
        with self._connect() as conn:
            names = [
                r[0] for r in conn.execute("SELECT name FROM iam_groups ORDER BY 1").fetchall()
            ]
        return [self.get_group(name) for name in names]

    def delete_group(self, name: str) -> None:
        self.get_group(name)
        with self._connect() as conn:
            conn.begin()
            conn.execute("DELETE FROM iam_group_members WHERE group_name = ?", [name])
            conn.execute(
                "DELETE FROM iam_attachments WHERE target_kind = 'group' AND target_name = ?",
                [name],
            )
            conn.execute("DELETE FROM iam_groups WHERE name = ?", [name])
            conn.commit()
        self._changed()

    def add_member(self, group: str, user: str) -> None:
        self.get_group(group)
        self._user_id(user)
        with self._connect() as conn:
            conn.execute("INSERT OR IGNORE INTO iam_group_members VALUES (?, ?)", [group, user])
        self._changed()

    def remove_member(self, group: str, user: str) -> None:
        with self._connect() as conn:
            row = conn.execute(
                "DELETE FROM iam_group_members WHERE group_name = ? AND user_name = ? "
                "RETURNING user_name",
                [group, user],
            ).fetchone()
        if row is None:
            raise NotFound(f"user {user!r} is not a member of group {group!r}")
        self._changed()

    # ---- policies ------------------------------------------------------------------------

    def put_policy(
        self, name: str, document: str | bytes | dict[str, Any]
    ) -> tuple[dict[str, Any], bool]:
        """Create or replace a managed policy; return it and whether it was created."""
        _check_name(name, _POLICY_NAME_RE, "policy")
        parse_policy(document)  # raises MalformedPolicyDocument before anything is stored
        text = orjson.dumps(document).decode() if isinstance(document, dict) else document
        if isinstance(text, bytes):
            text = text.decode("utf-8-sig")
        now = self._now_ms()
        with self._connect() as conn:
            created = not _exists(conn, "iam_policies", name)
            if created:
                policy_id = "WKPA" + "".join(secrets.choice(_BASE32) for _ in range(17))
                conn.execute(
                    "INSERT INTO iam_policies VALUES (?, ?, ?, ?, ?)",
                    [policy_id, name, text, now, now],
                )
            else:
                conn.execute(
                    "UPDATE iam_policies SET document = ?, updated_ms = ? WHERE name = ?",
                    [text, now, name],
                )
        self._changed()
        return self.get_policy(name), created

    def get_policy(self, name: str) -> dict[str, Any]:
        with self._connect() as conn:
            row = conn.execute(
                "SELECT policy_id, document, created_ms, updated_ms FROM iam_policies "
                "WHERE name = ?",
                [name],
            ).fetchone()
            if row is None:
                raise NotFound(f"no policy named {name!r}")
            attached = conn.execute(
                "SELECT target_kind, target_name FROM iam_attachments WHERE policy_name = ? "
                "ORDER BY 1, 2",
                [name],
            ).fetchall()
        return {
            "policy_name": name,
            "policy_id": row[0],
            "arn": f"arn:watchkeep:iam::{self._account_id}:policy/{name}",
            "document": orjson.loads(row[1]),
            "created_ms": row[2],
            "updated_ms": row[3],
            "attached_to": [{"kind": k, "name": n} for k, n in attached],
        }

    def list_policies(self) -> list[dict[str, Any]]:
        with self._connect() as conn:
            names = [
                r[0] for r in conn.execute("SELECT name FROM iam_policies ORDER BY 1").fetchall()
            ]
        return [self.get_policy(name) for name in names]

    def delete_policy(self, name: str) -> None:
        self.get_policy(name)
        with self._connect() as conn:
            conn.begin()
            conn.execute("DELETE FROM iam_attachments WHERE policy_name = ?", [name])
            conn.execute("DELETE FROM iam_policies WHERE name = ?", [name])
            conn.commit()
        self._changed()

    def attach(self, policy: str, kind: str, target: str) -> None:
        self.get_policy(policy)
        if kind == "user":
            self._user_id(target)
        else:
            self.get_group(target)
        with self._connect() as conn:
            conn.execute(
                "INSERT OR IGNORE INTO iam_attachments VALUES (?, ?, ?)", [policy, kind, target]
            )
        self._changed()

    def detach(self, policy: str, kind: str, target: str) -> None:
        with self._connect() as conn:
            row = conn.execute(
                "DELETE FROM iam_attachments WHERE policy_name = ? AND target_kind = ? "
                "AND target_name = ? RETURNING policy_name",
                [policy, kind, target],
            ).fetchone()
        if row is None:
            raise NotFound(f"policy {policy!r} is not attached to {kind} {target!r}")
        self._changed()

    def _now_ms(self) -> int:
        return int(self._clock() * 1000)


def _check_name(name: str, pattern: re.Pattern[str], kind: str) -> None:
    if not pattern.fullmatch(name):
        raise BadRequest(
            f"invalid {kind} name {name[:80]!r}: use letters, digits and + = , . @ _ -",
            details={"name": name[:128]},
        )


def _exists(conn: duckdb.DuckDBPyConnection, table: str, name: str) -> bool:
    return conn.execute(f"SELECT 1 FROM {table} WHERE name = ?", [name]).fetchone() is not None


def _attached(conn: duckdb.DuckDBPyConnection, kind: str, name: str) -> list[str]:
    rows = conn.execute(
        "SELECT policy_name FROM iam_attachments WHERE target_kind = ? AND target_name = ? "
        "ORDER BY 1",
        [kind, name],
    ).fetchall()
    return [r[0] for r in rows]


class LastRootKey(Conflict):
    """Raised when a change would leave no active root key: every call would then get 401."""

    code = "DeleteConflictException"  # IAM's name for a removal that other state forbids


def _keep_a_root_key(conn: duckdb.DuckDBPyConnection, key_id: str, verb: str) -> None:
    """Refuse to deactivate or delete the only active root key. Only a restart with
    ``WATCHKEEP_ADMIN_KEY`` could let anyone in again, so rotating the root key is done that
    way: the new pair becomes the root key, and the old ones are deactivated."""
    key = get_key(conn, key_id)
    if key is None or key.principal != ROOT_PRINCIPAL or key.status != ACTIVE:
        return
    roots = [k for k in list_keys(conn) if k.principal == ROOT_PRINCIPAL and k.status == ACTIVE]
    if len(roots) == 1:
        raise LastRootKey(
            f"cannot {verb} {key_id}: it is the only active root key, and without it no call "
            "could be authorized; to rotate it, restart with WATCHKEEP_ADMIN_KEY set to a new "
            "key pair (the old root key is then deactivated)"
        )
