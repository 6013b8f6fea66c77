"""The console in a real browser (Debian's Chromium, driven by Playwright) against a real server
seeded through the ingest API: sign in, run queries and read the table, see the charts drawn,
see a syntax error placed in the editor, save and reload a query, tail a group, and page through
the audit trail. Each test saves screenshots (see ``shoot`` in conftest.py)."""

from __future__ import annotations

import csv
import io
import json
import time
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.conftest import ADMIN_KEY
from tests.web.conftest import EVENTS, GROUP, STATUSES, seed_event

pytestmark = pytest.mark.timeout(180)


def sign_in(page: Any, key: str = ADMIN_KEY) -> None:
    page.goto("/")
    page.fill("input[name=access-key]", key)
    page.click("form.signin-card button[type=submit]")
    page.wait_for_selector(".topbar .who-name")


def pick_group(page: Any, name: str) -> None:
    page.click(".group-picker .picker-button")
    page.locator(".picker-list li", has_text=name).locator("input").check()
    page.keyboard.press("Escape")


def type_query(page: Any, text: str) -> None:
    editor = page.locator("textarea.editor-input")
    editor.fill(text)


def run_query(page: Any, text: str, *, range_label: str = "1d", expect: str = "complete") -> None:
    type_query(page, text)
    page.click(f".segmented [data-range='{range_label}']")
    page.locator("textarea.editor-input").press("Control+Enter")
    page.wait_for_selector(f".query-status.{expect}")


def table_rows(page: Any) -> list[dict[str, str]]:
    """The results table as dicts by column name."""
    rows: list[dict[str, str]] = page.evaluate(
        """() => {
          const heads = [...document.querySelectorAll('table.results thead th')].map(th => th.textContent);
          return [...document.querySelectorAll('table.results tr.result-row')].map(tr =>
            Object.fromEntries([...tr.children].map((td, i) => [heads[i], td.textContent])));
        }"""
    )
    return rows


def canvas_pixels(page: Any, selector: str, rgb: tuple[int, int, int]) -> int:
    """How many pixels of the canvases under ``selector`` have (about) the colour ``rgb``."""
    count: int = page.evaluate(
        """([selector, rgb]) => {
          let n = 0;
          for (const canvas of document.querySelectorAll(selector + ' canvas')) {
            const data = canvas.getContext('2d').getImageData(0, 0, canvas.width, canvas.height).data;
            for (let i = 0; i < data.length; i += 4) {
              if (data[i + 3] > 100 && Math.abs(data[i] - rgb[0]) < 40 && Math.abs(data[i + 1] - rgb[1]) < 40 && Math.abs(data[i + 2] - rgb[2]) < 40) n++;
            }
          }
          return n;
        }""",
        [selector, list(rgb)],
    )
    return count


SERIES_BLUE = (0x25, 0x63, 0xEB)  # PALETTE[0] in web/static/js/charts.js


def audit_events(api: httpx.Client, **params: Any) -> list[dict[str, Any]]:
    response = api.get("/api/v1/audit/events", params={"max_results": 50, **params})
    assert response.status_code == 200, response.text
    return [json.loads(e["cloudtrail_event"]) for e in response.json()["events"]]


def test_sign_in_is_checked_and_recorded(page: Any, api: httpx.Client, shoot: Any) -> None:
    page.goto("/")
    shoot(page, "01-sign-in")
    key_id = ADMIN_KEY.split(":")[0]
    page.fill("input[name=access-key]", f"{key_id}:wks_{'x' * 40}")
    page.click("form.signin-card button[type=submit]")
    page.wait_for_selector(".form-error:has-text('not valid')")
    assert page.evaluate("sessionStorage.getItem('watchkeep.key')") is None

    sign_in(page)
    assert page.text_content(".who-name") == "root"
    assert page.evaluate("sessionStorage.getItem('watchkeep.key')") == ADMIN_KEY
    records = audit_events(api, lookup_key="EventName", lookup_value="ConsoleLogin")
    assert {r["eventSource"] for r in records} == {"signin.watchkeep"}
    outcomes = {r.get("errorCode") for r in records}
    assert None in outcomes and "InvalidSignatureException" in outcomes
    assert any(r["userIdentity"]["type"] == "Root" and "errorCode" not in r for r in records)

    page.click("button:has-text('Sign out')")
    page.wait_for_selector("form.signin-card")
    assert page.evaluate("sessionStorage.getItem('watchkeep.key')") is None


