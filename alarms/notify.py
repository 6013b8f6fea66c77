"""The webhook worker: attempts what the outbox says is due and records each result.

One daemon thread plans; a small thread pool sends, so a slow receiver holds up only its own
(target, alarm) pair, never another. A pair is never in flight twice, which with ``Outbox.due``
keeps each pair's deliveries in transition order. Everything the worker knows between attempts
is in the outbox row, so a restart continues a retry schedule with the same delivery id and the
next attempt number. Rules (``webhook``) decide; this module only sends, waits and records.
"""

from __future__ import annotations

import logging
import math
import random
import threading
import time
from collections.abc import Callable, Mapping
from concurrent.futures import Future, ThreadPoolExecutor, wait
from dataclasses import dataclass

import httpx

from alarms.outbox import Delivery, Outbox
from alarms.rules import ScalingTarget, WebhookTarget
from alarms.webhook import (
    SecretUnavailable,
    headers,
    is_retryable,
    resolve_secrets,
    retry_after_s,
    retry_wait_s,
    sign,
)

__all__ = ["Notifier", "Outcome"]

log = logging.getLogger(__name__)

AnyTarget = WebhookTarget | ScalingTarget
_Pair = tuple[str, str]
_MAX_SLEEP_S = 1.0


@dataclass(frozen=True, slots=True)
class Outcome:
    """The final result of a delivery: delivered, or dead with the reason in ``error``."""

    delivery: Delivery
    ok: bool
    status_code: int | None
    error: str | None
    attempts: int
    finished_ms: int


@dataclass(frozen=True, slots=True)
class _Response:
    status_code: int | None
    retry_after: str | None
    error: str


