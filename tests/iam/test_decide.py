"""decide(), denial messages and the audit record's authorization object (audit spec §7.4)."""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from typing import Any

import pytest

from iam.decide import Decision, NamedPolicy, RequestContext, decide, denial_message
from iam.policy import parse_policy

LG = "arn:watchkeep:logs:local:000000000000:log-group:"
BOB = "arn:watchkeep:iam::000000000000:user/bob"
CTX = RequestContext(
    source_ip="10.1.2.3",
    current_time=datetime(2026, 1, 5, 12, 0, tzinfo=UTC),
    secure_transport=True,
    username="alice",
)


def statement(effect: str, action: Any, resource: Any = "*", **extra: Any) -> dict[str, Any]:
    result = {"Effect": effect, "Resource": resource, **extra}
    if "NotAction" not in extra:
        result["Action"] = action
    if "NotResource" in extra:
        del result["Resource"]
    return result


def allow(action: Any, resource: Any = "*", **extra: Any) -> dict[str, Any]:
    return statement("Allow", action, resource, **extra)


def deny(action: Any, resource: Any = "*", **extra: Any) -> dict[str, Any]:
    return statement("Deny", action, resource, **extra)


def policy(name: str, *statements: dict[str, Any]) -> NamedPolicy:
    return NamedPolicy(name, parse_policy({"Version": "2012-10-17", "Statement": list(statements)}))


def lg(name: str) -> str:
    return LG + name


@dataclass(frozen=True)
class Case:
    id: str
    policies: list[NamedPolicy]
    action: str
    resources: list[str]
    decision: str
    policy: str | None = None
    sid: str | None = None
    denied: str | None = None
    ctx: RequestContext = CTX
    is_root: bool = False
    guardrails: list[NamedPolicy] = field(default_factory=list)


def only_if(operator: str, key: str, values: Any) -> dict[str, Any]:
    return {"Condition": {operator: {key: values}}}


LOGS_ADMIN = policy("logs-admin", allow("logs:*", Sid="All"))
ADMIN = policy("admin", allow("*"))
NO_PROD_DELETES = policy(
    "no-prod-deletes",
    deny(["logs:DeleteLogGroup", "logs:DeleteLogStream"], lg("prod-*"), Sid="NoProdDeletes"),
)
OFFICE_ONLY = policy(
    "office-only",
    deny("*", **only_if("NotIpAddress", "wk:SourceIp", ["10.0.0.0/8", "2001:db8::/32"])),
)
GUARDRAIL = NamedPolicy(
    "guardrail",
    parse_policy(
        {"Version": "2012-10-17", "Statement": deny("cloudtrail:UpdateTrail", Sid="KeepTrail")},
        deny_only=True,
    ),
)
PROD = policy("p", allow("logs:*", lg("prod-*")))
APP_ONE = policy("p", allow("logs:*", lg("app-?")))
BRACKETS = policy("p", allow("logs:*", lg("[ab]")))
GETS = policy("p", allow("logs:Get*"))
UPPER_PROD = policy("p", allow("logs:*", lg("Prod-*")))
NOT_IAM = policy("p", allow(None, NotAction=["iam:*", "cloudtrail:*"]))
SANDBOX = policy("sandbox", deny("logs:Delete*", NotResource=lg("sandbox-*"), Sid="OnlySandbox"))
APPS = policy("a", allow("logs:*", lg("app-*"), Sid="A"))
WEBS = policy("w", allow("logs:*", lg("web-*"), Sid="W"))
TRAIL = "arn:watchkeep:cloudtrail:local:000000000000:trail/main"
FROM_10_1 = policy("p", allow("logs:*", **only_if("IpAddress", "wk:SourceIp", "10.1.0.0/16")))
FROM_10_2 = policy("p", allow("logs:*", **only_if("IpAddress", "wk:SourceIp", "10.2.0.0/16")))
UNTIL_FEB = policy("p", allow("logs:*", **only_if("DateLessThan", "wk:CurrentTime", "2026-02-01")))
UNTIL_JAN = policy("p", allow("logs:*", **only_if("DateLessThan", "wk:CurrentTime", "2026-01-01")))
SINCE_JAN = policy(
    "p", allow("logs:*", **only_if("DateGreaterThan", "wk:CurrentTime", "2026-01-01"))
)
MORNING = policy(
    "p",
    allow(
        "logs:*",
        Condition={
            "DateGreaterThan": {"wk:CurrentTime": "2026-01-01"},
            "DateLessThan": {"wk:CurrentTime": "2026-01-05T11:00:00Z"},
        },
    ),
)
TLS_ONLY = policy("tls", deny("*", **only_if("Bool", "wk:SecureTransport", "false")))
ALI = policy("p", allow("logs:*", **only_if("StringLike", "wk:username", "ali*")))
OPS_DELETE = policy(
    "ops", deny("logs:Delete*", **only_if("StringNotEquals", "wk:username", ["ops", "alice"]))
)
OUTSIDE = replace(CTX, source_ip="192.168.1.1")
GET = "logs:GetLogEvents"

