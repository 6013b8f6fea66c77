"""Identity-based policy documents: parsing, validation, and the compiled statements decide() runs.

The language is the minimal one of audit spec §7.3. A document is checked in full when it is
stored, and anything we would not enforce exactly as written is rejected with
``MalformedPolicyDocument`` instead of being ignored: unknown keys, operators and condition keys,
unknown services, policy variables, bad CIDRs and dates, duplicate JSON keys. Patterns and
condition values are compiled here, once, so evaluating a statement at request time costs a few
set look-ups and regex matches. Pure code: no I/O.

Size: a document may hold at most ``MAX_POLICY_BYTES`` (6 KiB) counted as AWS counts, without
whitespace: the UTF-8 length of the document re-serialized compactly (no whitespace between JSON
tokens, non-ASCII characters as themselves). Whitespace inside strings counts.
"""

from __future__ import annotations

import difflib
import functools
import json
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any, Final, Literal, NoReturn

from core.errors import BadRequest
from iam.matching import (
    CONDITION_KEYS,
    CONDITION_OPERATORS,
    Condition,
    PatternSet,
    RequestContext,
    compile_condition,
    wildcard_match,
)

MAX_POLICY_BYTES: Final = 6144
VERSIONS: Final = ("2012-10-17", "2008-10-17")
SERVICES: Final = ("cloudtrail", "cloudwatch", "iam", "logs")
# Well above any sane indentation of a 6 KiB document; stops us parsing a huge body first.
_MAX_TEXT_BYTES = 64 * 1024
_DOCUMENT_KEYS = ("Version", "Id", "Statement")
_STATEMENT_KEYS = ("Sid", "Effect", "Action", "NotAction", "Resource", "NotResource", "Condition")
_SID_RE = re.compile(r"[A-Za-z0-9]+")
_ACTION_NAME_RE = re.compile(r"[A-Za-z0-9*?]+")
_ARN_EXAMPLE = "arn:watchkeep:logs:local:000000000000:log-group:prod-*"
_KIND_NAMES = {"string": "a string", "ip": "an IP address", "date": "a date", "bool": "a boolean"}

Effect = Literal["Allow", "Deny"]


class MalformedPolicyDocument(BadRequest):
    """Raised when a policy document is not JSON, breaks the grammar of audit spec §7.3, or is
    larger than 6 KiB. ``details`` names the statement (``statement``, ``sid``) and ``key``."""

    code = "MalformedPolicyDocumentException"


@dataclass(frozen=True, slots=True)
class Statement:
    """One validated statement, with its patterns compiled."""

    index: int
    sid: str | None
    effect: Effect
    actions: tuple[str, ...]
    not_action: bool
    resources: tuple[str, ...]
    not_resource: bool
    conditions: tuple[Condition, ...] = ()
    action_patterns: PatternSet = field(repr=False, compare=False, init=False)
    resource_patterns: PatternSet = field(repr=False, compare=False, init=False)

    def __post_init__(self) -> None:
        actions = PatternSet(self.actions, ignore_case=True)
        object.__setattr__(self, "action_patterns", actions)
        resources = PatternSet(self.resources, ignore_case=False)
        object.__setattr__(self, "resource_patterns", resources)

    def matches_action(self, action: str) -> bool:
        return self.action_patterns.matches(action) != self.not_action

    def matches_resource(self, resource: str) -> bool:
        return self.resource_patterns.matches(resource) != self.not_resource

    def conditions_hold(self, ctx: RequestContext) -> bool:
        for condition in self.conditions:
            if not condition.test(ctx):
                return False
        return True

    def matches(self, action: str, resource: str, ctx: RequestContext) -> bool:
        """Return whether the statement applies to one (action, resource) pair of a request."""
        return (
            self.matches_action(action)
            and self.matches_resource(resource)
            and self.conditions_hold(ctx)
        )


@dataclass(frozen=True, slots=True)
class PolicyDocument:
    """A parsed policy.

    ``source`` is the JSON text to store: the text as given, or the compact serialization of a
    decoded object. ``size_bytes`` is the size counted against ``MAX_POLICY_BYTES``.
    """

    version: str
    statements: tuple[Statement, ...]
    size_bytes: int
    source: str = field(repr=False)
    id: str | None = None


