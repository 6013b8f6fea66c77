"""``Idempotency-Key`` on real files: scoped by caller, group and stream, checked against the
request body, and kept with its scope through the WAL, the catalog and a restart."""

from __future__ import annotations

from concurrent.futures import Future
from pathlib import Path
from typing import Any

import duckdb
import pytest

from core.errors import IdempotencyKeyConflict
from store.engine import Store
from store.layout import CATALOG_FILE, WAL_DIR
from store.wal import encode_record, read_records
from tests.store.test_engine import batch, crash, open_store, rows

ALICE = "arn:watchkeep:iam::000000000000:user/alice"
BOB = "arn:watchkeep:iam::000000000000:user/bob"


def submit(
    store: Store,
    group: str,
    messages: list[str],
    *,
    stream: str = "s",
    principal: str = ALICE,
    body: bytes | None = None,
    key: str = "k",
) -> Future[dict[str, Any]]:
    """One ingest call as the route makes it: the body is what the messages came from."""
    events = batch(messages)
    raw = body if body is not None else "\n".join(messages).encode()
    return store.submit_logs(
        group,
        stream,
        events,
        events.select([]),
        {"accepted": len(messages)},
        idempotency_key=key,
        principal=principal,
        request_body=raw,
    )


def send(store: Store, group: str, messages: list[str], **kwargs: Any) -> dict[str, Any]:
    return submit(store, group, messages, **kwargs).result(10)


def messages(store: Store, group: str) -> list[str]:
    return [m for _, m in rows(store, group)]


@pytest.mark.parametrize(
    ("second", "stored_in"),
    [
        ({"group": "other"}, "other"),
        ({"stream": "other"}, "g"),
        ({"principal": BOB}, "g"),
    ],
    ids=["another-group", "another-stream", "another-principal"],
)
def test_same_key_in_another_scope_is_an_independent_key(
    tmp_path: Path, second: dict[str, str], stored_in: str
) -> None:
    store = open_store(tmp_path)
    assert send(store, "g", ["first"]) == {"accepted": 1}
    args: dict[str, Any] = {"group": "g", **second}
    group = args.pop("group")
    assert send(store, group, ["second"], **args) == {"accepted": 1}  # no "duplicate"
    assert "second" in messages(store, stored_in)
    assert messages(store, "g")[0] == "first"
    store.close()


def test_replay_with_the_same_body_gives_the_first_answer_and_stores_nothing(
    tmp_path: Path,
) -> None:
    store = open_store(tmp_path)
    assert send(store, "g", ["a", "b"]) == {"accepted": 2}
    assert send(store, "g", ["a", "b"]) == {"accepted": 2, "duplicate": True}
    assert messages(store, "g") == ["a", "b"]
    store.close()


def test_same_key_with_another_body_is_refused_and_stores_nothing(tmp_path: Path) -> None:
    store = open_store(tmp_path)
    send(store, "g", ["a"])
    with pytest.raises(IdempotencyKeyConflict) as info:
        send(store, "g", ["changed"])
    assert info.value.status == 409
    assert info.value.code == "IdempotentParameterMismatchException"
    assert "'k'" in info.value.message and "different body" in info.value.message
    assert info.value.details == {"idempotency_key": "k", "group": "g", "stream": "s"}
    assert messages(store, "g") == ["a"]
    store.close()


def test_a_conflicting_body_is_refused_while_the_first_is_still_in_flight(tmp_path: Path) -> None:
    store = open_store(tmp_path)
    send(store, "g", ["warm"], key="warm")
    commit = store._commit
    assert commit is not None
    with commit._file_lock:  # the first attempt is on its way to the WAL
        first = submit(store, "g", ["a"])
        with pytest.raises(IdempotencyKeyConflict):
            submit(store, "g", ["b"])
        retry = submit(store, "g", ["a"])
    assert first.result(10) == {"accepted": 1}
    assert retry.result(10) == {"accepted": 1, "duplicate": True}
    assert messages(store, "g") == ["warm", "a"]
    store.close()


@pytest.mark.parametrize("flushed", [True, False], ids=["from-catalog", "from-wal-replay"])
def test_scope_and_body_hash_survive_a_crash(tmp_path: Path, flushed: bool) -> None:
    store = open_store(tmp_path)
    send(store, "g", ["a"])
    if flushed:
        store.flush(force=True)
    crash(store)
    again = open_store(tmp_path)
    assert send(again, "g", ["a"]) == {"accepted": 1, "duplicate": True}
    with pytest.raises(IdempotencyKeyConflict):
        send(again, "g", ["changed"])
    assert send(again, "g", ["bob's"], principal=BOB) == {"accepted": 1}
    assert send(again, "h", ["elsewhere"]) == {"accepted": 1}
    assert messages(again, "g") == ["a", "bob's"]
    # What a replay remembered is saved by the next flush, scope and hash included.
    again.flush(force=True)
    crash(again)
    third = open_store(tmp_path)
    with pytest.raises(IdempotencyKeyConflict):
        send(third, "g", ["changed"])
    assert send(third, "g", ["bob's"], principal=BOB) == {"accepted": 1, "duplicate": True}
    third.close()


def test_keys_saved_before_scoping_still_load_in_a_scope_of_their_own(tmp_path: Path) -> None:
    # A data directory of the previous version: an unscoped key table, and an unflushed WAL
    # record whose header holds [key, response].
    store = open_store(tmp_path)
    send(store, "g", ["flushed"], key="old-flushed")
    store.flush(force=True)
    send(store, "g", ["in the wal"], key="old-wal")
    crash(store)
    with duckdb.connect(str(tmp_path / CATALOG_FILE)) as db:
        db.execute("DROP TABLE idempotency_keys")
        db.execute(
            "CREATE TABLE idempotency_keys (key VARCHAR PRIMARY KEY, response VARCHAR NOT NULL,"
            " seen_ms BIGINT NOT NULL)"
        )
        db.execute("INSERT INTO idempotency_keys VALUES ('old-flushed', '{\"n\":1}', ?)", [1 << 50])
    (wal,) = [p for p in (tmp_path / WAL_DIR).glob("*.wal") if p.stat().st_size]
    records, _ = read_records(wal)
    pieces = []
    for record in records:
        header = record.header
        if header.get("idempotency"):
            header = {**header, "idempotency": [header["idempotency"]["key"], '{"n":1}']}
        pieces += encode_record(header, record.payload)
    wal.write_bytes(b"".join(bytes(p) for p in pieces))

    again = open_store(tmp_path)
    assert messages(again, "g") == ["flushed", "in the wal"]
    # Neither old key was scoped, so neither stands for a request of any caller now.
    assert send(again, "g", ["new"], key="old-flushed") == {"accepted": 1}
    assert send(again, "g", ["newer"], key="old-wal") == {"accepted": 1}
    again.flush(force=True)  # the replayed legacy key is saved too
    crash(again)
    with duckdb.connect(str(tmp_path / CATALOG_FILE)) as db:
        saved = db.execute(
            "SELECT principal, log_group, key, body_sha256 IS NULL FROM idempotency_keys "
            "ORDER BY key, principal"
        ).fetchall()
    assert saved == [
        ("", "", "old-flushed", True),
        (ALICE, "g", "old-flushed", False),
        ("", "", "old-wal", True),
        (ALICE, "g", "old-wal", False),
    ]
    third = open_store(tmp_path)
    assert messages(third, "g") == ["flushed", "in the wal", "new", "newer"]
    third.close()
