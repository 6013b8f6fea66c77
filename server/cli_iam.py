"""``watchkeep keys|users|groups|policies``: administer principals over the API."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Annotated, Any

import typer

from iam import format_key_pair, generate_key_pair
from server.cli_http import (
    DEFAULT_SERVER,
    KeyOption,
    ServerOption,
    call,
    client,
    fail,
    print_table,
    seg,
)

keys_app = typer.Typer(help="Access keys.", no_args_is_help=True)
users_app = typer.Typer(help="Users and their policies.", no_args_is_help=True)
groups_app = typer.Typer(help="Groups, members and their policies.", no_args_is_help=True)
policies_app = typer.Typer(help="Managed policies.", no_args_is_help=True)

Json = Annotated[bool, typer.Option("--json", help="Print JSON instead of a table.")]


@keys_app.command("generate")
def keys_generate() -> None:
    """Print a fresh key pair offline, e.g. for WATCHKEEP_ADMIN_KEY."""
    typer.echo(format_key_pair(*generate_key_pair()))


@keys_app.command("create")
def keys_create(
    user: Annotated[str, typer.Option("--user", help="User who gets the key.")],
    server: ServerOption = DEFAULT_SERVER,
    key: KeyOption = None,
) -> None:
    """Create a key for a user and print it (the secret is shown this once only)."""
    created = call(client(server, key), "POST", f"/api/v1/iam/users/{seg(user)}/keys")
    typer.echo(created["key"])


@keys_app.command("list")
def keys_list(
    user: Annotated[str | None, typer.Option("--user", help="Only this user's keys.")] = None,
    as_json: Json = False,
    server: ServerOption = DEFAULT_SERVER,
    key: KeyOption = None,
) -> None:
    """List access keys (ids and status; secrets are never shown again)."""
    path = f"/api/v1/iam/users/{seg(user)}/keys" if user is not None else "/api/v1/iam/keys"
    keys = call(client(server, key), "GET", path)["access_keys"]
    if as_json:
        typer.echo(json.dumps(keys, indent=2))
        return
    rows = [
        (
            k["access_key_id"],
            k["user_name"],
            k["status"],
            _when(k["created_ms"]),
            _last_used(k["last_used"]),
        )
        for k in keys
    ]
    print_table(("key id", "user", "status", "created", "last used"), rows)


def _when(ms: int) -> str:
    return time.strftime("%Y-%m-%d %H:%M:%SZ", time.gmtime(ms / 1000))


def _last_used(use: dict[str, Any] | None) -> str:
    if use is None:
        return "never"
    return f"{_when(use['time_ms'])} {use['operation']} from {use['source_ip']}"


@keys_app.command("deactivate")
def keys_deactivate(
    key_id: str, server: ServerOption = DEFAULT_SERVER, key: KeyOption = None
) -> None:
    """Make a key Inactive (it can be activated again)."""
    call(
        client(server, key), "PATCH", f"/api/v1/iam/keys/{seg(key_id)}", json={"status": "Inactive"}
    )
    typer.echo(f"{key_id} is Inactive")


@keys_app.command("activate")
def keys_activate(
    key_id: str, server: ServerOption = DEFAULT_SERVER, key: KeyOption = None
) -> None:
    """Make an Inactive key Active again."""
    call(client(server, key), "PATCH", f"/api/v1/iam/keys/{seg(key_id)}", json={"status": "Active"})
    typer.echo(f"{key_id} is Active")


@keys_app.command("revoke")
def keys_revoke(key_id: str, server: ServerOption = DEFAULT_SERVER, key: KeyOption = None) -> None:
    """Delete a key for good."""
    call(client(server, key), "DELETE", f"/api/v1/iam/keys/{seg(key_id)}")
    typer.echo(f"{key_id} deleted")


@users_app.command("create")
def users_create(name: str, server: ServerOption = DEFAULT_SERVER, key: KeyOption = None) -> None:
    """Create a user (no keys, no permissions yet)."""
    user = call(client(server, key), "PUT", f"/api/v1/iam/users/{seg(name)}")
    typer.echo(f"created {user['arn']} ({user['user_id']})")


@users_app.command("list")
def users_list(
    as_json: Json = False, server: ServerOption = DEFAULT_SERVER, key: KeyOption = None
) -> None:
    """List users with their groups and attached policies."""
    users = call(client(server, key), "GET", "/api/v1/iam/users")["users"]
    if as_json:
        typer.echo(json.dumps(users, indent=2))
        return
    rows = [
        (u["user_name"], u["user_id"], ", ".join(u["groups"]), ", ".join(u["policies"]))
        for u in users
    ]
    print_table(("user", "id", "groups", "policies"), rows)


@users_app.command("delete")
def users_delete(name: str, server: ServerOption = DEFAULT_SERVER, key: KeyOption = None) -> None:
    """Delete a user with its keys, memberships and attachments."""
    call(client(server, key), "DELETE", f"/api/v1/iam/users/{seg(name)}")
    typer.echo(f"deleted user {name}")


@users_app.command("attach")
def users_attach(
    name: str, policy: str, server: ServerOption = DEFAULT_SERVER, key: KeyOption = None
) -> None:
    """Attach a managed policy to a user."""
    call(client(server, key), "PUT", f"/api/v1/iam/users/{seg(name)}/policies/{seg(policy)}")
    typer.echo(f"attached {policy} to user {name}")


@users_app.command("detach")
def users_detach(
    name: str, policy: str, server: ServerOption = DEFAULT_SERVER, key: KeyOption = None
) -> None:
    """Detach a managed policy from a user."""
    call(client(server, key), "DELETE", f"/api/v1/iam/users/{seg(name)}/policies/{seg(policy)}")
    typer.echo(f"detached {policy} from user {name}")


@groups_app.command("create")
def groups_create(name: str, server: ServerOption = DEFAULT_SERVER, key: KeyOption = None) -> None:
    """Create a group."""
    call(client(server, key), "PUT", f"/api/v1/iam/groups/{seg(name)}")
    typer.echo(f"created group {name}")


@groups_app.command("add")
def groups_add(
    name: str, user: str, server: ServerOption = DEFAULT_SERVER, key: KeyOption = None
) -> None:
    """Add a user to a group."""
    call(client(server, key), "PUT", f"/api/v1/iam/groups/{seg(name)}/members/{seg(user)}")
    typer.echo(f"added {user} to {name}")


@groups_app.command("attach")
def groups_attach(
    name: str, policy: str, server: ServerOption = DEFAULT_SERVER, key: KeyOption = None
) -> None:
    """Attach a managed policy to a group."""
    call(client(server, key), "PUT", f"/api/v1/iam/groups/{seg(name)}/policies/{seg(policy)}")
    typer.echo(f"attached {policy} to group {name}")


@policies_app.command("put")
def policies_put(
    name: str,
    document: Annotated[Path, typer.Argument(help="JSON policy document file.", exists=True)],
    server: ServerOption = DEFAULT_SERVER,
    key: KeyOption = None,
) -> None:
    """Create or replace a managed policy from a JSON file (validated by the server)."""
    try:
        body = document.read_bytes()
    except OSError as exc:
        fail(f"cannot read {document}: {exc.strerror}")
    policy = call(client(server, key), "PUT", f"/api/v1/iam/policies/{seg(name)}", content=body)
    typer.echo(f"stored {policy['arn']}")


@policies_app.command("list")
def policies_list(
    as_json: Json = False, server: ServerOption = DEFAULT_SERVER, key: KeyOption = None
) -> None:
    """List managed policies and where they are attached."""
    policies = call(client(server, key), "GET", "/api/v1/iam/policies")["policies"]
    if as_json:
        typer.echo(json.dumps(policies, indent=2))
        return
    rows = [
        (
            p["policy_name"],
            len(p["document"].get("Statement", [])),
            ", ".join(f"{a['kind']}:{a['name']}" for a in p["attached_to"]),
        )
        for p in policies
    ]
    print_table(("policy", "statements", "attached to"), rows)


@policies_app.command("delete")
def policies_delete(
    name: str, server: ServerOption = DEFAULT_SERVER, key: KeyOption = None
) -> None:
    """Delete a managed policy (and its attachments)."""
    call(client(server, key), "DELETE", f"/api/v1/iam/policies/{seg(name)}")
    typer.echo(f"deleted policy {name}")
