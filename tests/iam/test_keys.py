"""Key pair generation and the parsing of Bearer headers and key pair strings."""

from __future__ import annotations

import pytest

from core.errors import Unauthenticated
from iam.keys import KEY_ID_RE, SECRET_RE, generate_key_pair, parse_bearer, parse_key_pair

KEY_ID = "WKIAABCDEFGHIJKLMN23"
SECRET = "wks_" + "aZ09_-" * 6 + "abcd"
assert KEY_ID_RE.match(KEY_ID) and SECRET_RE.match(SECRET)

MISSING = "MissingAuthenticationTokenException"
UNRECOGNIZED = "UnrecognizedClientException"
INVALID = "InvalidSignatureException"


def test_generated_pairs_are_well_formed_and_distinct() -> None:
    pairs = [generate_key_pair() for _ in range(200)]
    for key_id, secret in pairs:
        assert KEY_ID_RE.match(key_id), key_id
        assert SECRET_RE.match(secret)
    assert len({key_id for key_id, _ in pairs}) == len(pairs)
    assert len({secret for _, secret in pairs}) == len(pairs)


@pytest.mark.parametrize(
    "header",
    [
        f"Bearer {KEY_ID}:{SECRET}",
        f"bearer {KEY_ID}:{SECRET}",
        f"BEARER {KEY_ID}:{SECRET}",
        f"  Bearer   {KEY_ID}:{SECRET}  ",
    ],
    ids=["canonical", "lower-scheme", "upper-scheme", "extra-spaces"],
)
def test_parse_bearer_accepts(header: str) -> None:
    assert parse_bearer(header) == (KEY_ID, SECRET)


# (header, code, access_key_id in details or None, message fragment)
BEARER_ERRORS = [
    (None, MISSING, None, "missing credentials"),
    ("", MISSING, None, "missing credentials"),
    ("   ", MISSING, None, "missing credentials"),
    ("Bearer", MISSING, None, "nothing after 'Bearer'"),
    ("Bearer    ", MISSING, None, "nothing after 'Bearer'"),
    (f"Basic {KEY_ID}:{SECRET}", UNRECOGNIZED, None, "'Basic' scheme"),
    (f"{KEY_ID}:{SECRET}", UNRECOGNIZED, KEY_ID, "lacks the 'Bearer ' prefix"),
    (f"{SECRET}:{KEY_ID}", UNRECOGNIZED, None, "does not use the Bearer scheme"),
    (f"Bearer {KEY_ID}", UNRECOGNIZED, KEY_ID, "no ':'"),
    (f"Bearer {SECRET}", UNRECOGNIZED, None, "no ':'"),
    (f"Bearer {SECRET}:{KEY_ID}", UNRECOGNIZED, None, "not a watchkeep key id"),
    (f"Bearer {KEY_ID.lower()}:{SECRET}", UNRECOGNIZED, None, "not a watchkeep key id"),
    (f"Bearer {KEY_ID}X:{SECRET}", UNRECOGNIZED, None, "expected WKIA followed by 16"),
    (f"Bearer AKIA{KEY_ID[4:]}:{SECRET}", UNRECOGNIZED, None, "not a watchkeep key id"),
    (f"Bearer {KEY_ID}:", INVALID, KEY_ID, "secret"),
    (f"Bearer {KEY_ID}:{SECRET}x", INVALID, KEY_ID, "expected wks_ followed by 40"),
    (f"Bearer {KEY_ID}:{SECRET[:-1]}", INVALID, KEY_ID, "malformed"),
    (f"Bearer {KEY_ID}:{SECRET[:-1]}!", INVALID, KEY_ID, "malformed"),
    (f"Bearer {KEY_ID}:{SECRET.replace('wks_', 'wkx_')}", INVALID, KEY_ID, "malformed"),
]


@pytest.mark.parametrize(
    ("header", "code", "access_key_id", "fragment"),
    BEARER_ERRORS,
    ids=[
        "no-header",
        "empty",
        "blank",
        "bearer-only",
        "bearer-blank",
        "basic-scheme",
        "no-scheme",
        "no-scheme-reversed-pair",
        "id-without-secret",
        "secret-without-id",
        "reversed-pair",
        "lowercase-id",
        "id-too-long",
        "aws-prefix",
        "empty-secret",
        "secret-too-long",
        "secret-too-short",
        "secret-bad-char",
        "secret-bad-prefix",
    ],
)
def test_parse_bearer_rejects(
    header: str | None, code: str, access_key_id: str | None, fragment: str
) -> None:
    with pytest.raises(Unauthenticated) as caught:
        parse_bearer(header)
    error = caught.value
    assert error.code == code
    assert error.status == 401
    assert fragment in error.message
    assert error.details.get("access_key_id") == access_key_id
    # Nothing presented as (or instead of) a secret may come back in the message.
    assert SECRET[4:] not in error.message
    assert "wks_" not in error.message.replace("expected wks_", "")


def test_parse_key_pair_accepts_surrounding_whitespace() -> None:
    assert parse_key_pair(f" {KEY_ID}:{SECRET}\n") == (KEY_ID, SECRET)


@pytest.mark.parametrize(
    ("text", "fragment"),
    [
        ("", "no ':'"),
        (KEY_ID, "no ':'"),
        (f"{SECRET}:{KEY_ID}", "key id of the key pair is malformed"),
        (f"Bearer {KEY_ID}:{SECRET}", "key id of the key pair is malformed"),
        (f"{KEY_ID}:{SECRET}x", f"secret of the key pair for key id {KEY_ID} is malformed"),
    ],
    ids=["empty", "id-only", "reversed", "with-scheme", "long-secret"],
)
def test_parse_key_pair_rejects(text: str, fragment: str) -> None:
    with pytest.raises(ValueError) as caught:
        parse_key_pair(text)
    assert fragment in str(caught.value)
    assert SECRET[4:] not in str(caught.value)
