"""Fixtures for the console: a real server with the web router, seeded through the real ingest
API, and (for the browser tests) Debian's headless Chromium driven by Playwright."""

from __future__ import annotations

import json
import math
import shutil
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.conftest import ADMIN_KEY, RunningServer, make_settings

CHROMIUM = Path("/usr/bin/chromium")
# The flags known to work for Debian's Chromium here (env notes, "headless Chromium").
CHROMIUM_FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
SCREENSHOTS = Path("/tmp/watchkeep-screenshots")

# The seed: GROUP holds EVENTS events, one every STEP_MS back from about now, sent as
# BATCHES PutLogEvents calls (enough audit records to page through).
GROUP = "app"
OTHER_GROUP = "payments"
EVENTS = 300
STEP_MS = 10_000
BATCHES = 30
LEVELS = ("info", "warn", "error")
STATUSES = (200, 200, 404, 500)


def seed_event(i: int, now_ms: int) -> dict[str, Any]:
    return {
        "timestamp": now_ms - i * STEP_MS,
        "level": LEVELS[i % 3],
        "msg": f"request {i}",
        "status": STATUSES[i % 4],
        "latency_ms": 10 + (i * 37) % 290,
        "req": {"path": f"/api/items/{i % 7}", "method": "GET"},
    }


@pytest.fixture(scope="module")
def console_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningServer]:
    settings = make_settings(tmp_path_factory.mktemp("console") / "data")
    running = RunningServer(settings)
    running.start()
    running.seeded_at_ms = _seed(running.url)  # type: ignore[attr-defined]
    yield running
    running.stop()


def _seed(url: str) -> int:
    """Ingest the seed; returns the ``now_ms`` its timestamps count back from."""
    now_ms = int(time.time() * 1000)
    headers = {"Authorization": f"Bearer {ADMIN_KEY}", "Content-Type": "application/x-ndjson"}
    per_batch = EVENTS // BATCHES
    with httpx.Client(base_url=url, headers=headers, timeout=30) as client:
        for batch in range(BATCHES):
            lines = [
                json.dumps(seed_event(i, now_ms))
                for i in range(batch * per_batch, (batch + 1) * per_batch)
            ]
            response = client.post(
                "/api/v1/logs/events",
                params={"group": GROUP, "stream": f"web-{batch % 3}"},
                content="\n".join(lines),
            )
            assert response.status_code == 200, response.text
        response = client.post(
            "/api/v1/logs/events",
            params={"group": OTHER_GROUP, "stream": "worker"},
            content="charge accepted id=1\ncharge refused id=2\n",
            headers={"Content-Type": "text/plain"},
        )
        assert response.status_code == 200, response.text
    return now_ms


# The metrics seed (Metrics explorer and Alarms pages): one datum a minute for METRIC_MINUTES
# minutes back from about now. The web group's CPU is high for its last HOT_MINUTES minutes,
# so that web-high-cpu (> 80 for 3 of 5) goes to ALARM at its first evaluation.
METRIC_MINUTES = 180
HOT_MINUTES = 6
CPU = ("Shop/EC2", "CPUUtilization")
RULES_YAML = """\
alarms:
  - name: web-high-cpu
    description: Average CPU of the web group above 80 % in 3 of the last 5 minutes
    labels: {team: web, severity: page}
    metric: {namespace: Shop/EC2, name: CPUUtilization, dimensions: {AutoScalingGroupName: web}, unit: Percent}
    statistic: Average
    period: 60s
    evaluation_periods: 5
    datapoints_to_alarm: 3
    comparison: ">"
    threshold: 80
  - name: web-low-cpu
    metric: {namespace: Shop/EC2, name: CPUUtilization, dimensions: {AutoScalingGroupName: web}}
    statistic: Average
    period: 5m
    evaluation_periods: 3
    comparison: "<"
    threshold: 20
    treat_missing_data: notBreaching
  - name: checkout-latency-p99
    metric: {namespace: Shop/API, name: Latency, dimensions: {Service: checkout}, unit: Milliseconds}
    statistic: p99
    period: 60s
    evaluation_periods: 3
    comparison: ">="
    threshold: 900
  - name: checkout-load
    description: Checkout requests per second (metric math)
    query:
      - {id: requests, metric: {namespace: Shop/API, name: Requests, dimensions: {Service: checkout}}, statistic: Sum, period: 60s}
      - {id: per_second, expression: "requests / 60", label: Requests per second, return: true}
    evaluation_periods: 3
    comparison: ">"
    threshold: 1
composites:
  - name: web-degraded
    description: CPU or latency in trouble
    rule: ALARM(web-high-cpu) OR ALARM("checkout-latency-p99")
"""


def web_cpu(i: int) -> float:
    """The web group's CPU ``i`` minutes back: a slow wave around 45, then HOT_MINUTES hot."""
    return 92.0 + i if i < HOT_MINUTES else round(45 + 15 * math.sin(i / 12), 3)


