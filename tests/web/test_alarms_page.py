"""The Alarms page in a real browser against a real server whose rules directory holds the
alarms of ``RULES_YAML`` and whose metrics were seeded through PutMetricData
(``metrics_console_server`` in conftest.py): the list with states and filters, one alarm with its
graph, threshold, deciding datapoints and history, Set state, the actions switch, a composite."""

from __future__ import annotations

import json
import time
from typing import Any

import httpx
import pytest

from tests.conftest import ADMIN_KEY
from tests.web.conftest import HOT_MINUTES, web_cpu
from tests.web.test_console import SERIES_BLUE, audit_events, canvas_pixels, sign_in
from tests.web.test_metrics_page import ALARM_RED, OK_GREEN, longest_row, plot_width

pytestmark = pytest.mark.timeout(240)

EVALUATION_WAIT_S = 100  # the first evaluation of a 1-minute alarm comes within a minute


@pytest.fixture(scope="module")
def console_server(metrics_console_server: Any) -> Any:
    return metrics_console_server


@pytest.fixture(scope="module")
def evaluated(console_server: Any) -> dict[str, dict[str, Any]]:
    """The alarms once the scheduler has evaluated web-high-cpu (into ALARM: its last minutes
    are hot)."""
    headers = {"Authorization": f"Bearer {ADMIN_KEY}"}
    with httpx.Client(base_url=console_server.url, headers=headers, timeout=30) as client:
        deadline = time.monotonic() + EVALUATION_WAIT_S
        while True:
            alarms = {a["name"]: a for a in client.get("/api/v1/alarms").json()["alarms"]}
            if alarms["web-high-cpu"]["state"]["value"] == "ALARM":
                return alarms
            assert time.monotonic() < deadline, alarms["web-high-cpu"]["state"]
            time.sleep(2)


def rows(page: Any) -> dict[str, str]:
    """The alarm list as name -> state."""
    listed: list[list[str]] = page.eval_on_selector_all(
        "tr.alarm-row", "rows => rows.map(r => [r.dataset.name, r.dataset.state])"
    )
    return dict((name, state) for name, state in listed)


def away_from_a_tick() -> None:
    """Wait until a minute's evaluation is not about to run, so that a state forced by hand is
    still there when the page reads it back."""
    second = time.time() % 60
    if second > 52:
        time.sleep(62 - second)


def test_list_states_and_filters(page: Any, evaluated: Any, shoot: Any) -> None:
    sign_in(page)
    page.click(".nav-link:has-text('Alarms')")
    page.wait_for_selector("tr.alarm-row")
    listed = rows(page)
    assert list(listed) == [
        "checkout-latency-p99",
        "checkout-load",
        "web-degraded",
        "web-high-cpu",
        "web-low-cpu",
    ]
    assert listed["web-high-cpu"] == "ALARM" and listed["web-degraded"] == "ALARM"
    high = page.locator("tr.alarm-row[data-name='web-high-cpu']")
    assert high.locator(".badge.state.alarm").text_content() == "ALARM"
    assert "Threshold Crossed" in (high.locator("td.reason").text_content() or "")
    assert high.locator("td", has_text="Metric").count() >= 1
    assert "Metric math" in (
        page.locator("tr.alarm-row[data-name='checkout-load']").text_content() or ""
    )
    assert "Composite" in (
        page.locator("tr.alarm-row[data-name='web-degraded']").text_content() or ""
    )
    assert page.text_content(".state-filter [data-state=ALARM] .count") == "2"
    shoot(page, "30-alarms-list", full_page=True)

    page.click(".state-filter [data-state=ALARM]")
    assert list(rows(page)) == ["web-degraded", "web-high-cpu"]
    page.click(".state-filter [data-state=all]")
    page.fill("input[aria-label='Name prefix']", "web-")
    page.click(".alarm-buttons button:has-text('Search')")
    page.wait_for_function("() => document.querySelectorAll('tr.alarm-row').length === 3")
    page.select_option("select[aria-label=Kind]", "composite")
    page.wait_for_function("() => document.querySelectorAll('tr.alarm-row').length === 1")
    assert list(rows(page)) == ["web-degraded"]
    # The filters are kept for the next visit.
    page.reload()
    page.wait_for_selector("tr.alarm-row[data-name='web-degraded']")
    assert page.input_value("input[aria-label='Name prefix']") == "web-"


