"""The Metrics explorer in a real browser against a real server seeded through PutMetricData
(``metrics_console_server`` in conftest.py): browse namespaces, metrics and dimension sets, graph
series with a statistic and period, and see the thresholds of the alarms of the rule files."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from tests.web.conftest import METRIC_MINUTES
from tests.web.test_console import SERIES_BLUE, canvas_pixels, sign_in

pytestmark = pytest.mark.timeout(180)

SERIES_ORANGE = (0xD9, 0x77, 0x06)  # PALETTE[1] in web/static/js/charts.js
ALARM_RED = (0xDC, 0x26, 0x26)  # STATE_COLORS.ALARM in web/static/js/metric_chart.js
OK_GREEN = (0x05, 0x96, 0x69)


@pytest.fixture(scope="module")
def console_server(metrics_console_server: Any) -> Any:
    return metrics_console_server


def open_metric(page: Any, namespace: str, metric: str) -> None:
    page.goto("/#/metrics")
    page.click(f".browse-item[data-kind=namespace][data-name='{namespace}']")
    page.click(f".browse-item[data-kind=metric][data-name='{metric}']")


def pick_series(page: Any, dimensions: str) -> None:
    page.locator(f".series-item[data-dimensions='{dimensions}'] input").check()


def legend(page: Any) -> list[str]:
    labels: list[str] = page.eval_on_selector_all(
        ".metric-chart .u-legend .u-series:not(:first-child) .u-label",
        "els => els.map(e => e.textContent)",
    )
    return labels


def wait_graphed(page: Any, series: int) -> str:
    """Wait for a graph of ``series`` lines; the status line under the controls."""
    page.wait_for_function(
        "n => document.querySelectorAll('.metric-chart .u-legend .u-series').length === n + 1"
        " && document.querySelector('.graph-status.complete')",
        arg=series,
    )
    return page.text_content(".graph-status") or ""


def longest_row(page: Any, rgb: tuple[int, int, int]) -> int:
    """The most pixels of about colour ``rgb`` in one row of the graph's canvas."""
    count: int = page.evaluate(
        """(rgb) => {
          const canvas = document.querySelector('.metric-chart canvas');
          const {data, width, height} = canvas.getContext('2d').getImageData(0, 0, canvas.width, canvas.height);
          let best = 0;
          for (let y = 0; y < height; y++) {
            let n = 0;
            for (let x = 0; x < width; x++) {
              const i = (y * width + x) * 4;
              if (Math.abs(data[i] - rgb[0]) < 30 && Math.abs(data[i + 1] - rgb[1]) < 30 && Math.abs(data[i + 2] - rgb[2]) < 30) n++;
            }
            best = Math.max(best, n);
          }
          return best;
        }""",
        list(rgb),
    )
    return count


def plot_width(page: Any) -> int:
    """The width of the plotting area in canvas pixels."""
    width: int = page.evaluate(
        "() => document.querySelector('.metric-chart .u-over').clientWidth * devicePixelRatio"
    )
    return width


def test_browse_and_graph_two_series(page: Any, shoot: Any) -> None:
    sign_in(page)
    page.goto("/#/metrics")
    page.wait_for_selector(".browse-item[data-kind=namespace]")
    namespaces = page.eval_on_selector_all(
        ".browse-item[data-kind=namespace]", "els => els.map(e => e.dataset.name)"
    )
    assert namespaces == ["Shop/API", "Shop/EC2"]
    assert "2 metrics" in (page.text_content(".browse-item[data-name='Shop/API']") or "")
    assert page.text_content(".graph-empty")

    page.click(".browse-item[data-kind=namespace][data-name='Shop/EC2']")
    page.click(".browse-item[data-kind=metric][data-name='CPUUtilization']")
    assert page.text_content(".crumb.current") == "CPUUtilization"
    sets = page.eval_on_selector_all(".series-item", "els => els.map(e => e.dataset.dimensions)")
    assert sets == ["AutoScalingGroupName=batch", "AutoScalingGroupName=web"]

    pick_series(page, "AutoScalingGroupName=web")
    status = wait_graphed(page, 1)
    assert status.startswith("Average per 1m over the last 3h"), status
    assert legend(page) == ["CPUUtilization {AutoScalingGroupName=web} Average"]
    assert page.get_attribute(".metric-chart", "data-units") == "Percent"
    assert page.text_content(".series-table td.unit") == "Percent"
    assert canvas_pixels(page, ".metric-chart-box", SERIES_BLUE) > 200

    pick_series(page, "AutoScalingGroupName=batch")
    status = wait_graphed(page, 2)
    points = int(status.split(": ")[1].split(" ")[0])
    assert 2 * (METRIC_MINUTES - 2) <= points <= 2 * (METRIC_MINUTES + 1), status
    assert legend(page)[1] == "CPUUtilization {AutoScalingGroupName=batch} Average"
    assert canvas_pixels(page, ".metric-chart-box", SERIES_ORANGE) > 200
    assert page.locator(".series-table tbody tr").count() == 2
    shoot(page, "20-metrics-two-series", full_page=True)

    # The selection survives a reload; Remove takes a series out.
    page.reload()
    wait_graphed(page, 2)
    page.click(".series-table button[aria-label='Remove CPUUtilization'] >> nth=1")
    wait_graphed(page, 1)
    assert legend(page) == ["CPUUtilization {AutoScalingGroupName=web} Average"]


