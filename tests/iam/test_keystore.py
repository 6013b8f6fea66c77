"""The master key, secret encryption, the access_keys table and KeyRing, on real files."""

from __future__ import annotations

import os
import stat
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import duckdb
import pytest

from core.errors import Unauthenticated
from iam.keys import generate_key_pair, parse_key_pair
from iam.keystore import (
    ACTIVE,
    INACTIVE,
    ROOT_PRINCIPAL,
    AccessKey,
    AuthenticatedKey,
    KeyRing,
    ensure_schema,
    get_key,
    list_keys,
    put_key,
    set_status,
)
from iam.secrets import MasterKeyError, SecretBox, generate_master_key, load_master_key

NOW_MS = 1_700_000_000_000


@pytest.fixture
def db(tmp_path: Path) -> Iterator[duckdb.DuckDBPyConnection]:
    conn = duckdb.connect(str(tmp_path / "catalog.duckdb"))
    yield conn
    conn.close()


@pytest.fixture
def box() -> SecretBox:
    return SecretBox(generate_master_key())


@pytest.fixture
def ring(box: SecretBox, db: duckdb.DuckDBPyConnection) -> KeyRing:
    return KeyRing(box, db.cursor)


def bearer(pair: str) -> str:
    return f"Bearer {pair}"


# -- master key ---------------------------------------------------------------------------


def test_key_file_is_created_once_with_mode_0600(tmp_path: Path) -> None:
    key_file = tmp_path / "secrets" / "nested" / "master.key"
    key, warnings = load_master_key(env_value=None, key_file=key_file)
    assert warnings == []
    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600
    assert key_file.read_bytes().strip() == key
    again, _ = load_master_key(env_value=None, key_file=key_file)
    assert again == key


def test_env_value_wins_and_leaves_the_key_file_alone(tmp_path: Path) -> None:
    env_key = generate_master_key()
    key_file = tmp_path / "master.key"
    key, warnings = load_master_key(env_value=f" {env_key.decode()}\n", key_file=key_file)
    assert (key, warnings) == (env_key, [])
    assert not key_file.exists()


@pytest.mark.parametrize(
    "env_value",
    ["", "not-a-key", "c2hvcnQ=", generate_master_key().decode()[:-2], "é" * 44],
    ids=["empty", "garbage", "short-base64", "truncated", "non-ascii"],
)
def test_malformed_env_key_is_refused(tmp_path: Path, env_value: str) -> None:
    with pytest.raises(MasterKeyError, match="WATCHKEEP_MASTER_KEY is not a valid Fernet key"):
        load_master_key(env_value=env_value, key_file=tmp_path / "master.key")


def test_malformed_key_file_is_refused(tmp_path: Path) -> None:
    key_file = tmp_path / "master.key"
    key_file.write_text("oops\n")
    with pytest.raises(MasterKeyError, match=f"master key file {key_file} is not a valid"):
        load_master_key(env_value=None, key_file=key_file)