@dataclass(frozen=True, slots=True)
class NamedPolicy:
    """A policy with the name it is stored under, as decide() reports it in ``matchedPolicy``."""

    name: str
    document: PolicyDocument


def parse_policy(
    document: str | bytes | dict[str, Any], *, deny_only: bool = False
) -> PolicyDocument:
    """Parse and validate a policy document given as JSON text or as an already-decoded object.

    ``deny_only`` rejects ``Allow`` statements, for the installation-wide guardrail policy.
    Parsed texts are cached, so parsing a stored policy again on each request is cheap.
    Raises ``MalformedPolicyDocument`` naming the statement and key at fault.
    """
    if isinstance(document, dict):
        # Serializing first normalizes what JSON cannot say (tuples, non-string keys) and
        # shares the cache and the duplicate-key check with texts.
        document = _dump_compact(document)
    if isinstance(document, bytes):
        if len(document) > _MAX_TEXT_BYTES:
            _fail_too_large(len(document), compact=False)
        try:
            document = document.decode("utf-8-sig")
        except UnicodeDecodeError as exc:
            _fail(f"the policy document is not UTF-8 (byte {exc.start} is invalid)")
    return _parse_text(document, deny_only)


@functools.lru_cache(maxsize=256)
def _parse_text(text: str, deny_only: bool) -> PolicyDocument:
    if len(text) > _MAX_TEXT_BYTES:
        _fail_too_large(len(text.encode()), compact=False)
    data = _load_json(text)
    if not isinstance(data, dict):
        _fail(f"the policy document must be a JSON object, not {_describe(data)}")
    return _parse_object(data, _compact_size(data), text, deny_only=deny_only)


class _DuplicateKey(ValueError):
    pass


def _no_duplicate_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    # JSON parsers disagree on which of two equal keys wins, so a policy could mean one thing
    # to its author's tools and another to us.
    result: dict[str, Any] = {}
    for key, value in pairs:
        if key in result:
            raise _DuplicateKey(key)
        result[key] = value
    return result


def _reject_constant(name: str) -> NoReturn:
    raise ValueError(f"{name} is not a JSON value")


def _load_json(text: str) -> Any:
    try:
        return json.loads(
            text, object_pairs_hook=_no_duplicate_keys, parse_constant=_reject_constant
        )
    except json.JSONDecodeError as exc:
        _fail(
            f"the policy document is not valid JSON: {exc.msg} at line {exc.lineno}, "
            f"column {exc.colno}",
            line=exc.lineno,
            column=exc.colno,
        )
    except _DuplicateKey as exc:
        key = str(exc)
        _fail(
            f'the policy document repeats the key "{key}" within one object; each key may '
            "appear once",
            key=key,
        )
    except ValueError as exc:
        _fail(f"the policy document is not valid JSON: {exc}")
    except RecursionError:
        _fail("the policy document is nested too deeply")


def _dump_compact(data: object) -> str:
    try:
        return json.dumps(data, separators=(",", ":"), ensure_ascii=False, allow_nan=False)
    except (TypeError, ValueError) as exc:
        _fail(f"the policy document is not JSON data: {exc}")
    except RecursionError:
        _fail("the policy document is nested too deeply")


def _compact_size(data: dict[str, Any]) -> int:
    size_bytes = len(_dump_compact(data).encode())
    if size_bytes > MAX_POLICY_BYTES:
        _fail_too_large(size_bytes, compact=True)
    return size_bytes