CASES = [
    # Nothing applies: implicit deny, about the first target without an allow.
    Case("no-policies", [], "logs:CreateLogGroup", [lg("app")], "ImplicitDeny", denied=lg("app")),
    Case("allow-all", [LOGS_ADMIN], GET, [lg("app")], "Allow", "logs-admin", "All"),
    Case("other-service", [LOGS_ADMIN], "iam:CreateUser", [], "ImplicitDeny", denied="*"),
    # Wildcards.
    Case("prod-star", [PROD], GET, [lg("prod-api")], "Allow", "p"),
    Case("prod-star-empty-run", [PROD], GET, [lg("prod-")], "Allow", "p"),
    Case("prod-star-miss", [PROD], GET, [lg("dev-api")], "ImplicitDeny", denied=lg("dev-api")),
    Case("star-crosses-colon", [PROD], GET, [lg("prod-api:log-stream:i/1")], "Allow", "p"),
    Case("question-one-char", [APP_ONE], GET, [lg("app-1")], "Allow", "p"),
    Case("question-not-two", [APP_ONE], GET, [lg("app-12")], "ImplicitDeny", denied=lg("app-12")),
    Case("question-not-zero", [APP_ONE], GET, [lg("app-")], "ImplicitDeny", denied=lg("app-")),
    Case("brackets-literal", [BRACKETS], GET, [lg("[ab]")], "Allow", "p"),
    Case("brackets-not-a-class", [BRACKETS], GET, [lg("a")], "ImplicitDeny", denied=lg("a")),
    Case("action-wildcard", [GETS], GET, [], "Allow", "p"),
    Case("action-wildcard-miss", [GETS], "logs:PutLogEvents", [], "ImplicitDeny", denied="*"),
    # Case: actions ignore it, resources do not.
    Case("action-case-policy", [policy("p", allow("LOGS:getlogevents"))], GET, [], "Allow", "p"),
    Case("action-case-request", [GETS], "Logs:GETLOGEVENTS", [], "Allow", "p"),
    Case("resource-case", [UPPER_PROD], GET, [lg("prod-1")], "ImplicitDeny", denied=lg("prod-1")),
    # NotAction and NotResource.
    Case("not-action-others", [NOT_IAM], GET, [], "Allow", "p"),
    Case("not-action-excluded", [NOT_IAM], "iam:CreateUser", [], "ImplicitDeny", denied="*"),
    Case(
        "not-resource-deny",
        [LOGS_ADMIN, SANDBOX],
        "logs:DeleteLogGroup",
        [lg("prod-api")],
        "ExplicitDeny",
        "sandbox",
        "OnlySandbox",
        lg("prod-api"),
    ),
    Case(
        "not-resource-spares",
        [LOGS_ADMIN, SANDBOX],
        "logs:DeleteLogGroup",
        [lg("sandbox-1")],
        "Allow",
        "logs-admin",
        "All",
    ),
    # An explicit deny wins, wherever it is.
    *(
        Case(
            f"deny-beats-allow-{name}",
            policies,
            "logs:DeleteLogGroup",
            [lg("prod-api")],
            "ExplicitDeny",
            "no-prod-deletes",
            "NoProdDeletes",
            lg("prod-api"),
        )
        for name, policies in [
            ("deny-last", [LOGS_ADMIN, NO_PROD_DELETES]),
            ("deny-first", [NO_PROD_DELETES, LOGS_ADMIN]),
            ("admin", [ADMIN, NO_PROD_DELETES]),
        ]
    ),
    Case(
        "deny-same-policy",
        [policy("p", allow("*"), deny("logs:DeleteLogGroup", Sid="No"))],
        "logs:DeleteLogGroup",
        [],
        "ExplicitDeny",
        "p",
        "No",
        "*",
    ),
    Case(
        "deny-other-action",
        [LOGS_ADMIN, NO_PROD_DELETES],
        GET,
        [lg("prod-1")],
        "Allow",
        "logs-admin",
        "All",
    ),
    Case(
        "deny-action-any-case",
        [LOGS_ADMIN, NO_PROD_DELETES],
        "LOGS:deleteloggroup",
        [lg("prod-api")],
        "ExplicitDeny",
        "no-prod-deletes",
        "NoProdDeletes",
        lg("prod-api"),
    ),
    # Several targets: every one needs an allow, and a deny on any one wins.
    Case("every-target-allowed", [APPS, WEBS], GET, [lg("app-1"), lg("web-1")], "Allow", "a", "A"),
    Case(
        "one-target-not-allowed",
        [APPS],
        GET,
        [lg("app-1"), lg("prod-1"), lg("dev-1")],
        "ImplicitDeny",
        denied=lg("prod-1"),
    ),
    Case(
        "one-target-denied",
        [LOGS_ADMIN, NO_PROD_DELETES],
        "logs:DeleteLogStream",
        [lg("app-1"), lg("prod-1")],
        "ExplicitDeny",
        "no-prod-deletes",
        "NoProdDeletes",
        lg("prod-1"),
    ),
    Case(
        "deny-checked-before-allows",
        [NO_PROD_DELETES],
        "logs:DeleteLogStream",
        [lg("app-1"), lg("prod-1")],
        "ExplicitDeny",
        "no-prod-deletes",
        "NoProdDeletes",
        lg("prod-1"),
    ),
    Case(
        "first-allow-reported",
        [policy("one", allow("logs:Get*", Sid="First")), LOGS_ADMIN],
        GET,
        [],
        "Allow",
        "one",
        "First",
    ),
    # No target: the operation authorizes against "*".
    Case(
        "no-target-needs-star",
        [policy("p", allow("logs:*", lg("*")))],
        GET,
        [],
        "ImplicitDeny",
        denied="*",
    ),
    Case("no-target-star", [GETS], GET, [], "Allow", "p"),
    # Root bypasses the allows, not a guardrail deny.
    Case("root-no-policies", [], "iam:CreateUser", [], "Allow", is_root=True),
    Case("root-guardrail-other", [], GET, [], "Allow", is_root=True, guardrails=[GUARDRAIL]),
    Case(
        "root-guardrail-deny",
        [],
        "cloudtrail:UpdateTrail",
        [TRAIL],
        "ExplicitDeny",
        "guardrail",
        "KeepTrail",
        TRAIL,
        is_root=True,
        guardrails=[GUARDRAIL],
    ),
    Case(
        "root-outside-office",
        [OFFICE_ONLY],
        "iam:CreateUser",
        [],
        "ExplicitDeny",
        "office-only",
        denied="*",
        ctx=OUTSIDE,
        is_root=True,
    ),
    Case(
        "guardrail-beats-admin",
        [ADMIN],
        "cloudtrail:UpdateTrail",
        [],
        "ExplicitDeny",
        "guardrail",
        "KeepTrail",
        "*",
        guardrails=[GUARDRAIL],
    ),
    Case(
        "guardrail-reported-first",
        [policy("mine", deny("cloudtrail:*"))],
        "cloudtrail:UpdateTrail",
        [],
        "ExplicitDeny",
        "guardrail",
        "KeepTrail",
        "*",
        guardrails=[GUARDRAIL],
    ),
    Case(
        "guardrail-allow-grants-nothing",
        [],
        GET,
        [],
        "ImplicitDeny",
        denied="*",
        guardrails=[ADMIN],
    ),
    # Conditions.
    Case("office-inside", [LOGS_ADMIN, OFFICE_ONLY], GET, [], "Allow", "logs-admin", "All"),
    Case(
        "office-outside",
        [LOGS_ADMIN, OFFICE_ONLY],
        GET,
        [],
        "ExplicitDeny",
        "office-only",
        denied="*",
        ctx=OUTSIDE,
    ),
    Case(
        "office-ipv6-inside",
        [LOGS_ADMIN, OFFICE_ONLY],
        GET,
        [],
        "Allow",
        "logs-admin",
        "All",
        ctx=replace(CTX, source_ip="2001:db8::42"),
    ),
    Case(
        "office-ipv6-outside",
        [LOGS_ADMIN, OFFICE_ONLY],
        GET,
        [],
        "ExplicitDeny",
        "office-only",
        denied="*",
        ctx=replace(CTX, source_ip="2001:db9::42"),
    ),
    Case("ip-inside-cidr", [FROM_10_1], GET, [], "Allow", "p"),
    Case("ip-outside-cidr", [FROM_10_2], GET, [], "ImplicitDeny", denied="*"),
    Case("before-expiry", [UNTIL_FEB], GET, [], "Allow", "p"),
    Case("after-expiry", [UNTIL_JAN], GET, [], "ImplicitDeny", denied="*"),
    Case("after-start", [SINCE_JAN], GET, [], "Allow", "p"),
    Case("outside-window", [MORNING], GET, [], "ImplicitDeny", denied="*"),
    Case(
        "insecure",
        [LOGS_ADMIN, TLS_ONLY],
        GET,
        [],
        "ExplicitDeny",
        "tls",
        denied="*",
        ctx=replace(CTX, secure_transport=False),
    ),
    Case("secure", [LOGS_ADMIN, TLS_ONLY], GET, [], "Allow", "logs-admin", "All"),
    Case("username-like", [ALI], GET, [], "Allow", "p"),
    Case(
        "username-unlike",
        [ALI],
        GET,
        [],
        "ImplicitDeny",
        denied="*",
        ctx=replace(CTX, username="bob"),
    ),
    Case(
        "username-root", [ALI], GET, [], "ImplicitDeny", denied="*", ctx=replace(CTX, username=None)
    ),
    Case(
        "username-listed",
        [LOGS_ADMIN, OPS_DELETE],
        "logs:DeleteLogGroup",
        [],
        "Allow",
        "logs-admin",
        "All",
    ),
    Case(
        "username-not-listed",
        [LOGS_ADMIN, OPS_DELETE],
        "logs:DeleteLogGroup",
        [],
        "ExplicitDeny",
        "ops",
        denied="*",
        ctx=replace(CTX, username="bob"),
    ),
]


