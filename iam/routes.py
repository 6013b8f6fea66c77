"""HTTP routes of the IAM API: users, groups, access keys, managed policies, attachments.

Resources are named in the path, so every call is authorized on its target before its body
is read. A new key's secret appears in exactly one response and never in the audit trail.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any, Literal

from fastapi import APIRouter, Request, Response
from pydantic import BaseModel, ConfigDict

from core.operations import Operation, RequestTarget, operation
from iam.directory import Directory

router = APIRouter(prefix="/api/v1/iam", tags=["iam"])


def _arn(kind: str, param: str) -> Callable[[RequestTarget], list[str]]:
    def resources(target: RequestTarget) -> list[str]:
        return [f"arn:watchkeep:iam::{target.account_id}:{kind}/{target.path_params[param]}"]

    return resources


def _op(
    name: str,
    read_only: bool,
    resources: Callable[[RequestTarget], list[str]] | None = None,
    **extra: Any,
) -> Operation:
    if resources is None:
        return Operation(name, f"iam:{name}", read_only, True, **extra)
    return Operation(name, f"iam:{name}", read_only, True, resources, **extra)


_USER = _arn("user", "name")
_GROUP = _arn("group", "name")
_POLICY = _arn("policy", "name")
_KEY = _arn("access-key", "key_id")

LIST_USERS = _op("ListUsers", True)
GET_USER = _op("GetUser", True, _USER)
CREATE_USER = _op("CreateUser", False, _USER)
DELETE_USER = _op("DeleteUser", False, _USER)
CREATE_ACCESS_KEY = _op(
    "CreateAccessKey",
    False,
    _USER,
    response_sensitive={"secret_access_key": "drop", "key": "drop"},
)
LIST_USER_KEYS = _op("ListAccessKeys", True, _USER)
LIST_KEYS = _op("ListAccessKeys", True)
UPDATE_ACCESS_KEY = _op("UpdateAccessKey", False, _KEY)
DELETE_ACCESS_KEY = _op("DeleteAccessKey", False, _KEY)
LIST_GROUPS = _op("ListGroups", True)
GET_GROUP = _op("GetGroup", True, _GROUP)
CREATE_GROUP = _op("CreateGroup", False, _GROUP)
DELETE_GROUP = _op("DeleteGroup", False, _GROUP)
ADD_USER_TO_GROUP = _op("AddUserToGroup", False, _GROUP)
REMOVE_USER_FROM_GROUP = _op("RemoveUserFromGroup", False, _GROUP)
LIST_POLICIES = _op("ListPolicies", True)
GET_POLICY = _op("GetPolicy", True, _POLICY)
PUT_POLICY = _op("CreatePolicy", False, _POLICY)
DELETE_POLICY = _op("DeletePolicy", False, _POLICY)
ATTACH_USER_POLICY = _op("AttachUserPolicy", False, _USER)
DETACH_USER_POLICY = _op("DetachUserPolicy", False, _USER)
ATTACH_GROUP_POLICY = _op("AttachGroupPolicy", False, _GROUP)
DETACH_GROUP_POLICY = _op("DetachGroupPolicy", False, _GROUP)


def _directory(request: Request) -> Directory:
    return request.app.state.directory  # type: ignore[no-any-return]


async def _run(request: Request, method: str, *args: Any) -> Any:
    return await asyncio.to_thread(getattr(_directory(request), method), *args)


# ---- users -----------------------------------------------------------------------------------


@router.get("/users")
@operation(LIST_USERS)
async def list_users(request: Request) -> dict[str, Any]:
    return {"users": await _run(request, "list_users")}


@router.get("/users/{name}")
@operation(GET_USER)
async def get_user(request: Request, name: str) -> dict[str, Any]:
    return await _run(request, "get_user", name)  # type: ignore[no-any-return]


@router.put("/users/{name}", status_code=201)
@operation(CREATE_USER)
async def create_user(request: Request, name: str) -> dict[str, Any]:
    return await _run(request, "create_user", name)  # type: ignore[no-any-return]


@router.delete("/users/{name}", status_code=204)
@operation(DELETE_USER)
async def delete_user(request: Request, name: str) -> Response:
    await _run(request, "delete_user", name)
    return Response(status_code=204)


# ---- access keys -----------------------------------------------------------------------------


@router.post("/users/{name}/keys", status_code=201)
@operation(CREATE_ACCESS_KEY)
async def create_access_key(request: Request, name: str) -> dict[str, Any]:
    """A new key pair; ``secret_access_key`` is shown in this response only."""
    return await _run(request, "create_access_key", name)  # type: ignore[no-any-return]


@router.get("/users/{name}/keys")
@operation(LIST_USER_KEYS)
async def list_user_keys(request: Request, name: str) -> dict[str, Any]:
    await _run(request, "get_user", name)
    return {"access_keys": await _run(request, "list_access_keys", name)}


@router.get("/keys")
@operation(LIST_KEYS)
async def list_keys(request: Request) -> dict[str, Any]:
    return {"access_keys": await _run(request, "list_access_keys")}


class KeyStatus(BaseModel):
    model_config = ConfigDict(extra="forbid")
    status: Literal["Active", "Inactive"]


@router.patch("/keys/{key_id}")
@operation(UPDATE_ACCESS_KEY)
async def update_access_key(request: Request, key_id: str, body: KeyStatus) -> dict[str, Any]:
    await _run(request, "set_access_key_status", key_id, body.status)
    return {"access_key_id": key_id, "status": body.status}


@router.delete("/keys/{key_id}", status_code=204)
@operation(DELETE_ACCESS_KEY)
async def delete_access_key(request: Request, key_id: str) -> Response:
    await _run(request, "delete_access_key", key_id)
    return Response(status_code=204)


# ---- groups ----------------------------------------------------------------------------------


@router.get("/groups")
@operation(LIST_GROUPS)
async def list_groups(request: Request) -> dict[str, Any]:
    return {"groups": await _run(request, "list_groups")}


@router.get("/groups/{name}")
@operation(GET_GROUP)
async def get_group(request: Request, name: str) -> dict[str, Any]:
    return await _run(request, "get_group", name)  # type: ignore[no-any-return]


@router.put("/groups/{name}", status_code=201)
@operation(CREATE_GROUP)
async def create_group(request: Request, name: str) -> dict[str, Any]:
    return await _run(request, "create_group", name)  # type: ignore[no-any-return]


@router.delete("/groups/{name}", status_code=204)
@operation(DELETE_GROUP)
async def delete_group(request: Request, name: str) -> Response:
    await _run(request, "delete_group", name)
    return Response(status_code=204)


@router.put("/groups/{name}/members/{user}", status_code=204)
@operation(ADD_USER_TO_GROUP)
async def add_member(request: Request, name: str, user: str) -> Response:
    await _run(request, "add_member", name, user)
    return Response(status_code=204)


@router.delete("/groups/{name}/members/{user}", status_code=204)
@operation(REMOVE_USER_FROM_GROUP)
async def remove_member(request: Request, name: str, user: str) -> Response:
    await _run(request, "remove_member", name, user)
    return Response(status_code=204)


# ---- policies --------------------------------------------------------------------------------


@router.get("/policies")
@operation(LIST_POLICIES)
async def list_policies(request: Request) -> dict[str, Any]:
    return {"policies": await _run(request, "list_policies")}


@router.get("/policies/{name}")
@operation(GET_POLICY)
async def get_policy(request: Request, name: str) -> dict[str, Any]:
    return await _run(request, "get_policy", name)  # type: ignore[no-any-return]


@router.put("/policies/{name}")
@operation(PUT_POLICY)
async def put_policy(request: Request, response: Response, name: str) -> dict[str, Any]:
    """Create or replace a managed policy (the body is the JSON document), validated first."""
    document = await request.body()
    policy, created = await _run(request, "put_policy", name, document)
    response.status_code = 201 if created else 200
    return policy  # type: ignore[no-any-return]


@router.delete("/policies/{name}", status_code=204)
@operation(DELETE_POLICY)
async def delete_policy(request: Request, name: str) -> Response:
    await _run(request, "delete_policy", name)
    return Response(status_code=204)


@router.put("/users/{name}/policies/{policy}", status_code=204)
@operation(ATTACH_USER_POLICY)
async def attach_user_policy(request: Request, name: str, policy: str) -> Response:
    await _run(request, "attach", policy, "user", name)
    return Response(status_code=204)


@router.delete("/users/{name}/policies/{policy}", status_code=204)
@operation(DETACH_USER_POLICY)
async def detach_user_policy(request: Request, name: str, policy: str) -> Response:
    await _run(request, "detach", policy, "user", name)
    return Response(status_code=204)


@router.put("/groups/{name}/policies/{policy}", status_code=204)
@operation(ATTACH_GROUP_POLICY)
async def attach_group_policy(request: Request, name: str, policy: str) -> Response:
    await _run(request, "attach", policy, "group", name)
    return Response(status_code=204)


@router.delete("/groups/{name}/policies/{policy}", status_code=204)
@operation(DETACH_GROUP_POLICY)
async def detach_group_policy(request: Request, name: str, policy: str) -> Response:
    await _run(request, "detach", policy, "group", name)
    return Response(status_code=204)