def test_detail_graph_deciding_datapoints_and_history(
    page: Any, evaluated: Any, shoot: Any
) -> None:
    sign_in(page)
    page.goto("/#/alarms")
    page.click("tr.alarm-row[data-name='web-high-cpu'] a")
    page.wait_for_selector(".alarm-head h1:has-text('web-high-cpu')")
    assert page.text_content(".alarm-head .badge.state") == "ALARM"
    assert (page.text_content(".state-reason") or "").startswith("Threshold Crossed: ")
    config = page.text_content(".config-panel") or ""
    assert "> 80 for 3 of 5 datapoints" in config and "AutoScalingGroupName=web" in config

    # The graph: the metric over the last 3 h, the threshold in the state's colour, and the
    # datapoints the evaluation used, listed newest first with their verdict.
    page.wait_for_selector(".alarm-graph .metric-chart canvas")
    page.wait_for_selector(".evaluated-row")
    assert canvas_pixels(page, ".alarm-graph", SERIES_BLUE) > 200
    assert longest_row(page, ALARM_RED) > 0.4 * plot_width(page)
    decided = page.eval_on_selector_all(
        ".evaluated-row", "rows => rows.map(r => [r.children[1].textContent, r.dataset.kind])"
    )
    assert len(decided) == 5, decided
    assert all(kind == "breaching" for _, kind in decided), decided
    values = [float(text.split()[0]) for text, _ in decided]
    assert set(values) <= {web_cpu(i) for i in range(HOT_MINUTES)}, values
    assert values == sorted(values), "newest first: the seed's CPU rises going back"
    shoot(page, "31-alarm-detail", full_page=True)

    # The evaluation range: the ringed buckets are shaded in red (breaching).
    page.select_option("select[aria-label='Graph range']", "0")
    page.wait_for_function(
        "() => document.querySelector('.alarm-graph .graph-status').textContent.includes('ringed')"
        " && /^1\\d datapoints/.test(document.querySelector('.alarm-graph .graph-status').textContent)"
    )
    assert canvas_pixels(page, ".alarm-graph", ALARM_RED) > 1000
    shoot(page, "32-alarm-evaluation-range")

    # History, newest first: the evaluation's StateUpdate, then the creation.
    page.wait_for_selector(".history-row")
    history = page.eval_on_selector_all(
        ".history-row", "rows => rows.map(r => [r.dataset.type, r.children[2].textContent])"
    )
    assert history[0] == ["StateUpdate", "Alarm updated from INSUFFICIENT_DATA to ALARM"]
    assert history[-1] == ["ConfigurationUpdate", 'Alarm "web-high-cpu" created']
    page.click(".history-row >> nth=0")
    data = json.loads(page.text_content(".history-detail:not([hidden]) pre") or "")
    assert data["newState"]["stateValue"] == "ALARM"
    page.select_option("select[aria-label='History type']", "ConfigurationUpdate")
    page.wait_for_function(
        "() => [...document.querySelectorAll('.history-row')].every(r => r.dataset.type === 'ConfigurationUpdate')"
    )

    # "Open in Metrics" graphs the same series in the explorer, with the alarm's threshold.
    page.click(".detail-buttons button:has-text('Open in Metrics')")
    page.wait_for_selector(".threshold-item[data-alarm='web-high-cpu']")
    status = page.text_content(".graph-status.complete") or ""
    assert status.startswith("Average per 1m"), status
    assert page.input_value("select[aria-label=Period]") == "60"