@pytest.mark.parametrize("case", CASES, ids=[case.id for case in CASES])
def test_decide(case: Case) -> None:
    decision = decide(
        case.policies,
        case.action,
        case.resources,
        case.ctx,
        is_root=case.is_root,
        guardrails=case.guardrails,
    )
    expected = (case.decision, case.policy, case.sid, case.denied)
    got = (
        decision.decision,
        decision.matched_policy,
        decision.matched_sid,
        decision.denied_resource,
    )
    assert got == expected
    assert decision.action == case.action
    assert decision.resources == tuple(case.resources)
    assert decision.allowed is (case.decision == "Allow")


def test_order_of_policies_does_not_change_the_outcome() -> None:
    for case in CASES:
        forward = decide(
            case.policies,
            case.action,
            case.resources,
            case.ctx,
            is_root=case.is_root,
            guardrails=case.guardrails,
        )
        backward = decide(
            case.policies[::-1],
            case.action,
            case.resources,
            case.ctx,
            is_root=case.is_root,
            guardrails=case.guardrails,
        )
        assert forward.decision == backward.decision
        assert forward.denied_resource == backward.denied_resource


EXPLICIT = Decision(
    "ExplicitDeny",
    "logs:DeleteLogGroup",
    (LG + "prod-api",),
    "no-prod-deletes",
    "NoProdDeletes",
    LG + "prod-api",
)
IMPLICIT = Decision(
    "ImplicitDeny", "logs:DeleteLogGroup", (LG + "prod-api",), denied_resource=LG + "prod-api"
)