def test_statistic_period_and_percentile(page: Any, shoot: Any) -> None:
    sign_in(page)
    open_metric(page, "Shop/API", "Latency")
    pick_series(page, "Service=checkout")
    wait_graphed(page, 1)
    page.select_option("select[aria-label=Period]", "300")
    page.select_option("select[aria-label=Statistic]", "Maximum")
    status = wait_graphed(page, 1)
    assert status.startswith("Maximum per 5m"), status
    points = int(status.split(": ")[1].split(" ")[0])
    assert METRIC_MINUTES // 5 - 1 <= points <= METRIC_MINUTES // 5 + 1, status
    # The largest value of a 5-minute bucket is one of the seed's (200 + 7i mod 150 < 350).
    assert page.get_attribute(".metric-chart", "data-units") == "Milliseconds"

    page.select_option("select[aria-label=Statistic]", "custom")
    page.fill("input[aria-label=Percentile]", "p97.5")
    page.locator("input[aria-label=Percentile]").press("Enter")
    page.wait_for_function(
        "() => document.querySelector('.graph-status.complete')?.textContent.startsWith('p97.5')"
    )
    assert legend(page) == ["Latency {Service=checkout} p97.5"]
    assert canvas_pixels(page, ".metric-chart-box", SERIES_BLUE) > 100

    page.fill("input[aria-label=Percentile]", "p101")
    page.locator("input[aria-label=Percentile]").press("Enter")
    page.wait_for_selector(".graph-status.error:has-text('p0 to p100')")
    shoot(page, "21-metrics-percentile")


def test_no_thresholds_without_the_alarms_api(page: Any) -> None:
    """A server without /api/v1/alarms (404) graphs as usual and draws no threshold."""
    page.route(
        "**/api/v1/alarms*",
        lambda route: route.fulfill(
            status=404, json={"error": {"code": "NotFound", "message": "Not Found"}}
        ),
    )
    sign_in(page)
    open_metric(page, "Shop/EC2", "CPUUtilization")
    pick_series(page, "AutoScalingGroupName=web")
    status = wait_graphed(page, 1)
    assert "alarms unavailable" in status
    assert page.locator(".threshold-item").count() == 0
    assert canvas_pixels(page, ".metric-chart-box", ALARM_RED) < 20


def test_alarm_thresholds_on_the_graph(page: Any, api: httpx.Client, shoot: Any) -> None:
    # Force the states so that the colours are known whatever the evaluation has done so far.
    for name, state in (("web-high-cpu", "ALARM"), ("web-low-cpu", "OK")):
        response = api.post(
            f"/api/v1/alarms/{name}/state", json={"state": state, "reason": "console test"}
        )
        assert response.status_code == 200, response.text
    sign_in(page)
    open_metric(page, "Shop/EC2", "CPUUtilization")
    pick_series(page, "AutoScalingGroupName=web")
    wait_graphed(page, 1)
    items = page.eval_on_selector_all(
        ".threshold-item", "els => els.map(e => [e.dataset.alarm, e.dataset.state])"
    )
    assert sorted(items) == [["web-high-cpu", "ALARM"], ["web-low-cpu", "OK"]]
    assert "> 80" in (page.text_content(".threshold-item[data-alarm='web-high-cpu']") or "")
    # Dashed lines across the plot: a red one (ALARM) and a green one (OK), plus their labels.
    assert canvas_pixels(page, ".metric-chart-box", ALARM_RED) > 300
    assert canvas_pixels(page, ".metric-chart-box", OK_GREEN) > 300
    # The red one is horizontal: one pixel row holds a dashed line across the plot.
    assert longest_row(page, ALARM_RED) > 0.4 * plot_width(page)
    # The other group's series has no alarm: no threshold when only it is graphed.
    page.locator(".series-item[data-dimensions='AutoScalingGroupName=web'] input").uncheck()
    pick_series(page, "AutoScalingGroupName=batch")
    wait_graphed(page, 1)
    assert page.locator(".threshold-item").count() == 0
    page.locator(".series-item[data-dimensions='AutoScalingGroupName=web'] input").check()
    wait_graphed(page, 2)
    shoot(page, "22-metrics-thresholds", full_page=True)
    page.click(".threshold-item[data-alarm='web-high-cpu'] a")
    page.wait_for_selector(".alarm-head h1:has-text('web-high-cpu')")