def test_query_rows_histogram_details_and_export(page: Any, shoot: Any) -> None:
    sign_in(page)
    pick_group(page, GROUP)
    query = (
        "fields @timestamp, level, status, latency_ms\n"
        "| filter status = 500\n"
        "| sort @timestamp desc\n"
        "| limit 20"
    )
    run_query(page, query)
    rows = table_rows(page)
    assert len(rows) == 20
    assert {row["status"] for row in rows} == {"500"}
    now_ms = int(time.time() * 1000)
    expected = [seed_event(i, now_ms) for i in range(EVENTS) if STATUSES[i % 4] == 500][:20]
    assert [row["level"] for row in rows] == [e["level"] for e in expected]
    assert [row["latency_ms"] for row in rows] == [str(e["latency_ms"]) for e in expected]
    timestamps = [row["@timestamp"] for row in rows]
    assert timestamps == sorted(timestamps, reverse=True)

    # The histogram counts what the filter matched, by bin.
    page.wait_for_selector(".histogram canvas")
    note = page.text_content(".histogram-note") or ""
    assert note.startswith(f"{EVENTS // 4} matching events"), note
    assert canvas_pixels(page, ".histogram", SERIES_BLUE) > 50

    # A row opens on click, with every field and the message's own fields.
    run_query(page, "fields @timestamp, @message | sort @timestamp desc | limit 5")
    page.click("tr.result-row >> nth=0")
    detail = page.locator("tr.row-detail")
    detail.wait_for()
    assert "Fields in @message" in (detail.text_content() or "")
    assert detail.locator("table.kv th", has_text="req.path").count() == 1
    pretty = detail.locator(".detail-message pre").text_content() or ""
    assert json.loads(pretty)["msg"] == "request 0"
    shoot(page, "02-insights-logs", full_page=True)

    with page.expect_download() as download_info:
        page.click(".export button:has-text('CSV')")
    text = Path(download_info.value.path()).read_text(encoding="utf-8")
    parsed = list(csv.DictReader(io.StringIO(text)))
    assert len(parsed) == 5 and json.loads(parsed[0]["@message"])["msg"] == "request 0"
    with page.expect_download() as download_info:
        page.click(".export button:has-text('JSON')")
    exported = json.loads(Path(download_info.value.path()).read_text(encoding="utf-8"))
    assert [json.loads(r["@message"])["msg"] for r in exported][:2] == ["request 0", "request 1"]


def test_stats_by_bin_draws_a_chart(page: Any, shoot: Any) -> None:
    sign_in(page)
    pick_group(page, GROUP)
    run_query(page, "stats count(*) as requests, avg(latency_ms) as latency by bin(10m)")
    page.wait_for_selector(".viz-pane:not([hidden]) .viz-chart canvas")
    assert page.get_attribute(".tab:has-text('Visualization')", "aria-selected") == "true"
    legend = page.locator(".viz-chart .u-legend").text_content() or ""
    assert "requests" in legend and "latency" in legend
    shoot(page, "03-insights-chart-line")
    assert canvas_pixels(page, ".viz-chart", SERIES_BLUE) > 100
    page.select_option("select[aria-label='Chart type']", "bar")
    page.wait_for_selector(".viz-chart canvas")
    assert canvas_pixels(page, ".viz-chart", SERIES_BLUE) > 100
    shoot(page, "04-insights-chart-bar")
    # The rows are there too, and add up to every seeded event.
    page.click(".tab:has-text('Logs')")
    assert sum(int(row["requests"]) for row in table_rows(page)) == EVENTS


@pytest.mark.parametrize(
    ("query", "line", "column", "marked"),
    [
        ("fields @message\n| filter level = \n| limit 3", 3, 1, "|"),
        ("fields @message\n| stats cout(*)", 2, 9, "cout(*)"),
        # Offsets count code points; the editor counts UTF-16 units (😀 is two).
        (
            'fields @message, `é😀`\n| filter `ü` = "😀😀"\n  | sort @timestamp desc\n| limt 5',
            4,
            3,
            "limt",
        ),
    ],
    ids=["missing-operand", "unknown-function", "unknown-command-after-astral-characters"],
)
def test_syntax_error_is_marked_in_the_editor(
    page: Any, shoot: Any, query: str, line: int, column: int, marked: str
) -> None:
    sign_in(page)
    pick_group(page, GROUP)
    run_query(page, query, expect="error")
    mark = page.locator(".editor-highlight mark.err-mark")
    mark.wait_for()
    assert (mark.get_attribute("data-line"), mark.get_attribute("data-column")) == (
        str(line),
        str(column),
    )
    assert mark.text_content() == marked
    assert page.locator(".ln.line-error").get_attribute("data-n") == str(line)
    message = page.text_content(".editor-message") or ""
    assert f"line {line}, column {column}" in message.lower(), message
    # The marker sits over the text typed at that line and column (monospace cells).
    geometry = page.evaluate(
        """() => {
          const mark = document.querySelector('mark.err-mark').getBoundingClientRect();
          const line = document.querySelector('.ln.line-error');
          const probe = document.createElement('span');
          probe.textContent = 'x'.repeat(10);
          line.append(probe);
          const cell = probe.getBoundingClientRect().width / 10;
          probe.remove();
          const text = document.querySelector('textarea.editor-input').getBoundingClientRect();
          return {left: mark.left - line.getBoundingClientRect().left, cell, top: mark.top - text.top};
        }"""
    )
    assert abs(geometry["left"] - (column - 1) * geometry["cell"]) < 2, geometry
    if column == 1 and line == 3:
        shoot(page, "05-insights-syntax-error")
    # Typing clears the marker.
    page.locator("textarea.editor-input").press("End")
    page.keyboard.type(" ")
    assert page.locator("mark.err-mark").count() == 0