class Notifier:
    """Delivers outbox rows to their targets, with retries, in order per (target, alarm).

    ``targets()`` is called at each attempt, so reloaded rules (a new URL, secret or retry
    policy) apply to pending deliveries. ``on_outcome`` is called once per delivery when it is
    delivered or dead, from a worker thread; it should be quick (write history, bump a counter).
    """

    def __init__(
        self,
        outbox: Outbox,
        targets: Callable[[], Mapping[str, AnyTarget]],
        on_outcome: Callable[[Outcome], None],
        *,
        clock: Callable[[], float] = time.time,
        rng: Callable[[], float] = random.random,
        transport: httpx.BaseTransport | None = None,
        max_workers: int = 8,
        batch_size: int = 100,
    ) -> None:
        self._outbox = outbox
        self._targets = targets
        self._on_outcome = on_outcome
        self._clock = clock
        self._rng = rng
        self._batch_size = batch_size
        self._client = httpx.Client(transport=transport, follow_redirects=False)
        self._pool = ThreadPoolExecutor(max_workers=max_workers, thread_name_prefix="wk-webhook")
        self._lock = threading.Lock()
        self._in_flight: dict[_Pair, Future[None]] = {}
        self._wake = threading.Event()
        self._stopping = threading.Event()
        self._abandoned = threading.Event()
        self._thread: threading.Thread | None = None

    # ---- lifecycle

    def start(self) -> None:
        """Run the delivery loop in a daemon thread."""
        if self._thread is not None:
            raise RuntimeError("the notifier is already started")
        self._thread = threading.Thread(target=self._run, name="wk-notifier", daemon=True)
        self._thread.start()

    def wake(self) -> None:
        """Look at the outbox now; call right after ``Outbox.enqueue``."""
        self._wake.set()

    def stop(self, timeout: float = 5.0) -> None:
        """Stop the loop and wait up to ``timeout`` seconds for attempts in flight.

        An attempt still running after that is abandoned without being recorded: its row stays
        pending with its attempt counter, so the next start repeats it (at least once).
        """
        deadline = time.monotonic() + timeout
        self._stopping.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(max(0.0, deadline - time.monotonic()))
        with self._lock:
            running = list(self._in_flight.values())
        wait(running, timeout=max(0.0, deadline - time.monotonic()))
        self._abandoned.set()
        self._pool.shutdown(wait=False, cancel_futures=True)
        self._client.close()

    # ---- one pass

    def deliver_due(self, now_ms: int | None = None) -> int:
        """Attempt every due head of a pair not already in flight; wait for them; return count."""
        futures = self._dispatch(self._now_ms() if now_ms is None else now_ms)
        wait(futures)
        return len(futures)

    def _dispatch(self, now_ms: int) -> list[Future[None]]:
        futures: list[Future[None]] = []
        for head in self._outbox.due(now_ms, self._batch_size):
            pair = (head.target, head.alarm)
            with self._lock:
                if pair in self._in_flight or self._stopping.is_set():
                    continue
                future = self._pool.submit(self._attempt, head)
                self._in_flight[pair] = future
            futures.append(future)
        return futures

    def _run(self) -> None:
        while not self._stopping.is_set():
            self._wake.clear()
            sleep_s = _MAX_SLEEP_S
            try:
                now_ms = self._now_ms()
                self._dispatch(now_ms)
                next_ms = self._outbox.next_attempt_ms()
                # A head already due is in flight (its completion wakes us) or beyond the batch.
                if next_ms is not None and next_ms > now_ms:
                    sleep_s = min(_MAX_SLEEP_S, (next_ms - now_ms) / 1000)
            except Exception:
                log.exception("webhook delivery pass failed")
            self._wake.wait(sleep_s)

    # ---- one attempt

    def _attempt(self, head: Delivery) -> None:
        try:
            self._attempt_unguarded(head)
        except Exception as exc:
            if self._abandoned.is_set():
                return  # stopped under us (closed client or database): stays pending
            log.exception("webhook delivery %s failed unexpectedly", head.delivery_id)
            # Left pending, the same error would recur at once on every pass; dead, it waits
            # for an operator's replay.
            self._give_up(head, f"internal error: {type(exc).__name__}: {exc}")
        finally:
            # Released here, not in a done-callback, so that whoever waits on this future sees
            # the pair free again; the wake lets the pair's next delivery go out at once.
            with self._lock:
                self._in_flight.pop((head.target, head.alarm), None)
            self._wake.set()

    def _give_up(self, head: Delivery, error: str) -> None:
        try:
            self._dead(head, head.attempts, None, error)
        except Exception:
            log.exception("could not mark webhook delivery %s dead", head.delivery_id)

    def _attempt_unguarded(self, head: Delivery) -> None:
        now_ms = self._now_ms()
        # ``head`` was read before its pair was claimed: an attempt that finished in between
        # has already moved the row on. Only the row as it is now may be sent.
        current = self._outbox.get(head.delivery_id)
        if current.status != "pending" or current.attempts != head.attempts:
            return
        head = current
        target = self._targets().get(head.target)
        if target is None:
            self._dead(head, head.attempts, None, f"target {head.target} no longer exists")
            return
        deadline_ms = head.created_ms + target.retry.deadline * 1000
        if now_ms > deadline_ms:
            self._dead(head, head.attempts, head.last_status_code, _deadline_error(head, target))
            return
        try:
            secrets = resolve_secrets(target.secret)
        except SecretUnavailable as exc:
            self._dead(head, head.attempts, None, exc.message)
            return
        attempt = head.attempts + 1
        timestamp = int(self._clock())
        body = head.body_bytes
        request_headers = headers(
            head.event,
            head.delivery_id,
            attempt,
            timestamp,
            sign(secrets, timestamp, body),
            target.headers,
        )
        response = self._post(target, body, request_headers)
        if self._abandoned.is_set():
            return
        self._record(head, target, attempt, response)

    def _post(self, target: AnyTarget, body: bytes, request_headers: dict[str, str]) -> _Response:
        try:
            # Streamed and never read: the receiver's answer body does not matter, and a huge
            # one must not be buffered.
            with self._client.stream(
                "POST", target.url, content=body, headers=request_headers, timeout=target.timeout
            ) as response:
                code = response.status_code
                return _Response(code, response.headers.get("retry-after"), f"HTTP {code}")
        except httpx.TransportError as exc:
            return _Response(None, None, _transport_error(exc, target.timeout))

    def _record(self, head: Delivery, target: AnyTarget, attempt: int, response: _Response) -> None:
        status = response.status_code
        finished_ms = self._now_ms()
        if status is not None and 200 <= status <= 299:
            done = self._outbox.mark_delivered(
                head.delivery_id, attempts=attempt, status_code=status, now_ms=finished_ms
            )
            self._report(done, ok=True, status_code=status, error=None, finished_ms=finished_ms)
            return
        if not is_retryable(status):
            self._dead(head, attempt, status, f"{response.error} (not retried)")
            return
        retry = target.retry
        if attempt >= retry.max_attempts:
            self._dead(head, attempt, status, f"{response.error} after {attempt} attempts")
            return
        wait_s = retry_wait_s(
            retry, attempt, self._rng, retry_after_s(response.retry_after, finished_ms / 1000)
        )
        next_ms = finished_ms + math.ceil(wait_s * 1000)
        if next_ms > head.created_ms + retry.deadline * 1000:
            self._dead(
                head,
                attempt,
                status,
                f"{response.error} after {attempt} attempts (deadline of {retry.deadline}s "
                "reached)",
            )
            return
        self._outbox.record_failure(
            head.delivery_id,
            attempts=attempt,
            next_attempt_ms=next_ms,
            status_code=status,
            error=response.error,
            now_ms=finished_ms,
        )

    def _dead(self, head: Delivery, attempts: int, status: int | None, error: str) -> None:
        finished_ms = self._now_ms()
        dead = self._outbox.mark_dead(
            head.delivery_id, attempts=attempts, status_code=status, error=error, now_ms=finished_ms
        )
        self._report(dead, ok=False, status_code=status, error=error, finished_ms=finished_ms)

    def _report(
        self,
        delivery: Delivery | None,
        *,
        ok: bool,
        status_code: int | None,
        error: str | None,
        finished_ms: int,
    ) -> None:
        if delivery is None:
            return  # cancelled while in flight: no outcome to report
        outcome = Outcome(delivery, ok, status_code, error, delivery.attempts, finished_ms)
        try:
            self._on_outcome(outcome)
        except Exception:
            log.exception("on_outcome failed for delivery %s", delivery.delivery_id)

    def _now_ms(self) -> int:
        return int(self._clock() * 1000)


def _deadline_error(head: Delivery, target: AnyTarget) -> str:
    last = f"{head.last_error} after " if head.last_error else ""
    return (
        f"{last}{head.attempts} attempts (deadline of {target.retry.deadline}s reached)"
        if head.attempts
        else f"deadline of {target.retry.deadline}s passed before the first attempt"
    )


def _transport_error(exc: httpx.TransportError, timeout_s: float) -> str:
    if isinstance(exc, httpx.TimeoutException):
        return f"timed out after {timeout_s}s"
    if isinstance(exc, httpx.ConnectError):
        text = str(exc)
        return "connection refused" if "refused" in text.lower() else f"connection failed: {text}"
    if isinstance(exc, httpx.RemoteProtocolError):
        return "connection closed without a response"
    return f"{type(exc).__name__}: {exc}"
