"""The webhook worker against a real HTTP receiver that checks every signature (spec §6.4).

Waits between retries are skipped with a fake clock: each pass is ``deliver_due()`` after moving
the clock, so no test sleeps through a backoff. The few tests of the background loop use the real
clock with ``initial_backoff: 0``.
"""

from __future__ import annotations

import socket
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from email.utils import format_datetime
from pathlib import Path
from typing import Any

import duckdb
import pytest

from alarms.notify import Notifier, Outcome
from alarms.outbox import Delivery, Outbox
from alarms.rules import ScalingTarget, WebhookTarget
from alarms.webhook import verify_signature
from tests.alarms.receiver import CLOSE, SECRET, Receiver, Reply

T0 = 1_767_261_900.0
OLD_SECRET = "whsec_previous"


class Clock:
    """A clock the test moves by hand."""

    def __init__(self, now: float = T0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


class Harness:
    """An outbox, a notifier, its targets and every outcome it reported."""

    def __init__(
        self,
        conn: duckdb.DuckDBPyConnection,
        targets: dict[str, WebhookTarget | ScalingTarget],
        clock: Callable[[], float],
        rng: Callable[[], float] = lambda: 0.5,
    ) -> None:
        self.conn = conn
        self.targets = targets
        self.outcomes: list[Outcome] = []
        self.outbox = Outbox(conn.cursor)
        self.outbox.ensure_schema()
        self.notifier = Notifier(
            self.outbox, lambda: self.targets, self.outcomes.append, clock=clock, rng=rng
        )
        self.clock = clock

    def renew_notifier(self, **options: Any) -> Notifier:
        """Replace the notifier (after stopping it) with one built with other options."""
        self.notifier.stop(timeout=2)
        options = {"on_outcome": self.outcomes.append, "clock": self.clock, **options}
        on_outcome = options.pop("on_outcome")
        self.notifier = Notifier(self.outbox, lambda: self.targets, on_outcome, **options)
        return self.notifier

    def enqueue(self, alarm: str = "web-high-cpu", target: str = "oncall", **body: Any) -> Delivery:
        payload = {"alarm": {"name": alarm, "kind": "metric"}, "state": {"value": "ALARM"}, **body}
        event = (
            "alarm.scaling"
            if isinstance(self.targets.get(target), ScalingTarget)
            else "alarm.state_change"
        )
        return self.outbox.enqueue(target, alarm, event, payload, int(self.clock() * 1000))

    def get(self, delivery: Delivery) -> Delivery:
        return self.outbox.get(delivery.delivery_id)


def webhook(url: str, **overrides: Any) -> WebhookTarget:
    spec: dict[str, Any] = {
        "type": "webhook",
        "url": url,
        "secret": {"env": "WK_TEST_SECRET"},
        "headers": {"X-Team": "web"},
        "timeout": 2,
        "retry": {
            "max_attempts": 8,
            "initial_backoff": 1,
            "multiplier": 2,
            "max_backoff": 8,
            "deadline": 3600,
        },
    }
    retry = overrides.pop("retry", {})
    spec.update(overrides)
    spec["retry"] = {**spec["retry"], **retry}
    return WebhookTarget.model_validate(spec)


@pytest.fixture(autouse=True)
def secret_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("WK_TEST_SECRET", SECRET)


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def receiver(clock: Clock) -> Iterator[Receiver]:
    with Receiver(clock) as running:
        yield running


@pytest.fixture
def harness(receiver: Receiver, clock: Clock) -> Iterator[Harness]:
    conn = duckdb.connect()
    built = Harness(conn, {"oncall": webhook(receiver.url)}, clock)
    yield built
    built.notifier.stop(timeout=2)
    conn.close()


def wait_for(condition: Callable[[], bool], timeout_s: float = 5.0) -> None:
    deadline = time.monotonic() + timeout_s
    while not condition():
        assert time.monotonic() < deadline, "timed out waiting"
        time.sleep(0.005)


# ---- one attempt


def test_a_delivery_is_posted_signed_with_the_protocol_headers(
    harness: Harness, receiver: Receiver
) -> None:
    delivery = harness.enqueue()
    assert harness.notifier.deliver_due() == 1
    [request] = receiver.requests
    assert request.verified
    assert request.body == delivery.body_bytes
    assert request.json["delivery_id"] == delivery.delivery_id
    assert request.headers["watchkeep-event"] == "alarm.state_change"
    assert request.headers["watchkeep-attempt"] == "1"
    assert request.headers["watchkeep-timestamp"] == str(int(T0))
    assert request.headers["x-team"] == "web"
    [outcome] = harness.outcomes
    assert (outcome.ok, outcome.status_code, outcome.error, outcome.attempts) == (
        True,
        200,
        None,
        1,
    )
    assert outcome.delivery.status == "delivered"
    assert harness.get(delivery).status == "delivered"
    assert harness.notifier.deliver_due() == 0


def test_during_rotation_receivers_with_either_secret_accept(
    harness: Harness, receiver: Receiver, tmp_path: Path
) -> None:
    old = tmp_path / "old-secret"
    old.write_text(OLD_SECRET + "\n")
    harness.targets["oncall"] = webhook(
        receiver.url, secret=[{"file": str(old)}, {"env": "WK_TEST_SECRET"}]
    )
    harness.enqueue()
    harness.notifier.deliver_due()
    [request] = receiver.requests
    assert request.verified
    signature = request.headers["watchkeep-signature"]
    assert signature.count("v1=") == 2
    timestamp = int(request.headers["watchkeep-timestamp"])
    for secret in (OLD_SECRET, SECRET):
        assert verify_signature(signature, [secret.encode()], timestamp, request.body, now=T0)
    assert not verify_signature(signature, [b"stranger"], timestamp, request.body, now=T0)


def test_scaling_hooks_are_delivered_with_their_event(harness: Harness, receiver: Receiver) -> None:
    harness.targets["web-scale-out"] = ScalingTarget.model_validate(
        {
            "type": "scaling",
            "url": receiver.url,
            "secret": {"env": "WK_TEST_SECRET"},
            "group": "web",
            "adjustment": {"type": "change_in_capacity", "value": 2},
        }
    )
    harness.enqueue(target="web-scale-out", group="web", repeat=0)
    harness.notifier.deliver_due()
    [request] = receiver.requests
    assert request.headers["watchkeep-event"] == "alarm.scaling"
    assert request.json["group"] == "web"
    assert harness.outcomes[0].ok


# ---- retries


def test_retries_resend_the_same_id_and_bytes_signed_afresh(
    harness: Harness, receiver: Receiver, clock: Clock
) -> None:
    receiver.plan(Reply(503), Reply(500), CLOSE, Reply(408))
    delivery = harness.enqueue()
    waits_ms = []
    for attempt in range(1, 5):
        harness.notifier.deliver_due()
        row = harness.get(delivery)
        assert (row.status, row.attempts) == ("pending", attempt)
        waits_ms.append(row.next_attempt_ms - int(clock() * 1000))
        assert harness.notifier.deliver_due() == 0, "nothing is sent before the wait is over"
        # One second more than the wait, so that every attempt is signed in a new second.
        clock.advance(row.next_attempt_ms / 1000 - clock() + 1)
    harness.notifier.deliver_due()

    assert waits_ms == [500, 1_000, 2_000, 4_000]  # rng 0.5 x min(8 s, 1 s x 2^(k-1))
    assert [r.attempt for r in receiver.requests] == [1, 2, 3, 4, 5]
    assert all(r.verified for r in receiver.requests)
    assert {r.delivery_id for r in receiver.requests} == {delivery.delivery_id}
    assert {r.body for r in receiver.requests} == {delivery.body_bytes}
    timestamps = [int(r.headers["watchkeep-timestamp"]) for r in receiver.requests]
    assert timestamps == sorted(set(timestamps))
    assert len({r.headers["watchkeep-signature"] for r in receiver.requests}) == 5
    [outcome] = harness.outcomes
    assert (outcome.ok, outcome.attempts, outcome.delivery.status) == (True, 5, "delivered")


def test_a_failed_attempt_records_its_status_and_error(
    harness: Harness, receiver: Receiver
) -> None:
    receiver.plan(CLOSE, Reply(503))
    delivery = harness.enqueue()
    harness.notifier.deliver_due()
    row = harness.get(delivery)
    assert (row.last_status_code, row.last_error) == (None, "connection closed without a response")
    harness.notifier.deliver_due(row.next_attempt_ms)
    row = harness.get(delivery)
    assert (row.last_status_code, row.last_error) == (503, "HTTP 503")


def http_date(offset_s: float) -> str:
    return format_datetime(datetime.fromtimestamp(T0 + offset_s, UTC), usegmt=True)


@pytest.mark.parametrize(
    ("retry_after", "wait_ms"),
    [("3", 3_000), ("100", 8_000), (http_date(7), 7_000), (http_date(-60), 500), ("later", 500)],
    ids=["seconds", "seconds-capped", "http-date", "date-in-past", "unparseable"],
)
def test_retry_after_replaces_a_shorter_backoff_capped_at_max_backoff(
    harness: Harness, receiver: Receiver, retry_after: str, wait_ms: int
) -> None:
    receiver.plan(Reply(429, {"Retry-After": retry_after}))
    delivery = harness.enqueue()
    harness.notifier.deliver_due()
    row = harness.get(delivery)
    assert (row.attempts, row.last_status_code) == (1, 429)
    assert row.next_attempt_ms - int(T0 * 1000) == wait_ms


@pytest.mark.parametrize("status", [404, 400, 302], ids=lambda s: str(s))
def test_other_statuses_are_permanent(harness: Harness, receiver: Receiver, status: int) -> None:
    receiver.plan(Reply(status, {"Location": "http://127.0.0.1:9/elsewhere"}))
    delivery = harness.enqueue()
    harness.notifier.deliver_due()
    assert len(receiver.requests) == 1
    [outcome] = harness.outcomes
    assert (outcome.ok, outcome.status_code, outcome.attempts) == (False, status, 1)
    assert outcome.error == f"HTTP {status} (not retried)"
    row = harness.get(delivery)
    assert (row.status, row.last_error) == ("dead", f"HTTP {status} (not retried)")


def test_exhausted_after_max_attempts_reports_once(
    harness: Harness, receiver: Receiver, clock: Clock
) -> None:
    harness.targets["oncall"] = webhook(receiver.url, retry={"max_attempts": 3})
    receiver.plan(*[Reply(503)] * 10)
    delivery = harness.enqueue()
    for _ in range(6):
        harness.notifier.deliver_due()
        clock.advance(10)
    assert len(receiver.requests) == 3
    [outcome] = harness.outcomes
    assert (outcome.ok, outcome.status_code, outcome.attempts) == (False, 503, 3)
    assert outcome.error == "HTTP 503 after 3 attempts"
    assert outcome.finished_ms >= int(T0 * 1000) + 20_000
    assert harness.get(delivery).status == "dead"
    assert harness.outbox.list(status="dead") == [outcome.delivery]


def test_connection_refused_is_retried_then_dead(harness: Harness, clock: Clock) -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    harness.targets["oncall"] = webhook(f"http://127.0.0.1:{port}/", retry={"max_attempts": 2})
    harness.enqueue()
    harness.notifier.deliver_due()
    clock.advance(10)
    harness.notifier.deliver_due()
    [outcome] = harness.outcomes
    assert (outcome.status_code, outcome.error) == (None, "connection refused after 2 attempts")


def test_the_deadline_stops_retries(harness: Harness, receiver: Receiver, clock: Clock) -> None:
    harness.targets["oncall"] = webhook(
        receiver.url, retry={"initial_backoff": 4, "max_backoff": 8, "deadline": 5}
    )
    harness.renew_notifier(rng=lambda: 0.99)
    receiver.plan(*[Reply(503)] * 5)
    delivery = harness.enqueue()
    harness.notifier.deliver_due()
    row = harness.get(delivery)
    assert row.next_attempt_ms == int(T0 * 1000) + 3_960
    clock.advance(3.96)
    harness.notifier.deliver_due()
    assert len(receiver.requests) == 2
    [outcome] = harness.outcomes
    assert outcome.error == "HTTP 503 after 2 attempts (deadline of 5s reached)"


def test_a_delivery_past_its_deadline_is_not_attempted(
    harness: Harness, receiver: Receiver, clock: Clock
) -> None:
    harness.targets["oncall"] = webhook(receiver.url, retry={"deadline": 60})
    harness.enqueue()
    clock.advance(61)
    harness.notifier.deliver_due()
    assert receiver.requests == []
    assert harness.outcomes[0].error == "deadline of 60s passed before the first attempt"


@pytest.mark.parametrize(
    ("change", "error"),
    [
        ("remove", "target oncall no longer exists"),
        ("unset-secret", "secret environment variable WK_GONE is not set"),
    ],
)
def test_unusable_targets_are_dead_without_an_attempt(
    harness: Harness, receiver: Receiver, change: str, error: str
) -> None:
    delivery = harness.enqueue()
    if change == "remove":
        del harness.targets["oncall"]
    else:
        harness.targets["oncall"] = webhook(receiver.url, secret={"env": "WK_GONE"})
    harness.notifier.deliver_due()
    assert receiver.requests == []
    [outcome] = harness.outcomes
    assert (outcome.ok, outcome.error, outcome.attempts) == (False, error, 0)
    assert harness.get(delivery).last_error == error


def test_an_on_outcome_failure_is_logged_not_raised(
    harness: Harness, caplog: pytest.LogCaptureFixture
) -> None:
    def explode(outcome: Outcome) -> None:
        raise RuntimeError("history is down")

    harness.renew_notifier(on_outcome=explode)
    delivery = harness.enqueue()
    assert harness.notifier.deliver_due() == 1
    assert harness.get(delivery).status == "delivered"
    assert "on_outcome failed" in caplog.text


# ---- order and concurrency


def test_one_alarm_is_delivered_in_order_without_blocking_another(
    harness: Harness, receiver: Receiver, clock: Clock
) -> None:
    receiver.plan(Reply(503), Reply(503), alarm="a")
    a1, a2 = harness.enqueue("a", seq_label="a1"), harness.enqueue("a", seq_label="a2")
    b1 = harness.enqueue("b")

    assert harness.notifier.deliver_due() == 2
    assert harness.get(b1).status == "delivered"
    assert harness.get(a2).status == "pending"
    for _ in range(4):
        clock.advance(10)
        harness.notifier.deliver_due()

    assert [r.delivery_id for r in receiver.for_alarm("a")] == [a1.delivery_id] * 3 + [
        a2.delivery_id
    ]
    assert [r.attempt for r in receiver.for_alarm("a")] == [1, 2, 3, 1]
    assert [(o.delivery.delivery_id, o.ok) for o in harness.outcomes] == [
        (b1.delivery_id, True),
        (a1.delivery_id, True),
        (a2.delivery_id, True),
    ]


def test_the_loop_sends_within_milliseconds_of_wake_and_retries_on_its_own(
    receiver: Receiver,
) -> None:
    receiver.clock = time.time
    conn = duckdb.connect()
    harness = Harness(
        conn, {"oncall": webhook(receiver.url, retry={"initial_backoff": 0})}, time.time
    )
    try:
        harness.notifier.start()
        receiver.plan(Reply(503), CLOSE)
        started = time.time()
        delivery = harness.enqueue()
        harness.notifier.wake()
        wait_for(lambda: bool(harness.outcomes))
        # The loop idles up to 1 s between looks; wake() must cut that short.
        assert receiver.requests[0].at - started < 0.5
        [outcome] = harness.outcomes
        assert (outcome.ok, outcome.attempts) == (True, 3)
        assert [r.attempt for r in receiver.requests] == [1, 2, 3]
        assert harness.get(delivery).status == "delivered"
    finally:
        harness.notifier.stop(timeout=2)
        conn.close()


def test_a_slow_receiver_does_not_hold_up_another_alarm(receiver: Receiver) -> None:
    receiver.clock = time.time
    conn = duckdb.connect()
    harness = Harness(conn, {"oncall": webhook(receiver.url)}, time.time)
    try:
        harness.notifier.start()
        receiver.plan(Reply(200, delay_s=0.8), alarm="slow")
        slow_1, slow_2 = harness.enqueue("slow"), harness.enqueue("slow")
        fast = harness.enqueue("fast")
        harness.notifier.wake()
        wait_for(lambda: len(harness.outcomes) == 3)
        first = harness.outcomes[0]
        assert first.delivery.delivery_id == fast.delivery_id
        assert [o.delivery.delivery_id for o in harness.outcomes[1:]] == [
            slow_1.delivery_id,
            slow_2.delivery_id,
        ]
        slow_requests = receiver.for_alarm("slow")
        assert first.finished_ms / 1000 < slow_requests[0].at + 0.8, "fast went out meanwhile"
        assert slow_requests[1].at >= slow_requests[0].at + 0.8, "never two of one pair at once"
    finally:
        harness.notifier.stop(timeout=2)
        conn.close()


# ---- replay and restart


def test_a_dead_delivery_can_be_replayed(
    harness: Harness, receiver: Receiver, clock: Clock
) -> None:
    receiver.plan(Reply(404))
    delivery = harness.enqueue()
    harness.notifier.deliver_due()
    assert harness.get(delivery).status == "dead"
    clock.advance(7_200)
    harness.outbox.replay(delivery.delivery_id, int(clock() * 1000))
    harness.notifier.deliver_due()
    assert [r.delivery_id for r in receiver.requests] == [delivery.delivery_id] * 2
    assert receiver.requests[1].attempt == 1
    assert receiver.requests[1].body == delivery.body_bytes
    assert [(o.ok, o.error) for o in harness.outcomes] == [
        (False, "HTTP 404 (not retried)"),
        (True, None),
    ]


def test_a_restart_continues_the_retry_schedule(
    receiver: Receiver, clock: Clock, tmp_path: Path
) -> None:
    path = str(tmp_path / "catalog.duckdb")
    targets: dict[str, WebhookTarget | ScalingTarget] = {"oncall": webhook(receiver.url)}
    receiver.plan(Reply(503), Reply(503))

    first_conn = duckdb.connect(path)
    first = Harness(first_conn, targets, clock)
    delivery = first.enqueue()
    first.notifier.deliver_due()
    clock.advance(10)
    first.notifier.deliver_due()
    first.notifier.stop(timeout=2)
    first_conn.close()
    assert [r.attempt for r in receiver.requests] == [1, 2]
    assert first.outcomes == []

    clock.advance(10)
    second_conn = duckdb.connect(path)
    try:
        second = Harness(second_conn, targets, clock)
        assert second.notifier.deliver_due() == 1
        second.notifier.stop(timeout=2)
        row = second.get(delivery)
    finally:
        second_conn.close()
    assert [r.attempt for r in receiver.requests] == [1, 2, 3]
    assert {r.delivery_id for r in receiver.requests} == {delivery.delivery_id}
    assert receiver.requests[2].body == delivery.body_bytes
    assert receiver.requests[2].verified
    assert (row.status, row.attempts) == ("delivered", 3)
    [outcome] = second.outcomes
    assert (outcome.ok, outcome.attempts) == (True, 3)


def test_an_unexpected_error_makes_the_delivery_dead_not_a_hot_loop(
    harness: Harness, receiver: Receiver, caplog: pytest.LogCaptureFixture
) -> None:
    harness.targets["oncall"] = webhook(receiver.url, headers={"X-Team": "wéb€"})
    delivery = harness.enqueue()
    harness.notifier.deliver_due()
    assert receiver.requests == []
    [outcome] = harness.outcomes
    assert outcome.error is not None
    assert outcome.error.startswith("internal error: UnicodeEncodeError")
    assert harness.get(delivery).status == "dead"
    assert "failed unexpectedly" in caplog.text
