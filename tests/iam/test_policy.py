"""Parsing and validating policy documents (audit spec §7.3)."""

from __future__ import annotations

import json
from typing import Any

import pytest

from core.errors import BadRequest
from iam.policy import MAX_POLICY_BYTES, MalformedPolicyDocument, parse_policy

LG = "arn:watchkeep:logs:local:000000000000:log-group:"

SPEC_EXAMPLE = """{"Version": "2012-10-17",
 "Statement": [
   {"Sid": "LogsAdmin", "Effect": "Allow", "Action": ["logs:*"], "Resource": "*"},
   {"Sid": "NoProdDeletes", "Effect": "Deny",
    "Action": ["logs:DeleteLogGroup", "logs:DeleteLogStream", "logs:PutRetentionPolicy"],
    "Resource": "arn:watchkeep:logs:*:*:log-group:prod-*"},
   {"Sid": "OfficeOnly", "Effect": "Deny", "Action": "*", "Resource": "*",
    "Condition": {"NotIpAddress": {"wk:SourceIp": ["10.0.0.0/8"]}}}
 ]}"""


def stmt(**changes: Any) -> dict[str, Any]:
    """An Allow-everything statement with ``changes`` applied; a value of None removes the key."""
    statement: dict[str, Any] = {"Effect": "Allow", "Action": "logs:*", "Resource": "*"}
    for key, value in changes.items():
        if value is None:
            statement.pop(key, None)
        else:
            statement[key] = value
    return statement


def doc(*statements: Any, **top: Any) -> dict[str, Any]:
    return {"Version": "2012-10-17", "Statement": list(statements), **top}


def cond(operator: str, key: str, values: object) -> dict[str, Any]:
    return stmt(Condition={operator: {key: values}})


def test_parses_the_spec_example() -> None:
    policy = parse_policy(SPEC_EXAMPLE)
    assert policy.version == "2012-10-17"
    assert [s.sid for s in policy.statements] == ["LogsAdmin", "NoProdDeletes", "OfficeOnly"]
    assert [s.effect for s in policy.statements] == ["Allow", "Deny", "Deny"]
    deny = policy.statements[1]
    assert deny.actions == (
        "logs:DeleteLogGroup",
        "logs:DeleteLogStream",
        "logs:PutRetentionPolicy",
    )
    assert deny.resources == ("arn:watchkeep:logs:*:*:log-group:prod-*",)
    (condition,) = policy.statements[2].conditions
    assert (condition.operator, condition.key, condition.values) == (
        "NotIpAddress",
        "wk:SourceIp",
        ("10.0.0.0/8",),
    )
    assert policy.source == SPEC_EXAMPLE
    assert policy.size_bytes == len(json.dumps(json.loads(SPEC_EXAMPLE), separators=(",", ":")))


ACCEPTED = [
    pytest.param({"Version": "2012-10-17", "Statement": stmt()}, id="statement-object"),
    pytest.param(doc(stmt(), Version="2008-10-17"), id="version-2008"),
    pytest.param(doc(stmt(), Id="my-policy"), id="id"),
    pytest.param(doc(stmt(Sid="A1"), stmt(Sid="b2")), id="sids"),
    pytest.param(doc(stmt(Action=["logs:Get*", "cloudwatch:*", "IAM:ListUsers"])), id="actions"),
    pytest.param(doc(stmt(Action="logs:Get?ogEvents")), id="action-question"),
    pytest.param(doc(stmt(Action=None, NotAction="iam:*")), id="not-action"),
    pytest.param(doc(stmt(Resource=None, NotResource=[LG + "prod-*"])), id="not-resource"),
    pytest.param(doc(stmt(Resource="arn:watchkeep:logs:*")), id="resource-short-with-star"),
    pytest.param(doc(stmt(Resource="arn:*:*:*:*:*")), id="resource-all-wildcards"),
    pytest.param(doc(stmt(Resource=LG + "[prod]")), id="resource-brackets"),
    pytest.param(doc(stmt(Action="**", Resource="**")), id="double-star"),
    pytest.param(doc(cond("IpAddress", "WK:SOURCEIP", "10.0.0.0/8")), id="key-any-case"),
    pytest.param(doc(cond("IpAddress", "wk:SourceIp", "10.1.2.3")), id="bare-ip"),
    pytest.param(doc(cond("IpAddress", "wk:SourceIp", ["2001:db8::/32", "::1"])), id="ipv6"),
    pytest.param(doc(cond("Bool", "wk:SecureTransport", False)), id="bool-json"),
    pytest.param(doc(cond("Bool", "wk:SecureTransport", "TRUE")), id="bool-string"),
    pytest.param(doc(cond("DateLessThan", "wk:CurrentTime", "2026-01-05")), id="date-only"),
    pytest.param(doc(cond("DateLessThan", "wk:CurrentTime", 1767614400)), id="date-epoch"),
    pytest.param(doc(cond("DateLessThan", "wk:CurrentTime", "2026-01-05T12:00")), id="date-naive"),
    pytest.param(doc(cond("StringLike", "wk:username", ["ops-*", "a?"])), id="string-like"),
    pytest.param(doc(cond("StringEquals", "wk:username", "")), id="string-empty"),
    pytest.param(
        doc(
            stmt(
                Condition={
                    "Bool": {"wk:SecureTransport": "true"},
                    "IpAddress": {"wk:SourceIp": "10.0.0.0/8"},
                }
            )
        ),
        id="two-operators",
    ),
]


