"""The persistent outbox on a real DuckDB database: order per pair, durability, replay, purge."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path

import duckdb
import orjson
import pytest

from alarms.outbox import Delivery, DeliveryStateConflict, Outbox
from core.errors import Conflict, NotFound

T0 = 1_767_261_900_000


@pytest.fixture
def conn() -> Iterator[duckdb.DuckDBPyConnection]:
    connection = duckdb.connect()
    yield connection
    connection.close()


@pytest.fixture
def outbox(conn: duckdb.DuckDBPyConnection) -> Outbox:
    box = Outbox(conn.cursor)
    box.ensure_schema()
    return box


def put(
    outbox: Outbox, alarm: str = "web-high-cpu", target: str = "oncall", **kw: object
) -> Delivery:
    body = {"alarm": {"name": alarm}, "state": {"value": "ALARM"}, **kw}
    return outbox.enqueue(target, alarm, "alarm.state_change", body, T0)


def test_enqueue_stores_a_pending_delivery_with_its_id_in_the_body(outbox: Outbox) -> None:
    delivery = outbox.enqueue(
        "oncall", "web-high-cpu", "alarm.state_change", {"alarm": {"name": "web-high-cpu"}}, T0
    )
    assert delivery.status == "pending"
    assert (delivery.attempts, delivery.created_ms, delivery.next_attempt_ms) == (0, T0, T0)
    assert list(orjson.loads(delivery.body)) == ["version", "delivery_id", "event", "alarm"]
    assert orjson.loads(delivery.body) == {
        "version": "1",
        "delivery_id": delivery.delivery_id,
        "event": "alarm.state_change",
        "alarm": {"name": "web-high-cpu"},
    }
    assert outbox.get(delivery.delivery_id) == delivery


def test_enqueue_refuses_an_unknown_event(outbox: Outbox) -> None:
    with pytest.raises(ValueError, match="unknown webhook event 'alarm.bogus'"):
        outbox.enqueue("oncall", "a", "alarm.bogus", {}, T0)


def test_enqueue_is_durable_when_it_returns(tmp_path: Path) -> None:
    path = tmp_path / "catalog.duckdb"
    first = duckdb.connect(str(path))
    box = Outbox(first.cursor)
    box.ensure_schema()
    delivery = put(box)
    first.close()

    second = duckdb.connect(str(path))
    try:
        reopened = Outbox(second.cursor)
        reopened.ensure_schema()
        assert reopened.get(delivery.delivery_id) == delivery
        assert put(reopened).seq > delivery.seq
    finally:
        second.close()


def test_due_gives_only_the_oldest_pending_delivery_of_each_pair(outbox: Outbox) -> None:
    a1, a2 = put(outbox, "a"), put(outbox, "a")
    b1 = put(outbox, "b")
    other_target = put(outbox, "a", target="pager")
    assert a1.seq < a2.seq < b1.seq < other_target.seq
    assert [d.delivery_id for d in outbox.due(T0)] == [
        a1.delivery_id,
        b1.delivery_id,
        other_target.delivery_id,
    ]


@pytest.mark.parametrize("finish", ["delivered", "dead", "cancelled"])
def test_the_next_delivery_of_a_pair_waits_until_the_head_is_finished(
    outbox: Outbox, finish: str
) -> None:
    a1, a2 = put(outbox, "a"), put(outbox, "a")
    outbox.record_failure(
        a1.delivery_id,
        attempts=1,
        next_attempt_ms=T0 + 5_000,
        status_code=503,
        error="HTTP 503",
        now_ms=T0,
    )
    assert outbox.due(T0 + 4_999) == []
    assert outbox.next_attempt_ms() == T0 + 5_000
    if finish == "delivered":
        outbox.mark_delivered(a1.delivery_id, attempts=2, status_code=200, now_ms=T0 + 1)
    elif finish == "dead":
        outbox.mark_dead(a1.delivery_id, attempts=1, status_code=404, error="x", now_ms=T0 + 1)
    else:
        outbox.cancel(a1.delivery_id, T0 + 1)
    assert [d.delivery_id for d in outbox.due(T0 + 1)] == [a2.delivery_id]


def test_due_orders_by_time_and_respects_the_limit(outbox: Outbox) -> None:
    a, b, c = put(outbox, "a"), put(outbox, "b"), put(outbox, "c")
    outbox.record_failure(
        a.delivery_id, attempts=1, next_attempt_ms=T0 + 10, status_code=None, error="e", now_ms=T0
    )
    assert [d.alarm for d in outbox.due(T0 + 10)] == ["b", "c", "a"]
    assert [d.alarm for d in outbox.due(T0 + 10, limit=2)] == ["b", "c"]
    assert outbox.next_attempt_ms() == T0
    for d in (a, b, c):
        outbox.mark_delivered(d.delivery_id, attempts=1, status_code=204, now_ms=T0)
    assert outbox.next_attempt_ms() is None


def test_record_failure_keeps_the_row_pending_with_the_result(outbox: Outbox) -> None:
    delivery = put(outbox)
    updated = outbox.record_failure(
        delivery.delivery_id,
        attempts=1,
        next_attempt_ms=T0 + 700,
        status_code=503,
        error="HTTP 503",
        now_ms=T0 + 20,
    )
    assert updated is not None
    assert (updated.status, updated.attempts, updated.next_attempt_ms) == ("pending", 1, T0 + 700)
    assert (updated.last_status_code, updated.last_error, updated.updated_ms) == (
        503,
        "HTTP 503",
        T0 + 20,
    )
    assert updated.body == delivery.body


def test_finished_rows_are_not_changed_again(outbox: Outbox) -> None:
    delivery = put(outbox)
    assert outbox.mark_delivered(delivery.delivery_id, attempts=1, status_code=200, now_ms=T0)
    assert (
        outbox.mark_dead(delivery.delivery_id, attempts=1, status_code=None, error="x", now_ms=T0)
        is None
    )
    assert (
        outbox.record_failure(
            delivery.delivery_id,
            attempts=2,
            next_attempt_ms=T0,
            status_code=None,
            error="x",
            now_ms=T0,
        )
        is None
    )
    assert outbox.get(delivery.delivery_id).status == "delivered"
    with pytest.raises(DeliveryStateConflict, match="is delivered; only a pending delivery"):
        outbox.cancel(delivery.delivery_id, T0)


def test_list_filters_newest_first(outbox: Outbox) -> None:
    a1, a2, b1 = put(outbox, "a"), put(outbox, "a"), put(outbox, "b", target="pager")
    outbox.mark_dead(
        a1.delivery_id, attempts=8, status_code=503, error="HTTP 503 after 8 attempts", now_ms=T0
    )

    def ids(rows: list[Delivery]) -> list[str]:
        return [d.delivery_id for d in rows]

    assert ids(outbox.list()) == [b1.delivery_id, a2.delivery_id, a1.delivery_id]
    assert ids(outbox.list(status="dead")) == [a1.delivery_id]
    assert ids(outbox.list(target="pager")) == [b1.delivery_id]
    assert ids(outbox.list(alarm="a", status="pending")) == [a2.delivery_id]
    assert ids(outbox.list(limit=1)) == [b1.delivery_id]
    with pytest.raises(ValueError, match="unknown delivery status"):
        outbox.list(status="lost")  # type: ignore[arg-type]


def test_replay_revives_a_dead_delivery_behind_pending_ones(outbox: Outbox) -> None:
    a1, a2 = put(outbox, "a"), put(outbox, "a")
    outbox.mark_dead(
        a1.delivery_id,
        attempts=8,
        status_code=503,
        error="HTTP 503 after 8 attempts",
        now_ms=T0 + 5,
    )
    replayed = outbox.replay(a1.delivery_id, T0 + 60_000)
    assert replayed.delivery_id == a1.delivery_id
    assert replayed.body == a1.body
    assert (replayed.status, replayed.attempts) == ("pending", 0)
    assert (replayed.created_ms, replayed.next_attempt_ms) == (T0 + 60_000, T0 + 60_000)
    assert (replayed.last_status_code, replayed.last_error) == (None, None)
    assert replayed.seq > a2.seq
    assert [d.delivery_id for d in outbox.due(T0 + 60_000)] == [a2.delivery_id]


def test_replay_errors(outbox: Outbox) -> None:
    pending = put(outbox)
    with pytest.raises(NotFound, match="no webhook delivery with id 'nope'") as missing:
        outbox.replay("nope", T0)
    assert missing.value.status == 404
    with pytest.raises(Conflict, match="is pending; only a dead delivery can be replayed") as info:
        outbox.replay(pending.delivery_id, T0)
    assert info.value.status == 409
    assert info.value.details == {"delivery_id": pending.delivery_id, "status": "pending"}


def test_purge_deletes_old_finished_rows_only(outbox: Outbox) -> None:
    old, new, dead, pending = put(outbox, "a"), put(outbox, "b"), put(outbox, "c"), put(outbox, "d")
    outbox.mark_delivered(old.delivery_id, attempts=1, status_code=200, now_ms=T0)
    outbox.mark_delivered(new.delivery_id, attempts=1, status_code=200, now_ms=T0 + 10)
    outbox.mark_dead(dead.delivery_id, attempts=1, status_code=404, error="x", now_ms=T0)
    assert outbox.purge(T0 + 5) == 1
    assert {d.delivery_id for d in outbox.list()} == {
        new.delivery_id,
        dead.delivery_id,
        pending.delivery_id,
    }
    assert outbox.purge(T0 + 5, dead_older_than_ms=T0 + 5) == 1, "dead rows go when asked"
    assert {d.delivery_id for d in outbox.list()} == {new.delivery_id, pending.delivery_id}


def test_to_json_shows_the_row_and_the_body_as_an_object(outbox: Outbox) -> None:
    delivery = put(outbox)
    view = delivery.to_json()
    assert view["body"]["delivery_id"] == delivery.delivery_id
    assert view["next_attempt_ms"] == T0
    assert set(view) == {
        "delivery_id", "seq", "target", "alarm", "event", "status", "attempts", "created_ms",
        "next_attempt_ms", "last_status_code", "last_error", "updated_ms", "body",
    }  # fmt: skip
    outbox.mark_delivered(delivery.delivery_id, attempts=1, status_code=200, now_ms=T0)
    assert outbox.get(delivery.delivery_id).to_json()["next_attempt_ms"] is None


def test_concurrent_enqueues_get_distinct_increasing_seqs(outbox: Outbox) -> None:
    seqs: list[int] = []
    lock = threading.Lock()

    def work(n: int) -> None:
        for _ in range(20):
            seq = put(outbox, f"alarm-{n}").seq
            with lock:
                seqs.append(seq)

    threads = [threading.Thread(target=work, args=(n,)) for n in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(set(seqs)) == 120
    assert len(outbox.list(limit=1000)) == 120
