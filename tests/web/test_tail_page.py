"""The live tail in a real browser against a real server: events ingested through the API while
the page tails a group (a month-old backfill among them) each appear exactly once, in the order
they arrived; the page keeps a bounded scrollback; a busy server and a lost connection are
waited out, and a pause resumed, without losing or repeating an event. Screenshots go to /tmp/watchkeep-screenshots/."""

from __future__ import annotations

import time
from collections import Counter
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest

from tests.web.test_console import pick_group, sign_in

pytestmark = pytest.mark.timeout(180)

DAY_MS = 86_400_000
MAX_LINES = 2000  # MAX_LINES in web/static/js/tail.js
POLL_S = 2.0  # POLL_MS in web/static/js/tail.js


def ingest(api: httpx.Client, group: str, events: list[dict[str, Any]], stream: str = "s") -> None:
    response = api.post(
        "/api/v1/logs/events", params={"group": group, "stream": stream}, json=events
    )
    assert response.status_code == 200, response.text
    assert response.json()["accepted"] == len(events), response.text


def now_ms() -> int:
    return int(time.time() * 1000)


def messages(page: Any) -> list[str]:
    texts: list[str] = page.eval_on_selector_all(
        ".tail-line .tail-message", "spans => spans.map(s => s.textContent)"
    )
    return texts


def wait_for_rows(page: Any, count: int) -> None:
    page.wait_for_function(
        "n => document.querySelectorAll('.tail-line').length >= n", arg=count, timeout=20_000
    )


def wait_live(page: Any) -> None:
    page.wait_for_selector(".tail-status:text-matches('^Live')")


def open_tail(page: Any, group: str) -> None:
    sign_in(page)
    page.goto("/#/tail")
    pick_group(page, group)


def test_live_tail_shows_each_event_once_in_arrival_order(
    page: Any, api: httpx.Client, shoot: Any
) -> None:
    group = "tail-follow"
    ingest(api, group, [{"timestamp": now_ms(), "message": "before the tail"}])
    # An event ingested while the first screen is read is both on it and after the cursor,
    # which was taken just before: the page must tell the two apart.
    raced: list[str] = []

    def ingest_during_first_screen(route: Any) -> None:
        if not raced:
            raced.append("ingested while the first screen was read")
            ingest(api, group, [{"timestamp": now_ms(), "message": raced[0]}])
        route.continue_()

    page.route(lambda url: "order=desc" in url, ingest_during_first_screen)
    open_tail(page, group)
    wait_live(page)
    page.unroute(lambda url: "order=desc" in url)
    assert raced

    sent: list[str] = []
    month_old_ms = now_ms() - 30 * DAY_MS
    for batch in range(12):
        events = [
            {"timestamp": now_ms(), "message": f"live {batch}.{i}", "i": i} for i in range(25)
        ]
        if batch == 5:
            # Backfilled: stamped a month ago, and after the first screen's hour anyway.
            events.insert(10, {"timestamp": month_old_ms, "message": "backfilled a month late"})
        ingest(api, group, events, stream=f"web-{batch % 3}")
        sent += [e["message"] for e in events]
        time.sleep(0.3)  # the batches spread over several polls

    expected = ["before the tail", raced[0], *sent]
    wait_for_rows(page, len(expected))
    time.sleep(POLL_S + 0.5)  # one more poll: nothing comes twice
    shown = messages(page)
    assert shown == expected  # each once, in the order ingested
    assert Counter(shown).most_common(1)[0][1] == 1

    row = page.locator(".tail-line", has_text="backfilled a month late")
    stamp = datetime.fromtimestamp(month_old_ms / 1000, UTC).strftime("%Y-%m-%d %H:%M:%S")
    assert (row.locator(".tail-time").text_content() or "").startswith(stamp)
    status = page.locator(".tail-status").text_content() or ""
    assert status.startswith(f"Live · {len(expected)} events"), status
    row.scroll_into_view_if_needed()
    row.hover()
    shoot(page, "tail-01-backfilled-once")


def test_live_tail_keeps_a_bounded_scrollback(page: Any, api: httpx.Client, shoot: Any) -> None:
    group = "tail-scrollback"
    ingest(api, group, [{"timestamp": now_ms(), "message": "first"}])
    open_tail(page, group)
    page.wait_for_selector(".tail-line:has-text('first')")
    wait_live(page)
    # More than the page keeps, and more than one page of the API (1000): the poll drains them.
    count = MAX_LINES + 100
    ingest(api, group, [{"timestamp": now_ms(), "message": f"bulk {i:04d}"} for i in range(count)])
    page.wait_for_selector(f".tail-line:has-text('bulk {count - 1:04d}')", timeout=20_000)
    wait_live(page)
    shown = messages(page)
    # The oldest rows went, as in a terminal's scrollback: "first" and bulk 0000..0099.
    assert shown == [f"bulk {i:04d}" for i in range(100, count)]
    status = page.locator(".tail-status").text_content() or ""
    assert status.startswith(f"Live · {count + 1:,} events (last {MAX_LINES:,} shown)"), status
    shoot(page, "tail-02-scrollback")


def test_live_tail_waits_out_a_busy_server_and_a_lost_connection(
    page: Any, api: httpx.Client, shoot: Any
) -> None:
    group = "tail-outage"
    ingest(api, group, [{"timestamp": now_ms(), "message": "first"}])
    open_tail(page, group)
    page.wait_for_selector(".tail-line:has-text('first')")
    wait_live(page)

    def polls(url: str) -> bool:
        return "order=ingest" in url and "start=" not in url

    def busy(route: Any) -> None:
        route.fulfill(
            status=503,
            headers={"Retry-After": "1", "Content-Type": "application/json"},
            body='{"error": {"code": "ServiceUnavailableException", '
            '"message": "replaying the write-ahead log", "details": {}}}',
        )

    page.route(polls, busy)
    page.wait_for_selector(".tail-status.error:has-text('Server busy (HTTP 503')")
    assert "replaying the write-ahead log" in (page.text_content(".tail-status") or "")
    ingest(api, group, [{"timestamp": now_ms(), "message": "while busy"}])
    ingest(api, group, [{"timestamp": now_ms() - 30 * DAY_MS, "message": "old, while busy"}])
    shoot(page, "tail-03-busy")
    page.unroute(polls, busy)
    page.wait_for_selector(".tail-line:has-text('old, while busy')")
    wait_live(page)
    page.wait_for_selector(".toast:has-text('answers again')")

    page.route(polls, lambda route: route.abort("connectionfailed"))
    page.wait_for_selector(".tail-status.error:has-text('Connection lost')")
    ingest(api, group, [{"timestamp": now_ms(), "message": "while disconnected"}])
    page.unroute(polls)
    page.wait_for_selector(".tail-line:has-text('while disconnected')")
    wait_live(page)

    # Pause keeps the cursor: Resume shows what arrived meanwhile, once.
    page.click(".tail-buttons button:has-text('Pause')")
    ingest(api, group, [{"timestamp": now_ms(), "message": "while paused"}])
    time.sleep(POLL_S + 0.5)
    assert "while paused" not in messages(page)
    page.click(".tail-buttons button:has-text('Resume')")
    page.wait_for_selector(".tail-line:has-text('while paused')")
    time.sleep(POLL_S + 0.5)
    assert messages(page) == [
        "first",
        "while busy",
        "old, while busy",
        "while disconnected",
        "while paused",
    ]