@pytest.mark.parametrize(
    ("decision", "message"),
    [
        (
            EXPLICIT,
            "User: arn:watchkeep:iam::000000000000:user/bob is not authorized to perform: "
            "logs:DeleteLogGroup on resource: "
            "arn:watchkeep:logs:local:000000000000:log-group:prod-api "
            "with an explicit deny in an identity-based policy",
        ),
        (
            IMPLICIT,
            "User: arn:watchkeep:iam::000000000000:user/bob is not authorized to perform: "
            "logs:DeleteLogGroup on resource: "
            "arn:watchkeep:logs:local:000000000000:log-group:prod-api "
            "because no identity-based policy allows the logs:DeleteLogGroup action",
        ),
        (
            Decision("ImplicitDeny", "logs:DescribeLogGroups", (), denied_resource="*"),
            "User: arn:watchkeep:iam::000000000000:user/bob is not authorized to perform: "
            "logs:DescribeLogGroups on resource: * because no identity-based policy allows the "
            "logs:DescribeLogGroups action",
        ),
    ],
    ids=["explicit", "implicit", "no-target"],
)
def test_denial_message(decision: Decision, message: str) -> None:
    assert denial_message(BOB, decision.action or "", decision) == message
    # Policy names and Sids go to the trail only, never into the response.
    assert "no-prod-deletes" not in message and "NoProdDeletes" not in message