def test_save_reload_and_recent_queries(page: Any, shoot: Any) -> None:
    sign_in(page)
    pick_group(page, GROUP)
    saved_query = "stats count(*) by level"
    run_query(page, saved_query)
    page.click("button:has-text('Save')")
    page.fill("dialog.modal input", "by level")
    page.click("dialog.modal button:has-text('Save')")
    page.wait_for_selector(".saved-queries .side-title:has-text('by level')")
    type_query(page, "fields @message")
    page.click(".saved-queries .side-item:has-text('by level')")
    assert page.input_value("textarea.editor-input") == saved_query
    page.wait_for_selector(f".recent-queries .side-query:has-text('{saved_query}')")
    # The histogram queries the console runs for itself stay out of the list.
    assert page.locator(".recent-queries .side-query", has_text="watchkeep console").count() == 0
    shoot(page, "06-insights-saved")


def test_live_tail_shows_new_events(page: Any, api: httpx.Client, shoot: Any) -> None:
    sign_in(page)
    page.goto("/#/tail")
    pick_group(page, GROUP)
    page.wait_for_selector(".tail-line")
    backlog = page.locator(".tail-line").count()
    assert backlog == 50
    assert "request 0" in (page.locator(".tail-line").last.text_content() or "")
    marker = f"tail marker {time.time_ns()}"
    response = api.post(
        "/api/v1/logs/events",
        params={"group": GROUP, "stream": "tail-test"},
        json=[{"message": marker}],
    )
    assert response.status_code == 200, response.text
    page.wait_for_selector(f".tail-line:has-text('{marker}')", timeout=10_000)
    time.sleep(2.5)  # one more poll: the event is not shown twice
    assert page.locator(".tail-line", has_text=marker).count() == 1
    shoot(page, "07-live-tail")


def test_audit_trail_pages_and_opens_records(page: Any, shoot: Any) -> None:
    sign_in(page)
    page.goto("/#/audit")
    page.select_option("select[aria-label='Lookup attribute']", "EventName")
    page.fill("input[aria-label='Lookup value']", "PutLogEvents")
    page.select_option("select[aria-label='Events per page']", "25")
    page.click("button:has-text('Look up')")
    page.wait_for_selector(".page-label:has-text('Page 1')")
    # The page opened with an unfiltered lookup of 25 rows too: wait for the filtered one.
    page.wait_for_function(
        """() => {
            const names = [...document.querySelectorAll('td.event-name')].map(c => c.textContent);
            return names.length === 25 && names.every(n => n === 'PutLogEvents');
        }"""
    )
    first_page = page.eval_on_selector_all(
        "tr.audit-row", "rows => rows.map(r => r.dataset.eventId)"
    )
    assert set(page.eval_on_selector_all("td.event-name", "c => c.map(x => x.textContent)")) == {
        "PutLogEvents"
    }
    shoot(page, "08-audit-trail")

    page.click("button[aria-label='Next page']")
    page.wait_for_selector(".page-label:has-text('Page 2')")
    second_page = page.eval_on_selector_all(
        "tr.audit-row", "rows => rows.map(r => r.dataset.eventId)"
    )
    assert len(second_page) >= 6  # 31+ PutLogEvents: 30 batches of the seed, and one more
    assert not set(first_page) & set(second_page)
    page.click("button[aria-label='Previous page']")
    page.wait_for_selector(".page-label:has-text('Page 1')")
    assert (
        page.eval_on_selector_all("tr.audit-row", "rows => rows.map(r => r.dataset.eventId)")
        == first_page
    )

    page.click("tr.audit-row >> nth=0")
    record = json.loads(page.text_content("dialog.record pre.json") or "")
    assert record["eventID"] == first_page[0]
    assert record["eventName"] == "PutLogEvents" and record["eventVersion"] == "1.08"
    assert page.locator("dialog.record .j-key").count() > 10
    shoot(page, "09-audit-record")
    page.keyboard.press("Escape")
    page.wait_for_selector("dialog.record", state="detached")  # removed on the close event
    assert page.locator("dialog.record").count() == 0