def test_set_state_and_actions(page: Any, api: httpx.Client, evaluated: Any, shoot: Any) -> None:
    sign_in(page)
    page.goto("/#/alarms/web-low-cpu")
    page.wait_for_selector(".alarm-head .badge.state")
    before = page.text_content(".alarm-head .badge.state")
    assert before == evaluated["web-low-cpu"]["state"]["value"] == "OK"
    assert page.input_value("select[aria-label='New state']") == "ALARM"
    page.fill("input[aria-label=Reason]", "console test: page the on-call")
    away_from_a_tick()
    page.click(".set-state button[type=submit]")
    page.wait_for_selector(".toast:has-text('web-low-cpu set to ALARM')")
    page.wait_for_selector(".alarm-head .badge.state.alarm")
    assert page.text_content(".state-reason") == "console test: page the on-call"
    page.wait_for_selector(".evaluated:has-text('set by hand')")  # no deciding datapoints
    page.wait_for_selector(".history-row[data-type=StateUpdate]")
    top = page.locator(".history-row").first.text_content() or ""
    assert "Alarm updated from OK to ALARM" in top
    shoot(page, "33-alarm-set-state", full_page=True)
    records = audit_events(api, lookup_key="EventName", lookup_value="SetAlarmState")
    assert any(r["requestParameters"].get("name") == "web-low-cpu" for r in records), records

    page.click(".detail-buttons button:has-text('Disable actions')")
    page.wait_for_selector(".detail-buttons button:has-text('Enable actions')")
    assert api.get("/api/v1/alarms/web-low-cpu").json()["actions_enabled"] is False
    assert "disabled" in (page.text_content(".state-panel") or "")
    page.click(".detail-buttons button:has-text('Enable actions')")
    page.wait_for_selector(".detail-buttons button:has-text('Disable actions')")
    assert api.get("/api/v1/alarms/web-low-cpu").json()["actions_enabled"] is True


def test_composite_shows_rule_and_children(page: Any, evaluated: Any, shoot: Any) -> None:
    sign_in(page)
    page.goto("/#/alarms/web-degraded")
    page.wait_for_selector(".composite-panel")
    assert page.text_content("pre.rule") == 'ALARM(web-high-cpu) OR ALARM("checkout-latency-p99")'
    page.wait_for_function(
        "() => [...document.querySelectorAll('.child-row td:nth-child(3)')].every(td => td.querySelector('.badge'))"
    )
    children = page.eval_on_selector_all(
        ".child-row",
        "rows => rows.map(r => [r.dataset.name, ...[...r.querySelectorAll('.badge')].map(b => b.textContent)])",
    )
    assert [c[0] for c in children] == ["web-high-cpu", "checkout-latency-p99"]
    assert children[0][1:] == ["ALARM", "ALARM"]
    assert page.locator(".alarm-graph").count() == 0
    shoot(page, "34-alarm-composite", full_page=True)
    # A child opens its own page.
    page.click(".child-row a:has-text('web-high-cpu')")
    page.wait_for_selector(".alarm-head h1:has-text('web-high-cpu')")


def test_math_alarm_graphs_its_expression(page: Any, evaluated: Any, shoot: Any) -> None:
    """checkout-load watches requests / 60: 31 to 35 requests a minute, about 0.55 a second."""
    sign_in(page)
    page.goto("/#/alarms/checkout-load")
    page.wait_for_selector(".alarm-graph .metric-chart canvas")
    page.wait_for_selector(".alarm-graph .graph-status:has-text('datapoints of 1m')")
    assert "per_second = requests / 60" in (page.text_content(".config-panel") or "")
    assert page.locator(".alarm-graph .u-legend .u-label", has_text="Requests per second").count()
    value = page.text_content(".alarm-graph .u-legend .u-series:nth-child(2) .u-value") or ""
    assert 0.5 <= float(value) <= 0.6, value
    assert canvas_pixels(page, ".alarm-graph", SERIES_BLUE) > 200
    color = {"OK": OK_GREEN, "ALARM": ALARM_RED}.get(evaluated["checkout-load"]["state"]["value"])
    if color is not None:  # the threshold line at 1, in the colour of the state
        assert longest_row(page, color) > 0.4 * plot_width(page)
    shoot(page, "36-alarm-math", full_page=True)


def test_unknown_alarm(page: Any, evaluated: Any) -> None:
    sign_in(page)
    page.goto("/#/alarms/" + "no%20such%20alarm")
    page.wait_for_selector("text=There is no alarm named “no such alarm”.")


def test_narrow_screen(page: Any, evaluated: Any, shoot: Any) -> None:
    page.set_viewport_size({"width": 420, "height": 900})
    sign_in(page)
    for path, ready in (
        ("/#/alarms", "tr.alarm-row"),
        ("/#/alarms/web-high-cpu", ".alarm-graph .metric-chart canvas"),
        ("/#/metrics", ".browse-item[data-kind=namespace]"),
    ):
        page.goto(path)
        page.wait_for_selector(ready)
        width = page.evaluate("document.documentElement.scrollWidth")
        assert width <= 420, f"{path} scrolls sideways ({width}px)"
    shoot(page, "35-metrics-narrow", full_page=True)