@pytest.mark.parametrize(
    "decision", [Decision("Allow", "logs:GetLogEvents"), Decision.not_evaluated()]
)
def test_denial_message_needs_a_denial(decision: Decision) -> None:
    with pytest.raises(ValueError, match="needs a denial"):
        denial_message(BOB, "logs:GetLogEvents", decision)


@pytest.mark.parametrize(
    ("decision", "audit"),
    [
        (
            EXPLICIT,
            {
                "decision": "ExplicitDeny",
                "action": "logs:DeleteLogGroup",
                "resources": [LG + "prod-api"],
                "matchedPolicy": "no-prod-deletes",
                "matchedSid": "NoProdDeletes",
            },
        ),
        (
            IMPLICIT,
            {
                "decision": "ImplicitDeny",
                "action": "logs:DeleteLogGroup",
                "resources": [LG + "prod-api"],
                "matchedPolicy": None,
                "matchedSid": None,
            },
        ),
        (
            decide([LOGS_ADMIN], "logs:CreateLogGroup", [LG + "app-prod"], CTX, is_root=False),
            {
                "decision": "Allow",
                "action": "logs:CreateLogGroup",
                "resources": [LG + "app-prod"],
                "matchedPolicy": "logs-admin",
                "matchedSid": "All",
            },
        ),
        (
            Decision.not_evaluated("logs:PutLogEvents", [LG + "app"]),
            {
                "decision": "NotEvaluated",
                "action": "logs:PutLogEvents",
                "resources": [LG + "app"],
                "matchedPolicy": None,
                "matchedSid": None,
            },
        ),
    ],
    ids=["explicit", "implicit", "allow", "not-evaluated"],
)
def test_to_audit(decision: Decision, audit: dict[str, Any]) -> None:
    assert decision.to_audit() == audit