def test_narrow_screen(page: Any, shoot: Any) -> None:
    page.set_viewport_size({"width": 420, "height": 900})
    sign_in(page)
    pick_group(page, GROUP)
    run_query(page, "fields @timestamp, @message | sort @timestamp desc | limit 10")
    page.wait_for_selector(".histogram canvas")
    custom = page.locator(".segmented [data-range='custom']").bounding_box()
    panel = page.locator(".query-panel").bounding_box()
    assert custom["x"] + custom["width"] <= panel["x"] + panel["width"], "the time range overflows"
    width = page.evaluate("document.documentElement.scrollWidth")
    assert width <= 420, f"the page scrolls sideways ({width}px)"
    shoot(page, "10-insights-narrow", full_page=True)


def test_running_query_shows_status_and_cancels(page: Any, api: httpx.Client, shoot: Any) -> None:
    """Queries here finish in milliseconds, so GetQueryResults is held at "Running" in the
    browser until Cancel has sent its (real, audited) StopQuery."""
    stopped: list[str] = []

    def hold(route: Any) -> None:
        if route.request.method == "DELETE":
            stopped.append(route.request.url.rsplit("/", 1)[1])
            route.continue_()
            return
        status = "Cancelled" if stopped else "Running"
        route.fulfill(json={"status": status, "results": [], "statistics": {}})

    sign_in(page)
    pick_group(page, GROUP)
    page.route("**/api/v1/queries/*", hold)
    type_query(page, "fields @message | limit 5")
    page.click("button:has-text('Run query')")
    page.wait_for_selector(".query-status.running:has-text('Running')")
    assert page.is_disabled("button:has-text('Running…')")
    shoot(page, "11-insights-running")
    page.click("button:has-text('Cancel')")
    page.wait_for_selector(".query-status.cancelled:has-text('Cancelled')")
    assert page.is_hidden("button:has-text('Cancel')")
    assert stopped, "no StopQuery was sent"
    records = audit_events(api, lookup_key="EventName", lookup_value="StopQuery")
    assert stopped[0] in {r["requestParameters"]["query_id"] for r in records}


def test_editor_highlights_and_completes(page: Any, shoot: Any) -> None:
    sign_in(page)
    type_query(
        page,
        "fields @timestamp, level # the level\n| filter level like /err/ and status >= 500\n"
        "| stats count(*) as n, pct(latency_ms, 99) by bin(5m)",
    )
    kinds = page.evaluate(
        """() => Object.fromEntries([...document.querySelectorAll('.editor-highlight span[class^=tok-]')]
             .filter(s => s.textContent.trim()).map(s => [s.textContent, s.className]))"""
    )
    assert kinds["fields"] == kinds["filter"] == kinds["stats"] == "tok-command"
    assert kinds["@timestamp"] == "tok-system-field"
    assert kinds["like"] == kinds["and"] == kinds["by"] == "tok-keyword"
    assert kinds["count"] == kinds["pct"] == "tok-aggregate"
    assert kinds["bin"] == "tok-function"
    assert kinds["/err/"] == "tok-regex"
    assert kinds["5m"] == "tok-period"
    assert kinds["# the level"] == "tok-comment"

    editor = page.locator("textarea.editor-input")
    editor.press("Control+End")
    page.keyboard.type("\n| so")
    page.wait_for_selector(".completions li.active:has-text('sort')")
    shoot(page, "12-insights-completion")
    page.keyboard.press("Tab")
    page.keyboard.type("n desc")
    assert editor.input_value().endswith("\n| sort n desc")
    page.keyboard.type(" | limit 3 | filter isV")
    page.wait_for_selector(".completions li:has-text('isValidIp')")
    page.keyboard.press("Escape")
    assert page.is_hidden(".completions")


def test_absolute_time_range(page: Any, console_server: Any) -> None:
    """A custom range in UTC: from 95 s before the newest seeded event to 5 s after it holds
    events 0 to 9 (one every 10 s)."""
    seeded_s = console_server.seeded_at_ms // 1000

    def as_input(seconds: int) -> str:
        return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(seconds))

    sign_in(page)
    pick_group(page, GROUP)
    type_query(page, "filter ispresent(status) | stats count(*) as n")
    page.click(".segmented [data-range='custom']")
    page.fill("input[aria-label='Start (UTC)']", as_input(seeded_s - 95))
    page.fill("input[aria-label='End (UTC)']", as_input(seeded_s + 5))
    page.click(".custom-range button:has-text('Apply')")
    page.locator("textarea.editor-input").press("Control+Enter")
    page.wait_for_selector(".query-status.complete")
    assert table_rows(page)[0]["n"] == "10"
    assert "UTC" in (page.text_content(".result-summary") or "")