def test_key_file_inside_data_dir_is_warned_about(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    _, warnings = load_master_key(
        env_value=None, key_file=data_dir / "master.key", data_dir=data_dir
    )
    assert len(warnings) == 1
    assert "lies inside the data directory" in warnings[0]
    assert "WATCHKEEP_MASTER_KEY_FILE" in warnings[0]
    _, outside = load_master_key(
        env_value=None, key_file=tmp_path / "elsewhere" / "master.key", data_dir=data_dir
    )
    assert outside == []


def test_key_file_readable_by_others_is_warned_about(tmp_path: Path) -> None:
    key_file = tmp_path / "master.key"
    load_master_key(env_value=None, key_file=key_file)
    os.chmod(key_file, 0o644)
    _, warnings = load_master_key(env_value=None, key_file=key_file)
    assert warnings == [
        f"master key file {key_file} has mode 0644, readable by other users; "
        f"run chmod 600 {key_file}"
    ]


def test_secret_box_round_trip_and_wrong_master_key() -> None:
    box = SecretBox(generate_master_key())
    ciphertext = box.encrypt("wks_example")
    assert box.decrypt(ciphertext) == "wks_example"
    assert b"wks_example" not in ciphertext
    assert "master key" in repr(box) and "wks_" not in repr(box)
    other = SecretBox(generate_master_key())
    with pytest.raises(MasterKeyError, match="encrypted under another master key"):
        other.decrypt(ciphertext, access_key_id="WKIAABCDEFGHIJKLMN23")


# -- the access_keys table ----------------------------------------------------------------


def test_table_functions(db: duckdb.DuckDBPyConnection) -> None:
    ensure_schema(db)
    ensure_schema(db)
    first = AccessKey("WKIAAAAAAAAAAAAAAAAA", b"cipher-1", ROOT_PRINCIPAL, ACTIVE, NOW_MS)
    second = AccessKey("WKIABBBBBBBBBBBBBBBB", b"cipher-2", "u-1", ACTIVE, NOW_MS + 1, NOW_MS + 5)
    put_key(db, second)
    put_key(db, first)
    assert get_key(db, first.access_key_id) == first
    assert get_key(db, "WKIACCCCCCCCCCCCCCCC") is None
    assert list_keys(db) == [first, second]
    assert set_status(db, first.access_key_id, INACTIVE) is True
    assert set_status(db, "WKIACCCCCCCCCCCCCCCC", INACTIVE) is False
    assert get_key(db, first.access_key_id) == AccessKey(
        first.access_key_id, b"cipher-1", ROOT_PRINCIPAL, INACTIVE, NOW_MS
    )
    replaced = AccessKey(first.access_key_id, b"cipher-3", ROOT_PRINCIPAL, ACTIVE, NOW_MS + 9)
    put_key(db, replaced)
    assert get_key(db, first.access_key_id) == replaced
    with pytest.raises(ValueError, match="key status must be one of Active, Inactive"):
        set_status(db, first.access_key_id, "Deleted")


def test_access_key_repr_hides_the_ciphertext() -> None:
    key = AccessKey("WKIAAAAAAAAAAAAAAAAA", b"cipher-bytes", ROOT_PRINCIPAL, ACTIVE, NOW_MS)
    assert "cipher-bytes" not in repr(key)


# -- root key bootstrap -------------------------------------------------------------------


def roots(db: duckdb.DuckDBPyConnection) -> dict[str, str]:
    return {k.access_key_id: k.status for k in list_keys(db) if k.principal == ROOT_PRINCIPAL}


def test_root_key_is_generated_once(ring: KeyRing, db: duckdb.DuckDBPyConnection) -> None:
    pair = ring.ensure_root_key(None, NOW_MS)
    assert pair is not None
    key_id, _ = parse_key_pair(pair)
    assert ring.ensure_root_key(None, NOW_MS + 1) is None
    assert roots(db) == {key_id: ACTIVE}
    assert ring.authenticate(bearer(pair)) == AuthenticatedKey(ROOT_PRINCIPAL, key_id)


def test_admin_key_is_honoured(ring: KeyRing, db: duckdb.DuckDBPyConnection) -> None:
    pair = ":".join(generate_key_pair())
    assert ring.ensure_root_key(pair, NOW_MS) is None
    assert ring.ensure_root_key(pair, NOW_MS + 1) is None
    key_id, _ = parse_key_pair(pair)
    assert roots(db) == {key_id: ACTIVE}
    assert get_key(db, key_id) is not None
    assert ring.authenticate(bearer(pair)).access_key_id == key_id


def test_changed_admin_key_replaces_the_old_root_key(
    ring: KeyRing, db: duckdb.DuckDBPyConnection
) -> None:
    generated = ring.ensure_root_key(None, NOW_MS)
    assert generated is not None
    old = ":".join(generate_key_pair())
    new = ":".join(generate_key_pair())
    ring.ensure_root_key(old, NOW_MS + 1)
    ring.ensure_root_key(new, NOW_MS + 2)
    ids = [parse_key_pair(p)[0] for p in (generated, old, new)]
    assert roots(db) == {ids[0]: INACTIVE, ids[1]: INACTIVE, ids[2]: ACTIVE}
    assert ring.authenticate(bearer(new)).access_key_id == ids[2]
    for stale in (generated, old):
        with pytest.raises(Unauthenticated) as caught:
            ring.authenticate(bearer(stale))
        assert caught.value.code == "UnrecognizedClientException"
        assert caught.value.details["key_status"] == INACTIVE
    # Unsetting the admin key keeps the last one; nothing new is generated.
    assert ring.ensure_root_key(None, NOW_MS + 3) is None
    # Going back to an older admin key reactivates it.
    ring.ensure_root_key(old, NOW_MS + 4)
    assert roots(db) == {ids[0]: INACTIVE, ids[1]: ACTIVE, ids[2]: INACTIVE}


def test_admin_key_with_same_id_and_new_secret_replaces_the_secret(
    ring: KeyRing, db: duckdb.DuckDBPyConnection
) -> None:
    key_id, old_secret = generate_key_pair()
    _, new_secret = generate_key_pair()
    ring.ensure_root_key(f"{key_id}:{old_secret}", NOW_MS)
    assert ring.authenticate(bearer(f"{key_id}:{old_secret}")).access_key_id == key_id
    ring.ensure_root_key(f"{key_id}:{new_secret}", NOW_MS + 1)
    assert roots(db) == {key_id: ACTIVE}
    assert ring.authenticate(bearer(f"{key_id}:{new_secret}")).access_key_id == key_id
    with pytest.raises(Unauthenticated) as caught:
        ring.authenticate(bearer(f"{key_id}:{old_secret}"))
    assert caught.value.code == "InvalidSignatureException"


def test_admin_key_id_of_another_principal_is_refused(
    ring: KeyRing, box: SecretBox, db: duckdb.DuckDBPyConnection
) -> None:
    key_id, secret = generate_key_pair()
    ensure_schema(db)
    put_key(db, AccessKey(key_id, box.encrypt(secret), "u-1", ACTIVE, NOW_MS))
    with pytest.raises(ValueError, match="already belongs to principal 'u-1'"):
        ring.ensure_root_key(f"{key_id}:{secret}", NOW_MS)


def test_wrong_master_key_fails_at_startup(tmp_path: Path) -> None:
    path = str(tmp_path / "catalog.duckdb")
    with duckdb.connect(path) as conn:
        pair = KeyRing(SecretBox(generate_master_key()), conn.cursor).ensure_root_key(None, 1)
    assert pair is not None
    with duckdb.connect(path) as conn:
        ring = KeyRing(SecretBox(generate_master_key()), conn.cursor)
        with pytest.raises(MasterKeyError, match="another master key"):
            ring.ensure_root_key(None, 2)
        with pytest.raises(MasterKeyError, match="another master key"):
            ring.ensure_root_key(pair, 2)
        with pytest.raises(MasterKeyError, match="another master key"):
            ring.authenticate(bearer(pair))


# -- authenticate -------------------------------------------------------------------------


@pytest.fixture
def root_pair(ring: KeyRing) -> str:
    pair = ring.ensure_root_key(None, NOW_MS)
    assert pair is not None
    return pair


def test_authenticate_outcomes(ring: KeyRing, root_pair: str) -> None:
    key_id, secret = parse_key_pair(root_pair)
    unknown_id, other_secret = generate_key_pair()
    cases = [
        (None, "MissingAuthenticationTokenException", {}),
        (
            f"Bearer {unknown_id}:{secret}",
            "UnrecognizedClientException",
            {"access_key_id": unknown_id},
        ),
        (f"Bearer {key_id}:{other_secret}", "InvalidSignatureException", {"access_key_id": key_id}),
        (f"Bearer {key_id}:{secret[:-1]}", "InvalidSignatureException", {"access_key_id": key_id}),
    ]
    for header, code, details in cases:
        with pytest.raises(Unauthenticated) as caught:
            ring.authenticate(header)
        assert (caught.value.code, caught.value.details) == (code, details)
        assert secret[4:] not in caught.value.message
        assert other_secret[4:] not in caught.value.message


def test_the_cached_check_answers_only_for_keys_it_has_seen(
    ring: KeyRing, db: duckdb.DuckDBPyConnection, root_pair: str
) -> None:
    key_id, secret = parse_key_pair(root_pair)
    ring.forget()
    assert ring.authenticate_cached(bearer(root_pair)) is None  # would need the database
    assert ring.authenticate(bearer(root_pair)).access_key_id == key_id
    assert ring.authenticate_cached(bearer(root_pair)) == ring.authenticate(bearer(root_pair))
    with pytest.raises(Unauthenticated) as caught:
        ring.authenticate_cached(f"Bearer {key_id}:{generate_key_pair()[1]}")
    assert caught.value.code == "InvalidSignatureException"
    with pytest.raises(Unauthenticated) as missing:
        ring.authenticate_cached(None)
    assert missing.value.code == "MissingAuthenticationTokenException"
    unknown_id, _ = generate_key_pair()
    assert ring.authenticate_cached(f"Bearer {unknown_id}:{secret}") is None
    # A key deactivated through the ring is forgotten, so the cache cannot let it in.
    set_status(db, key_id, INACTIVE)
    ring.forget()
    assert ring.authenticate_cached(bearer(root_pair)) is None


def test_unknown_and_inactive_keys_look_alike_to_the_caller(
    ring: KeyRing, db: duckdb.DuckDBPyConnection, root_pair: str
) -> None:
    key_id, secret = parse_key_pair(root_pair)
    unknown_id, _ = generate_key_pair()
    set_status(db, key_id, INACTIVE)
    with pytest.raises(Unauthenticated) as inactive:
        ring.authenticate(bearer(root_pair))
    with pytest.raises(Unauthenticated) as unknown:
        ring.authenticate(f"Bearer {unknown_id}:{secret}")
    assert inactive.value.code == unknown.value.code == "UnrecognizedClientException"
    assert inactive.value.message == unknown.value.message.replace(unknown_id, key_id)
    assert inactive.value.details == {"access_key_id": key_id, "key_status": INACTIVE}


def test_authenticate_is_safe_across_threads(ring: KeyRing, root_pair: str) -> None:
    key_id, _ = parse_key_pair(root_pair)
    wrong = f"{key_id}:{generate_key_pair()[1]}"

    def attempt(i: int) -> str:
        try:
            return ring.authenticate(bearer(root_pair if i % 2 else wrong)).access_key_id
        except Unauthenticated as error:
            return error.code

    with ThreadPoolExecutor(max_workers=8) as pool:
        results = list(pool.map(attempt, range(400)))
    assert results[1::2] == [key_id] * 200
    assert results[0::2] == ["InvalidSignatureException"] * 200


def test_plain_secrets_never_reach_the_disk(tmp_path: Path) -> None:
    key_file = tmp_path / "master.key"
    master_key, _ = load_master_key(env_value=None, key_file=key_file)
    admin = ":".join(generate_key_pair())
    with duckdb.connect(str(tmp_path / "catalog.duckdb")) as conn:
        ring = KeyRing(SecretBox(master_key), conn.cursor)
        generated = ring.ensure_root_key(None, NOW_MS)
        assert generated is not None
        ring.ensure_root_key(admin, NOW_MS + 1)
        ring.authenticate(bearer(admin))
        stored = [k.secret_ciphertext for k in list_keys(conn)]
        conn.execute("CHECKPOINT")
    files = [p for p in tmp_path.rglob("*") if p.is_file()]
    assert key_file in files
    # The scan would prove nothing if the rows had not reached the file.
    assert all(c in (tmp_path / "catalog.duckdb").read_bytes() for c in stored)
    for pair in (generated, admin):
        _, secret = parse_key_pair(pair)
        for path in files:
            assert secret.encode() not in path.read_bytes(), path
            assert secret[4:].encode() not in path.read_bytes(), path