@pytest.mark.parametrize("document", ACCEPTED)
def test_accepts(document: dict[str, Any]) -> None:
    policy = parse_policy(document)
    assert policy.statements
    # Text and bytes parse to the same statements as the decoded object.
    text = json.dumps(document, indent=2)
    assert parse_policy(text).statements == policy.statements
    assert parse_policy(b"\xef\xbb\xbf" + text.encode()).statements == policy.statements


def test_condition_keys_are_canonicalized() -> None:
    policy = parse_policy(doc(cond("IpAddress", "WK:SOURCEIP", "10.0.0.0/8")))
    assert policy.statements[0].conditions[0].key == "wk:SourceIp"


def test_a_decoded_object_is_stored_as_compact_json() -> None:
    policy = parse_policy(doc(stmt(Sid="A")))
    assert policy.source == json.dumps(doc(stmt(Sid="A")), separators=(",", ":"))
    assert policy.size_bytes == len(policy.source)


def test_parsing_the_same_text_again_is_cached() -> None:
    text = json.dumps(doc(stmt(Sid="Cached")))
    assert parse_policy(text) is parse_policy(text)


def _document_of_size(size_bytes: int) -> dict[str, Any]:
    """A policy whose compact form is exactly ``size_bytes``, grown with 2-byte characters."""
    base = doc(cond("StringEquals", "wk:username", ""))
    room = size_bytes - len(json.dumps(base, separators=(",", ":")).encode())
    name = "é" * (room // 2) + "e" * (room % 2)
    return doc(cond("StringEquals", "wk:username", name))


def test_size_limit_counts_utf8_bytes_without_whitespace() -> None:
    at_limit = _document_of_size(MAX_POLICY_BYTES)
    assert parse_policy(at_limit).size_bytes == MAX_POLICY_BYTES
    # Indentation is not counted, as in AWS.
    indented = json.dumps(at_limit, indent=8)
    assert len(indented.encode()) > MAX_POLICY_BYTES
    assert parse_policy(indented).size_bytes == MAX_POLICY_BYTES
    with pytest.raises(MalformedPolicyDocument) as caught:
        parse_policy(_document_of_size(MAX_POLICY_BYTES + 1))
    assert "6145 bytes without whitespace; the limit is 6144 bytes" in caught.value.message
    assert caught.value.details == {"size_bytes": 6145, "limit_bytes": 6144}


def test_huge_text_is_refused_before_parsing() -> None:
    text = " " * 70_000 + json.dumps(doc(stmt()))
    with pytest.raises(MalformedPolicyDocument, match="far too large to parse"):
        parse_policy(text)


def test_guardrail_policies_may_only_deny() -> None:
    deny = stmt(Effect="Deny")
    assert parse_policy(doc(deny), deny_only=True).statements[0].effect == "Deny"
    with pytest.raises(MalformedPolicyDocument) as caught:
        parse_policy(doc(deny, stmt(Sid="Oops")), deny_only=True)
    assert caught.value.message.startswith('Statement[1] (Sid "Oops"): a guardrail policy')


def test_error_is_a_bad_request_with_the_aws_code() -> None:
    with pytest.raises(BadRequest) as caught:
        parse_policy("{")
    assert isinstance(caught.value, MalformedPolicyDocument)
    assert caught.value.status == 400
    assert caught.value.code == "MalformedPolicyDocumentException"


# (document, message fragment, details that must be present)
REJECTED: list[Any] = [
    # The document as a whole.
    pytest.param(
        "nope", "not valid JSON: Expecting value at line 1, column 1", {"line": 1}, id="not-json"
    ),
    pytest.param('{"Version": "2012-10-17",}', "not valid JSON", {}, id="trailing-comma"),
    pytest.param('{"Version": NaN}', "NaN is not a JSON value", {}, id="nan"),
    pytest.param(b"\xff\xfe", "is not UTF-8", {}, id="not-utf8"),
    pytest.param("[]", "must be a JSON object, not a list", {}, id="not-object"),
    pytest.param(
        '{"Version": "2012-10-17", "Statement": {"Effect": "Allow", "Effect": "Deny"}}',
        'repeats the key "Effect"',
        {"key": "Effect"},
        id="duplicate-json-key",
    ),
    pytest.param(
        {"Statement": [stmt()]}, 'no Version; add "Version": "2012-10-17"', {}, id="no-version"
    ),
    pytest.param(
        doc(stmt(), Version="2012-10-18"),
        'Version "2012-10-18" is not supported',
        {},
        id="bad-version",
    ),
    pytest.param(
        doc(stmt(), Version=2012), "Version 2012 is not supported", {}, id="version-number"
    ),
    pytest.param(doc(stmt(), Id=3), "Id must be a string", {"key": "Id"}, id="id-number"),
    pytest.param(
        {"Version": "2012-10-17", "Statements": [stmt()]},
        'unknown key "Statements" (did you mean "Statement"?)',
        {"key": "Statements"},
        id="unknown-top-key",
    ),
    pytest.param({"Version": "2012-10-17"}, "has no Statement", {}, id="no-statement"),
    pytest.param(doc(), "not an empty list", {}, id="statement-empty"),
    pytest.param(
        {"Version": "2012-10-17", "Statement": "x"}, "not a string", {}, id="statement-string"
    ),
    pytest.param(
        doc("x"),
        "Statement[0]: a statement must be a JSON object, not a string",
        {},
        id="statement-not-object",
    ),
    # Statement keys.
    pytest.param(
        doc(stmt(), stmt(Sid="Logs", Action=None, Actions="logs:*")),
        'Statement[1] (Sid "Logs"): unknown key "Actions" (did you mean "Action"?)',
        {"statement": 1, "sid": "Logs", "key": "Actions"},
        id="unknown-key-with-sid",
    ),
    pytest.param(
        {"Version": "2012-10-17", "Statement": stmt(effect="Allow")},
        'Statement: unknown key "effect" (did you mean "Effect"?)',
        {"statement": 0, "key": "effect"},
        id="unknown-key-single-statement",
    ),
    pytest.param(
        doc(stmt(Principal="*")),
        "Principal is not allowed in an identity-based policy",
        {"key": "Principal"},
        id="principal",
    ),
    pytest.param(
        doc(stmt(Sid="no spaces")),
        'Sid "no spaces" must be a non-empty string of letters',
        {"key": "Sid"},
        id="bad-sid",
    ),
    pytest.param(doc(stmt(Sid="")), 'Sid "" must be', {"key": "Sid"}, id="empty-sid"),
    pytest.param(
        doc(stmt(Sid="Same"), stmt(Sid="Same")),
        'Statement[1] (Sid "Same"): Sid "Same" is already used by Statement[0]',
        {"statement": 1},
        id="duplicate-sid",
    ),
    pytest.param(doc(stmt(Effect=None)), "has no Effect", {"key": "Effect"}, id="no-effect"),
    pytest.param(
        doc(stmt(Effect="allow")),
        'Effect "allow" must be "Allow" or "Deny" (did you mean "Allow"?)',
        {},
        id="effect-case",
    ),
    pytest.param(doc(stmt(Effect=["Allow"])), 'Effect ["Allow"] must be', {}, id="effect-list"),
    pytest.param(
        doc(stmt(NotAction="iam:*")),
        "has both Action and NotAction; use exactly one",
        {"key": "NotAction"},
        id="action-and-not-action",
    ),
    pytest.param(
        doc(stmt(Action=None)),
        "has neither Action nor NotAction",
        {"key": "Action"},
        id="no-action",
    ),
    pytest.param(
        doc(stmt(NotResource="*")),
        "has both Resource and NotResource",
        {},
        id="resource-and-not-resource",
    ),
    pytest.param(
        doc(stmt(Resource=None)), "has neither Resource nor NotResource", {}, id="no-resource"
    ),
    pytest.param(doc(stmt(Action=[])), "Action is an empty list", {}, id="action-empty-list"),
    pytest.param(
        doc(stmt(Action=["logs:*", 3])),
        "Action[1] must be a string, not a number",
        {},
        id="action-number",
    ),
    pytest.param(
        doc(stmt(Action={"logs": "*"})),
        "Action must be a string or a list of strings, not an object",
        {},
        id="action-object",
    ),
    pytest.param(doc(stmt(Resource="")), "Resource is an empty string", {}, id="resource-empty"),
    # Action and resource values.
    pytest.param(
        doc(stmt(Action="logs")),
        'Action "logs" must look like service:Action',
        {},
        id="action-no-colon",
    ),
    pytest.param(
        doc(stmt(Action="logs:Delete LogGroup")),
        "must look like service:Action",
        {},
        id="action-space",
    ),
    pytest.param(
        doc(stmt(Action="logs:[Dd]elete*")),
        "must look like service:Action",
        {},
        id="action-brackets",
    ),
    pytest.param(
        doc(stmt(NotAction="log:*", Action=None)),
        'NotAction "log:*" names the unknown service "log" (did you mean "logs"?)',
        {"key": "NotAction"},
        id="action-unknown-service",
    ),
    pytest.param(
        doc(stmt(Action="*:Get*")),
        "has a wildcard in its service prefix",
        {},
        id="action-service-wildcard",
    ),
    pytest.param(
        doc(stmt(Resource="log-group:prod-*")),
        'Resource "log-group:prod-*" must be "*" or an ARN',
        {},
        id="resource-not-arn",
    ),
    pytest.param(
        doc(stmt(Resource="arn:aws:logs:us-east-1:1:log-group:x")),
        'has the partition "aws"',
        {},
        id="resource-aws-partition",
    ),
    pytest.param(
        doc(stmt(Resource="arn:watchkeep:Logs:*:*:log-group:x")),
        'names the unknown service "Logs"',
        {},
        id="resource-service-case",
    ),
    pytest.param(
        doc(stmt(Resource="arn:watchkeep:logs:local")),
        "has 4 of the 6 parts of an ARN",
        {},
        id="resource-too-short",
    ),
    pytest.param(
        doc(stmt(Resource="arn:watchkeep:iam::0:user/${wk:username}")),
        "uses a policy variable; variables are not supported",
        {"key": "Resource"},
        id="resource-policy-variable",
    ),
    # Conditions.
    pytest.param(
        doc(stmt(Condition="wk:SourceIp")),
        "Condition must be an object",
        {"key": "Condition"},
        id="condition-string",
    ),
    pytest.param(
        doc(stmt(Condition={})), "not an empty object", {"key": "Condition"}, id="condition-empty"
    ),
    pytest.param(
        doc(cond("StringEqual", "wk:username", "a")),
        'unknown condition operator "StringEqual" (did you mean "StringEquals"?)',
        {"key": "StringEqual"},
        id="unknown-operator",
    ),
    pytest.param(
        doc(cond("NumericLessThan", "wk:username", "1")),
        "operators are StringEquals,",
        {},
        id="numeric-operator",
    ),
    pytest.param(
        doc(cond("StringLikeIfExists", "wk:username", "a*")),
        "always present, so use StringLike",
        {},
        id="if-exists",
    ),
    pytest.param(
        doc(cond("ForAnyValue:StringLike", "wk:username", "a*")),
        "set operators",
        {},
        id="for-any-value",
    ),
    pytest.param(
        doc(stmt(Condition={"IpAddress": {}})),
        "Condition IpAddress must be an object mapping condition keys",
        {},
        id="operator-empty",
    ),
    pytest.param(
        doc(cond("IpAddress", "aws:SourceIp", "10.0.0.0/8")),
        'unknown condition key "aws:SourceIp" (did you mean "wk:SourceIp"?)',
        {"key": "aws:SourceIp"},
        id="aws-key",
    ),
    pytest.param(
        doc(cond("StringEquals", "wk:userid", "x")),
        'unknown condition key "wk:userid"',
        {},
        id="unknown-key",
    ),
    pytest.param(
        doc(stmt(Condition={"IpAddress": {"wk:SourceIp": "10.0.0.0/8", "WK:SOURCEIP": "::1"}})),
        "Condition IpAddress names wk:SourceIp twice",
        {},
        id="key-twice",
    ),
    pytest.param(
        doc(cond("DateLessThan", "wk:SourceIp", "2026-01-01")),
        "the operator DateLessThan does not apply to wk:SourceIp, which is an IP address; "
        "use IpAddress or NotIpAddress",
        {"key": "wk:SourceIp"},
        id="operator-key-mismatch",
    ),
    pytest.param(
        doc(cond("StringEquals", "wk:SecureTransport", "true")),
        "use Bool",
        {},
        id="string-on-bool-key",
    ),
    pytest.param(
        doc(cond("IpAddress", "wk:SourceIp", [])),
        "Condition IpAddress wk:SourceIp is an empty list",
        {},
        id="values-empty",
    ),
    pytest.param(
        doc(
            stmt(Sid="Office"),
            {**cond("NotIpAddress", "wk:SourceIp", ["10.0.0.0/33"]), "Sid": "Net"},
        ),
        'Statement[1] (Sid "Net"): Condition NotIpAddress wk:SourceIp: "10.0.0.0/33" is not '
        "an IPv4 or IPv6",
        {"statement": 1, "sid": "Net", "key": "wk:SourceIp"},
        id="bad-cidr",
    ),
    pytest.param(
        doc(cond("IpAddress", "wk:SourceIp", "10.0.0.1/8")),
        'has host bits set; did you mean "10.0.0.0/8"?',
        {},
        id="host-bits",
    ),
    pytest.param(
        doc(cond("IpAddress", "wk:SourceIp", "2001:db8::g/32")),
        "is not an IPv4 or IPv6",
        {},
        id="bad-ipv6",
    ),
    pytest.param(
        doc(cond("IpAddress", "wk:SourceIp", "office")),
        '"office" is not an IPv4 or IPv6',
        {},
        id="ip-word",
    ),
    pytest.param(
        doc(cond("IpAddress", "wk:SourceIp", 10)), "10 must be a string", {}, id="ip-number"
    ),
    pytest.param(
        doc(cond("DateGreaterThan", "wk:CurrentTime", "2026-13-01")),
        '"2026-13-01" is not a date; use ISO 8601',
        {},
        id="bad-month",
    ),
    pytest.param(
        doc(cond("DateLessThan", "wk:CurrentTime", "yesterday")),
        "is not a date",
        {},
        id="date-word",
    ),
    pytest.param(
        doc(cond("DateLessThan", "wk:CurrentTime", True)), "true is not a date", {}, id="date-bool"
    ),
    pytest.param(
        doc(cond("Bool", "wk:SecureTransport", "yes")),
        '"yes" must be true or false',
        {},
        id="bool-yes",
    ),
    pytest.param(
        doc(cond("StringEquals", "wk:username", 7)), "7 must be a string", {}, id="string-number"
    ),
    pytest.param(
        doc(cond("StringLike", "wk:username", "${wk:username}*")),
        "uses a policy variable",
        {},
        id="condition-variable",
    ),
]


@pytest.mark.parametrize(("document", "fragment", "details"), REJECTED)
def test_rejects(document: Any, fragment: str, details: dict[str, Any]) -> None:
    with pytest.raises(MalformedPolicyDocument) as caught:
        parse_policy(document)
    assert fragment in caught.value.message
    assert details.items() <= caught.value.details.items()


@pytest.mark.parametrize(
    ("key", "fragment"),
    [("Sid", "Sid null must be a non-empty string"), ("Condition", "Condition must be an object")],
)
def test_null_values_are_rejected(key: str, fragment: str) -> None:
    with pytest.raises(MalformedPolicyDocument, match=fragment):
        parse_policy(
            '{"Version": "2012-10-17", "Statement": {"Effect": "Allow", "Action": "*", '
            f'"Resource": "*", "{key}": null}}}}'
        )