def _parse_object(
    data: dict[str, Any], size_bytes: int, source: str, *, deny_only: bool
) -> PolicyDocument:
    for key in data:
        if key not in _DOCUMENT_KEYS:
            hint = _did_you_mean(key, _DOCUMENT_KEYS)
            _fail(
                f'the policy document has the unknown key "{key}"{hint}; a policy document '
                "holds Version, Statement and optionally Id",
                key=key,
            )
    if "Version" not in data:
        _fail(f'the policy document has no Version; add "Version": "{VERSIONS[0]}"', key="Version")
    version = data["Version"]
    if version not in VERSIONS:
        _fail(
            f'Version {_show(version)} is not supported; use "{VERSIONS[0]}"',
            key="Version",
        )
    policy_id = data.get("Id")
    if "Id" in data and not isinstance(policy_id, str):
        _fail(f"Id must be a string, not {_describe(policy_id)}", key="Id")
    if "Statement" not in data:
        _fail("the policy document has no Statement", key="Statement")
    raw = data["Statement"]
    if isinstance(raw, dict):
        items, single = [raw], True
    elif isinstance(raw, list) and raw:
        items, single = raw, False
    else:
        shown = "an empty list" if raw == [] else _describe(raw)
        _fail(
            f"Statement must be an object or a non-empty list of objects, not {shown}",
            key="Statement",
        )
    statements: list[Statement] = []
    sids: dict[str, int] = {}
    for index, item in enumerate(items):
        statement = _parse_statement(item, _Where(index, single=single), sids)
        if deny_only and statement.effect == "Allow":
            _Where(index, statement.sid, single=single).fail(
                "a guardrail policy may only deny; remove this Allow statement", key="Effect"
            )
        statements.append(statement)
    return PolicyDocument(str(version), tuple(statements), size_bytes, source, policy_id)


@dataclass(frozen=True, slots=True)
class _Where:
    """Which statement an error is about, for messages and details."""

    index: int
    sid: str | None = None
    single: bool = False

    def fail(self, message: str, *, key: str | None = None) -> NoReturn:
        place = "Statement" if self.single else f"Statement[{self.index}]"
        if self.sid is not None:
            place += f' (Sid "{self.sid}")'
        details: dict[str, Any] = {"statement": self.index, "sid": self.sid}
        if key is not None:
            details["key"] = key
        raise MalformedPolicyDocument(f"{place}: {message}", details=details)


def _parse_statement(item: object, where: _Where, sids: dict[str, int]) -> Statement:
    if not isinstance(item, dict):
        where.fail(f"a statement must be a JSON object, not {_describe(item)}")
    sid = item.get("Sid")
    if isinstance(sid, str) and _SID_RE.fullmatch(sid):
        where = _Where(where.index, sid, single=where.single)
    for key in item:
        if key not in _STATEMENT_KEYS:
            where.fail(_unknown_statement_key(key), key=key)
    if "Sid" in item:
        _check_sid(sid, where, sids)
    effect = _parse_effect(item, where)
    action_key = _one_of(item, "Action", "NotAction", where, example='"Action": "logs:*"')
    actions = _string_list(item[action_key], action_key, where)
    for action in actions:
        _check_action(action, action_key, where)
    resource_key = _one_of(item, "Resource", "NotResource", where, example='"Resource": "*"')
    resources = _string_list(item[resource_key], resource_key, where)
    for resource in resources:
        _check_resource(resource, resource_key, where)
    conditions = _parse_conditions(item["Condition"], where) if "Condition" in item else ()
    return Statement(
        index=where.index,
        sid=sid,
        effect=effect,
        actions=actions,
        not_action=action_key == "NotAction",
        resources=resources,
        not_resource=resource_key == "NotResource",
        conditions=conditions,
    )


def _unknown_statement_key(key: str) -> str:
    if key in ("Principal", "NotPrincipal"):
        return (
            f"{key} is not allowed in an identity-based policy; remove it (the policy applies "
            "to the user or group it is attached to)"
        )
    return (
        f'unknown key "{key}"{_did_you_mean(key, _STATEMENT_KEYS)}; a statement may hold '
        f"{_listing(_STATEMENT_KEYS)}"
    )


def _check_sid(sid: object, where: _Where, sids: dict[str, int]) -> None:
    if not isinstance(sid, str) or not _SID_RE.fullmatch(sid):
        where.fail(f"Sid {_show(sid)} must be a non-empty string of letters and digits", key="Sid")
    if sid in sids:
        where.fail(
            f'Sid "{sid}" is already used by Statement[{sids[sid]}]; Sids must be unique '
            "within a policy",
            key="Sid",
        )
    sids[sid] = where.index


