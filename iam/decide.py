"""decide(): may this principal perform this action on these resources? (audit spec §7.4)

Evaluation follows the spec's pseudo-code exactly: an explicit deny on any target wins, from
the guardrail policy or the principal's own policies; root then bypasses the allows (but never a
guardrail deny); otherwise every target needs an allow. Order of policies does not change the
outcome, only which statement is reported. Pure code: no I/O, no clock (the time is in ``ctx``).

It runs on every request, so each statement's action and conditions are tested once per call,
and only the resource patterns once per target.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal

from iam.matching import RequestContext
from iam.policy import NamedPolicy, Statement

__all__ = [
    "Decision",
    "DecisionKind",
    "NamedPolicy",
    "RequestContext",
    "allows_any",
    "decide",
    "denial_message",
]

DecisionKind = Literal["Allow", "ExplicitDeny", "ImplicitDeny", "NotEvaluated"]

# A list or describe operation with no target resource authorizes against "*" (spec §7.3).
_NO_TARGET = ("*",)


@dataclass(frozen=True, slots=True)
class Decision:
    """The outcome of ``decide`` for one request, as the audit record and the denial need it.

    ``resources`` are the targets as given (empty for an operation without one).
    ``matched_policy``/``matched_sid`` name the deciding statement: the explicit deny, or the
    first allow of the first target; both are ``None`` for an implicit deny and for root.
    ``denied_resource`` is the target a denial is about (``"*"`` when there was none).
    """

    decision: DecisionKind
    action: str | None
    resources: tuple[str, ...] = ()
    matched_policy: str | None = None
    matched_sid: str | None = None
    denied_resource: str | None = None

    @classmethod
    def not_evaluated(cls, action: str | None = None, resources: Sequence[str] = ()) -> Decision:
        """For a request that failed authentication, or an operation needing no authorization."""
        return cls("NotEvaluated", action, tuple(resources))

    @property
    def allowed(self) -> bool:
        return self.decision == "Allow"

    def to_audit(self) -> dict[str, Any]:
        """Return ``additionalEventData.watchkeep.authorization`` (audit spec §2.4.2).

        Every key is always present, so a denial never has fewer fields than a success.
        """
        return {
            "decision": self.decision,
            "action": self.action,
            "resources": list(self.resources),
            "matchedPolicy": self.matched_policy,
            "matchedSid": self.matched_sid,
        }


def decide(
    policies: Sequence[NamedPolicy],
    action: str,
    resources: Sequence[str],
    ctx: RequestContext,
    *,
    is_root: bool,
    guardrails: Sequence[NamedPolicy] = (),
) -> Decision:
    """Decide whether a principal holding ``policies`` may perform ``action`` on ``resources``.

    ``guardrails`` is the installation-wide policy, which is deny-only: its ``Allow`` statements,
    if any slipped through, grant nothing.
    """
    given = tuple(resources)
    targets = given or _NO_TARGET
    denies: list[tuple[str, Statement]] = []
    allows: list[tuple[str, Statement]] = []
    for policy in guardrails:
        for statement in policy.document.statements:
            if statement.effect == "Deny" and _applies(statement, action, ctx):
                denies.append((policy.name, statement))
    for policy in policies:
        for statement in policy.document.statements:
            if _applies(statement, action, ctx):
                found = denies if statement.effect == "Deny" else allows
                found.append((policy.name, statement))

    for target in targets:
        deny = _first_for(denies, target)
        if deny is not None:
            return Decision("ExplicitDeny", action, given, deny[0], deny[1].sid, target)
    if is_root:
        return Decision("Allow", action, given)
    first: tuple[str, Statement] | None = None
    for target in targets:
        allow = _first_for(allows, target)
        if allow is None:
            return Decision("ImplicitDeny", action, given, denied_resource=target)
        if first is None:
            first = allow
    assert first is not None  # targets is never empty
    return Decision("Allow", action, given, first[0], first[1].sid)


def allows_any(policies: Sequence[NamedPolicy], action: str, ctx: RequestContext) -> bool:
    """Whether some statement allows ``action`` on some resource, its conditions holding.

    For an operation whose targets are known only once its body is read: a caller for whom
    this is False can never be allowed, so it is refused before the body is read and its
    validation errors tell it nothing (DESIGN, Security: authorize before validating).
    """
    return any(
        statement.effect == "Allow" and _applies(statement, action, ctx)
        for policy in policies
        for statement in policy.document.statements
    )


def _applies(statement: Statement, action: str, ctx: RequestContext) -> bool:
    # Neither the action nor the conditions depend on the target: test them once per call.
    return statement.matches_action(action) and statement.conditions_hold(ctx)


def _first_for(found: list[tuple[str, Statement]], target: str) -> tuple[str, Statement] | None:
    for name, statement in found:
        if statement.matches_resource(target):
            return name, statement
    return None


def denial_message(principal_arn: str, action: str, decision: Decision) -> str:
    """Return AWS's AccessDenied wording for a denial (audit spec §2.4.3, §7.1).

    It names neither the policy nor the Sid: those go to the audit trail only (§7.5).
    """
    resource = decision.denied_resource or "*"
    head = f"User: {principal_arn} is not authorized to perform: {action} on resource: {resource}"
    if decision.decision == "ExplicitDeny":
        return f"{head} with an explicit deny in an identity-based policy"
    if decision.decision == "ImplicitDeny":
        return f"{head} because no identity-based policy allows the {action} action"
    raise ValueError(f"denial_message needs a denial, not a {decision.decision} decision")
