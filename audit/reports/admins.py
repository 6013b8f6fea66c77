"""Who counts as an admin for Q12 (and which policies Q8 flags): principals whose policies grant
``*``, ``*:*`` or ``iam:*``, by the current IAM state *and* by the policy history in the trail.

Both sides over-approximate on purpose: a policy that ever granted admin, and a user ever
attached to it (directly or through a group), count, and ``Resource``/``Condition`` are ignored.
A review should see everyone who could have acted as an admin. No I/O here.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from audit.reports.model import IamSnapshot

ADMIN_ACTIONS = frozenset({"*", "*:*", "iam:*"})

# The IAM history a report reads from the trail (every successful change up to the range's end).
HISTORY_SQL = """
SELECT seq, event_time, event_name,
       json_extract_string(record_json, '$.requestParameters.name') AS name,
       json_extract_string(record_json, '$.requestParameters.policy') AS policy,
       json_extract_string(record_json, '$.requestParameters.user') AS member,
       CAST(coalesce(json_extract(record_json, '$.responseElements.document'),
                     json_extract(record_json, '$.requestParameters')) AS VARCHAR) AS document
FROM events
WHERE event_source = 'iam.watchkeep' AND error_code IS NULL
  AND event_name IN ('CreatePolicy', 'AttachUserPolicy', 'AttachGroupPolicy', 'AddUserToGroup')
ORDER BY seq
"""


def grants_admin(document: Any) -> bool:
    """True if an ``Allow`` statement names ``*``, ``*:*`` or ``iam:*``, or allows everything
    but (``NotAction``) actions outside IAM."""
    if not isinstance(document, Mapping):
        return False
    statements = document.get("Statement")
    if isinstance(statements, Mapping):
        statements = [statements]
    for statement in statements if isinstance(statements, list) else []:
        if not isinstance(statement, Mapping) or statement.get("Effect") != "Allow":
            continue
        if any(a.lower() in ADMIN_ACTIONS for a in _strings(statement.get("Action"))):
            return True
        excluded = _strings(statement.get("NotAction"))
        if "NotAction" in statement and not any(
            a.lower().startswith("iam:") or a.lower() in ADMIN_ACTIONS for a in excluded
        ):
            return True
    return False


@dataclass(slots=True)
class AdminSet:
    account_id: str
    reasons: dict[str, list[str]] = field(default_factory=dict)  # user name -> why
    policies: set[str] = field(default_factory=set)  # policies that grant (or granted) admin

    def add(self, user: str, reason: str) -> None:
        reasons = self.reasons.setdefault(user, [])
        if reason not in reasons:
            reasons.append(reason)

    def arns(self) -> list[str]:
        return [self.arn(user) for user in sorted(self.reasons)]

    def arn(self, user: str) -> str:
        return f"arn:watchkeep:iam::{self.account_id}:user/{user}"

    def rows(self) -> list[list[Any]]:
        root = [f"arn:watchkeep:iam::{self.account_id}:root", "root", "the root key"]
        return [root] + [[self.arn(u), u, "; ".join(r)] for u, r in sorted(self.reasons.items())]


def admin_set(iam: IamSnapshot, history: Iterable[Mapping[str, Any]]) -> AdminSet:
    """The admins by current policies, plus those the history rows (``HISTORY_SQL``) show."""
    found = AdminSet(iam.account_id)
    for policy in iam.policies:
        if not grants_admin(policy.get("document")):
            continue
        name = str(policy.get("policy_name"))
        found.policies.add(name)
        for target in policy.get("attached_to") or []:
            if target.get("kind") == "user":
                found.add(str(target["name"]), f"policy {name} (attached now)")
            elif target.get("kind") == "group":
                for member in iam.group_members.get(str(target["name"]), ()):
                    found.add(member, f"policy {name} through group {target['name']} (now)")
    _from_history(found, list(history))
    return found


def _from_history(found: AdminSet, rows: list[Mapping[str, Any]]) -> None:
    for row in rows:
        if row["event_name"] == "CreatePolicy" and grants_admin(_loads(row.get("document"))):
            found.policies.add(str(row["name"]))
    group_policies: dict[str, set[str]] = {}
    members: dict[str, set[str]] = {}
    for row in rows:
        event, name = row["event_name"], row.get("name")
        if event == "AttachUserPolicy" and row.get("policy") in found.policies and name:
            found.add(str(name), f"policy {row['policy']} attached {row['event_time']} (trail)")
        elif event == "AttachGroupPolicy" and name:
            group_policies.setdefault(str(name), set()).add(str(row.get("policy")))
        elif event == "AddUserToGroup" and name and row.get("member"):
            members.setdefault(str(name), set()).add(str(row["member"]))
    for group, policies in group_policies.items():
        for policy in sorted(policies & found.policies):
            for member in sorted(members.get(group, ())):
                found.add(member, f"policy {policy} through group {group} (trail)")


def _strings(value: Any) -> list[str]:
    if isinstance(value, str):
        return [value]
    if isinstance(value, list):
        return [v for v in value if isinstance(v, str)]
    return []


def _loads(text: Any) -> Any:
    if not isinstance(text, str):
        return None
    try:
        return json.loads(text)
    except ValueError:
        return None


__all__ = ["ADMIN_ACTIONS", "HISTORY_SQL", "AdminSet", "admin_set", "grants_admin"]