def _parse_effect(item: dict[str, Any], where: _Where) -> Effect:
    if "Effect" not in item:
        where.fail('has no Effect; add "Effect": "Allow" or "Effect": "Deny"', key="Effect")
    effect = item["Effect"]
    if effect == "Allow":
        return "Allow"
    if effect == "Deny":
        return "Deny"
    hint = _did_you_mean(effect, ("Allow", "Deny")) if isinstance(effect, str) else ""
    where.fail(f'Effect {_show(effect)} must be "Allow" or "Deny"{hint}', key="Effect")


def _one_of(item: dict[str, Any], key: str, not_key: str, where: _Where, *, example: str) -> str:
    if key in item and not_key in item:
        where.fail(f"has both {key} and {not_key}; use exactly one", key=not_key)
    if key in item:
        return key
    if not_key in item:
        return not_key
    where.fail(f"has neither {key} nor {not_key}; add one, e.g. {example}", key=key)


def _string_list(value: object, key: str, where: _Where) -> tuple[str, ...]:
    values = [value] if isinstance(value, str) else value
    if not isinstance(values, list):
        where.fail(f"{key} must be a string or a list of strings, not {_describe(value)}", key=key)
    if not values:
        where.fail(f"{key} is an empty list; give at least one value", key=key)
    for position, item in enumerate(values):
        place = key if isinstance(value, str) else f"{key}[{position}]"
        if not isinstance(item, str):
            where.fail(f"{place} must be a string, not {_describe(item)}", key=key)
        if not item:
            where.fail(f"{place} is an empty string", key=key)
    return tuple(values)


def _check_action(action: str, key: str, where: _Where) -> None:
    if not action.strip("*"):
        return
    service, colon, name = action.partition(":")
    if not colon or not _ACTION_NAME_RE.fullmatch(name):
        where.fail(
            f'{key} "{action}" must look like service:Action, e.g. "logs:DeleteLogGroup", '
            '"logs:Delete*" or "*"',
            key=key,
        )
    if "*" in service or "?" in service:
        where.fail(
            f'{key} "{action}" has a wildcard in its service prefix; name the service, e.g. '
            f'"logs:{name}", or use "*" for every action',
            key=key,
        )
    if service.lower() not in SERVICES:
        where.fail(
            f'{key} "{action}" names the unknown service "{service}"'
            f"{_did_you_mean(service.lower(), SERVICES)}; services are {_listing(SERVICES)}",
            key=key,
        )


def _check_resource(resource: str, key: str, where: _Where) -> None:
    if not resource.strip("*"):
        return
    if "${" in resource:
        _fail_policy_variable(resource, key, where)
    parts = resource.split(":")
    if parts[0] != "arn" or len(parts) < 2:
        where.fail(f'{key} "{resource}" must be "*" or an ARN such as "{_ARN_EXAMPLE}"', key=key)
    if not wildcard_match(parts[1], "watchkeep"):
        where.fail(
            f'{key} "{resource}" has the partition "{parts[1]}"; watchkeep ARNs start with '
            '"arn:watchkeep:"',
            key=key,
        )
    if len(parts) > 2 and not any(wildcard_match(parts[2], service) for service in SERVICES):
        where.fail(
            f'{key} "{resource}" names the unknown service "{parts[2]}"; services are '
            f"{_listing(SERVICES)} (lower case in ARNs)",
            key=key,
        )
    if "*" not in resource and len(parts) < 6:
        where.fail(
            f'{key} "{resource}" has {len(parts)} of the 6 parts of an ARN '
            "(arn:watchkeep:<service>:<region>:<account>:<resource>)",
            key=key,
        )


def _fail_policy_variable(value: str, key: str, where: _Where) -> NoReturn:
    where.fail(
        f'{key} "{value}" uses a policy variable; variables are not supported, so it would be '
        "compared literally: use a Condition on wk:username instead",
        key=key,
    )


