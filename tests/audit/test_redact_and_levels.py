"""Redaction rules R2-R4 and R7, and audit levels with their floors, as tables."""

from __future__ import annotations

from typing import Any

import pytest

from audit.levels import DEFAULT_POLICY, CallFacts, Level, LevelRule, level_for
from audit.redact import HIDDEN, Redactor, cap_size, looks_secret, truncate_utf8

SECRET = "wks_" + "A1b2" * 10
JWT = "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjM0NTY3ODkwIn0.dozjgNryP4J3jVmNHl0w5N_XgL0n3I9PlFUP0THsR8U"
PEM = "-----BEGIN PRIVATE KEY-----\nMIIBVQIBADANBg\n-----END PRIVATE KEY-----"


@pytest.mark.parametrize(
    ("value", "expected", "paths"),
    [
        ({"name": "app"}, {"name": "app"}, []),
        ({"password": "hunter2"}, {"password": HIDDEN}, ["p.password"]),
        ({"webhook_secret": {"a": 1}}, {"webhook_secret": HIDDEN}, ["p.webhook_secret"]),
        ({"Api-Key": "k"}, {"Api-Key": HIDDEN}, ["p.Api-Key"]),
        ({"next_token": "abc"}, {"next_token": "abc"}, []),
        ({"nextToken": "abc"}, {"nextToken": "abc"}, []),
        ({"note": f"key is {SECRET}"}, {"note": f"key is {HIDDEN}"}, ["p.note"]),
        ({"items": ["ok", JWT]}, {"items": ["ok", HIDDEN]}, ["p.items[1]"]),
        ({"pem": PEM}, {"pem": HIDDEN}, ["p.pem"]),
        ({"nested": {"cookie": "c", "fine": 1}}, {"nested": {"cookie": HIDDEN, "fine": 1}}, ["p.nested.cookie"]),
        ({"password": None}, {"password": None}, []),
    ],
)  # fmt: skip
def test_redaction_rules(value: Any, expected: Any, paths: list[str]) -> None:
    redactor = Redactor()
    assert redactor.redact(value, "p") == expected
    assert redactor.paths == paths


def test_schema_marks_drop_or_hide_members() -> None:
    redactor = Redactor()
    out = redactor.redact(
        {"secret_access_key": SECRET, "url": "http://x", "access_key_id": "WKIA"},
        "responseElements",
        {"secret_access_key": "drop", "url": "hide"},
    )
    assert out == {"url": HIDDEN, "access_key_id": "WKIA"}
    assert redactor.paths == ["responseElements.secret_access_key", "responseElements.url"]


def test_free_text_is_scrubbed_and_capped() -> None:
    redactor = Redactor()
    text = redactor.scrub_text(f"curl/8 {SECRET} " + "é" * 1000, "userAgent")
    assert SECRET not in text and HIDDEN in text
    assert len(text.encode()) <= 1024
    assert redactor.paths == ["userAgent"]


@pytest.mark.parametrize(
    ("name", "secret"),
    [("password", True), ("PassWord", True), ("x_auth_token", True), ("privateKey", True),
     ("signature", True), ("sequenceToken", False), ("user_name", False), ("retention_days", False)],
)  # fmt: skip
def test_name_deny_list(name: str, secret: bool) -> None:
    assert looks_secret(name) is secret


def test_size_caps() -> None:
    assert cap_size({"a": "x" * 10}, 100) == {"a": "x" * 10}
    capped = cap_size({"a": "x" * 200}, 100)
    assert capped["omitted"] is True and capped["originalBytes"] > 100
    assert truncate_utf8("ééé", 5) == "éé"


def facts(**overrides: Any) -> CallFacts:
    base = dict(
        event_source="logs.watchkeep",
        event_name="FilterLogEvents",
        read_only=True,
        management=False,
        user_name="alice",
        denied_or_unauthenticated=False,
    )
    return CallFacts(**(base | overrides))


SILENCE = [LevelRule(level="None")]


@pytest.mark.parametrize(
    ("call", "policy", "level"),
    [
        (facts(), DEFAULT_POLICY, Level.REQUEST),
        (facts(read_only=False, management=True), DEFAULT_POLICY, Level.REQUEST_RESPONSE),
        (facts(read_only=False, management=False), DEFAULT_POLICY, Level.METADATA),
        (facts(), SILENCE, Level.NONE),  # a successful read may be silenced
        (facts(read_only=False), SILENCE, Level.METADATA),  # a write may not
        (facts(denied_or_unauthenticated=True), SILENCE, Level.METADATA),
        (facts(event_source="cloudtrail.watchkeep"), SILENCE, Level.METADATA),
        (facts(event_source="iam.watchkeep"), SILENCE, Level.METADATA),
        (facts(), [LevelRule(level="None", eventName="Describe*"), LevelRule(level="Metadata")], Level.METADATA),
        (facts(event_name="DescribeLogGroups"), [LevelRule(level="None", eventName="Describe*")], Level.NONE),
        (facts(), [LevelRule(level="RequestResponse", userName="bob")], Level.REQUEST),
        (facts(user_name=None), [LevelRule(level="None", userName="*")], Level.REQUEST),
    ],
)  # fmt: skip
def test_levels_with_floors(call: CallFacts, policy: list[LevelRule], level: Level) -> None:
    assert level_for(call, policy) is level


def test_unknown_level_is_refused() -> None:
    with pytest.raises(ValueError, match="level must be one of"):
        LevelRule(level="Everything")