@pytest.fixture(scope="module")
def metrics_console_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningServer]:
    """A server whose rules directory holds RULES_YAML, seeded with metrics (``seed_metrics``)."""
    data_dir = tmp_path_factory.mktemp("metrics-console") / "data"
    rules_dir = data_dir / "rules"
    rules_dir.mkdir(parents=True)
    (rules_dir / "console.yaml").write_text(RULES_YAML, encoding="utf-8")
    running = RunningServer(make_settings(data_dir, rules_dir=rules_dir))
    running.start()
    running.seeded_at_ms = seed_metrics(running.url)  # type: ignore[attr-defined]
    yield running
    running.stop()


def seed_metrics(url: str) -> int:
    """PutMetricData of the metrics seed; returns the minute its datums count back from."""
    # The seed must be stored before the next minute's alarm tick reads it (that tick, and
    # only it, sees the HOT_MINUTES hot minutes as its last five): start early in a minute.
    into_minute = time.time() % 60
    if into_minute > 30:
        time.sleep(60 - into_minute + 0.5)
    minute_ms = int(time.time() // 60 * 60_000)
    datums: dict[str, list[dict[str, Any]]] = {"Shop/EC2": [], "Shop/API": []}
    for i in range(METRIC_MINUTES):
        ts = minute_ms - i * 60_000 + 1_000
        for group, value in (("web", web_cpu(i)), ("batch", round(20 + 5 * math.cos(i / 9), 3))):
            datums["Shop/EC2"].append(
                {
                    "metric_name": "CPUUtilization",
                    "dimensions": {"AutoScalingGroupName": group},
                    "timestamp": ts,
                    "value": value,
                    "unit": "Percent",
                }
            )
        datums["Shop/API"].append(
            {
                "metric_name": "Latency",
                "dimensions": {"Service": "checkout"},
                "timestamp": ts,
                "values": [80 + i % 40, 120, 200 + (i * 7) % 150],
                "counts": [20, 10, 1],
                "unit": "Milliseconds",
            }
        )
        datums["Shop/API"].append(
            {
                "metric_name": "Requests",
                "dimensions": {"Service": "checkout"},
                "timestamp": ts,
                "value": 31 + i % 5,
                "unit": "Count",
            }
        )
    headers = {"Authorization": f"Bearer {ADMIN_KEY}"}
    with httpx.Client(base_url=url, headers=headers, timeout=30) as client:
        for namespace, metric_data in datums.items():
            response = client.post(
                "/api/v1/metrics/data", json={"namespace": namespace, "metric_data": metric_data}
            )
            assert response.status_code == 200, response.text
            assert not response.json().get("rejected"), response.text
    return minute_ms


@pytest.fixture
def api(console_server: RunningServer) -> Iterator[httpx.Client]:
    with httpx.Client(
        base_url=console_server.url,
        headers={"Authorization": f"Bearer {ADMIN_KEY}"},
        timeout=30,
    ) as client:
        yield client


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    if not CHROMIUM.exists():
        pytest.skip(f"{CHROMIUM} is missing: apt-get install chromium (see .ci/run)")
    sync_api = pytest.importorskip(
        "playwright.sync_api", reason="the playwright package is missing: pip install playwright"
    )
    with sync_api.sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_FLAGS)
        yield launched
        launched.close()


@pytest.hookimpl(wrapper=True, tryfirst=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Any:
    report = yield
    if report.when == "call":
        item.stash[_FAILED] = report.failed
    return report


_FAILED = pytest.StashKey[bool]()


@pytest.fixture
def page(
    browser: Any, console_server: RunningServer, request: pytest.FixtureRequest, shoot: Any
) -> Iterator[Any]:
    """A fresh browser context (empty sessionStorage) whose page must raise no JS error; a
    failed test leaves a screenshot named after it."""
    context = browser.new_context(
        base_url=console_server.url,
        viewport={"width": 1400, "height": 900},
        accept_downloads=True,
    )
    context.set_default_timeout(15_000)
    tab = context.new_page()
    errors: list[str] = []
    tab.on("pageerror", lambda error: errors.append(str(error)))
    # API answers of 4xx are expected (a bad key, a syntax error); Chromium logs each of them.
    tab.on(
        "console",
        lambda m: (
            errors.append(m.text)
            if m.type == "error" and not m.text.startswith("Failed to load resource")
            else None
        ),
    )
    yield tab
    if request.node.stash.get(_FAILED, False):
        shoot(tab, f"failed-{request.node.name}", full_page=True)
    context.close()
    assert errors == [], f"the page reported errors: {errors}"


@pytest.fixture
def shoot(tmp_path: Path) -> Any:
    """Save a screenshot in the test's tmp dir and in /tmp/watchkeep-screenshots/."""

    def save(tab: Any, name: str, *, full_page: bool = False) -> Path:
        path = tmp_path / f"{name}.png"
        tab.screenshot(path=str(path), full_page=full_page)
        SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        shutil.copy(path, SCREENSHOTS / path.name)
        return path

    return save