def _parse_conditions(block: object, where: _Where) -> tuple[Condition, ...]:
    if not isinstance(block, dict) or not block:
        shown = "an empty object" if block == {} else _describe(block)
        where.fail(
            "Condition must be an object mapping operators to {condition key: values}, e.g. "
            f'{{"IpAddress": {{"wk:SourceIp": "10.0.0.0/8"}}}}, not {shown}',
            key="Condition",
        )
    conditions: list[Condition] = []
    for operator, tests in block.items():
        kind = CONDITION_OPERATORS.get(operator)
        if kind is None:
            where.fail(_unknown_operator(operator), key=operator)
        if not isinstance(tests, dict) or not tests:
            shown = "an empty object" if tests == {} else _describe(tests)
            where.fail(
                f"Condition {operator} must be an object mapping condition keys to values, "
                f"not {shown}",
                key=operator,
            )
        seen: set[str] = set()
        for raw_key, raw_values in tests.items():
            name, key_kind = _condition_key(raw_key, operator, where)
            if name in seen:
                where.fail(f"Condition {operator} names {name} twice", key=name)
            seen.add(name)
            if key_kind != kind:
                where.fail(_kind_mismatch(operator, name, key_kind), key=name)
            values = raw_values if isinstance(raw_values, list) else [raw_values]
            if not values:
                where.fail(f"Condition {operator} {name} is an empty list", key=name)
            try:
                conditions.append(compile_condition(operator, name, values))
            except ValueError as exc:
                where.fail(f"Condition {operator} {name}: {exc}", key=name)
    return tuple(conditions)


def _unknown_operator(operator: str) -> str:
    if operator.endswith("IfExists"):
        return (
            f'the condition operator "{operator}" is not supported: every v1 condition key is '
            f"always present, so use {operator.removesuffix('IfExists')}"
        )
    if ":" in operator:
        return (
            f'the condition operator "{operator}" is not supported: set operators '
            "(ForAnyValue:, ForAllValues:) do not apply, every v1 condition key has one value"
        )
    return (
        f'unknown condition operator "{operator}"{_did_you_mean(operator, CONDITION_OPERATORS)}'
        f"; operators are {_listing(CONDITION_OPERATORS)}"
    )


def _condition_key(raw_key: str, operator: str, where: _Where) -> tuple[str, str]:
    known = CONDITION_KEYS.get(raw_key.lower())
    if known is not None:
        return known
    names = [name for name, _ in CONDITION_KEYS.values()]
    # aws:SourceIp and friends, copied from AWS examples, have a wk: twin.
    _, _, bare = raw_key.rpartition(":")
    hint = _did_you_mean(f"wk:{bare}", names)
    where.fail(
        f'Condition {operator} names the unknown condition key "{raw_key}"{hint}; keys are '
        f"{_listing(names)}",
        key=raw_key,
    )


def _kind_mismatch(operator: str, name: str, key_kind: str) -> str:
    fitting = [op for op, kind in CONDITION_OPERATORS.items() if kind == key_kind]
    return (
        f"the operator {operator} does not apply to {name}, which is {_KIND_NAMES[key_kind]}; "
        f"use {_listing(fitting, 'or')}"
    )


def _did_you_mean(word: str, choices: Iterable[str]) -> str:
    choices = list(choices)
    folded = [c for c in choices if c.lower() == word.lower()]
    close = folded or difflib.get_close_matches(word, choices, n=1, cutoff=0.75)
    return f' (did you mean "{close[0]}"?)' if close else ""


def _listing(words: Iterable[str], conjunction: str = "and") -> str:
    *rest, last = words
    return f"{', '.join(rest)} {conjunction} {last}" if rest else last


def _show(value: object) -> str:
    """A short JSON rendering of a bad value, for messages."""
    text = json.dumps(value, ensure_ascii=False)
    return text if len(text) <= 60 else text[:57] + "..."


def _describe(value: object) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int | float):
        return "a number"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, list):
        return "a list"
    if isinstance(value, dict):
        return "an object"
    return type(value).__name__


def _fail(message: str, **details: Any) -> NoReturn:
    raise MalformedPolicyDocument(message, details=details)


def _fail_too_large(size_bytes: int, *, compact: bool) -> NoReturn:
    counted = "without whitespace" if compact else "as sent, far too large to parse"
    _fail(
        f"the policy document is {size_bytes} bytes {counted}; the limit is {MAX_POLICY_BYTES} "
        "bytes, whitespace between JSON tokens not counted: split it into several policies",
        size_bytes=size_bytes,
        limit_bytes=MAX_POLICY_BYTES,
    )
