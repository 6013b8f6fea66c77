"""``watchkeep metrics list|get`` against a real server seeded through PutMetricData.

Expected numbers are worked out in plain Python from the values the test sends.
"""

from __future__ import annotations

import csv
import io
import json
import math
import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from typer.testing import CliRunner

from server.cli_metrics import metrics_app, render_chart
from tests.conftest import ADMIN_KEY, RunningServer, make_settings

NOW_MS = int(time.time() * 1000)
BASE_MS = NOW_MS - NOW_MS % 3_600_000 - 2 * 3_600_000  # an hour boundary, 2-3 hours ago
BASE_S = BASE_MS // 1000
MIN = 60_000
# Latency{Host=a}: minute m gets the values m*10 + 1 .. m*10 + 5 (5 values per minute) for 5
# minutes, one datum per value, 10 s apart; Host=b and a second name make the listing richer.
SAMPLES = {m: [float(m * 10 + j) for j in range(1, 6)] for m in range(5)}


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningServer]:
    settings = make_settings(tmp_path_factory.mktemp("metrics-cli") / "data", audit_lookup_rate=0)
    running = RunningServer(settings).start()
    with httpx.Client(
        base_url=running.url, headers={"Authorization": f"Bearer {ADMIN_KEY}"}, timeout=30
    ) as http:
        data: list[dict[str, Any]] = [
            {
                "metric_name": "Latency",
                "dimensions": {"Host": "a"},
                "timestamp": BASE_MS + m * MIN + j * 10_000,
                "value": v,
                "unit": "Milliseconds",
                "storage_resolution": 1,
            }
            for m, values in SAMPLES.items()
            for j, v in enumerate(values)
        ]
        data += [
            {
                "metric_name": "Latency",
                "dimensions": {"Host": "b"},
                "timestamp": BASE_MS,
                "value": 1,
            },
            {
                "metric_name": "Errors",
                "dimensions": {"Host": "a"},
                "timestamp": BASE_MS,
                "value": 2,
            },
        ]
        for namespace, rows in (("Cli/App", data), ("Cli/Other", data[-1:])):
            response = http.post(
                "/api/v1/metrics/data", json={"namespace": namespace, "metric_data": rows}
            )
            assert response.status_code == 200, response.text
            assert response.json()["rejected"] == []
    yield running
    running.stop()


def run(server: RunningServer, *args: str, columns: int = 100) -> Any:
    return CliRunner().invoke(
        metrics_app,
        [*args, "--server", server.url, "--key", ADMIN_KEY],
        env={"COLUMNS": str(columns)},
    )


def nearest_rank(samples: list[float], q: float) -> float:
    ordered = sorted(samples)
    return ordered[max(1, math.ceil(q * len(ordered))) - 1]


def iso(ts_ms: int) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(ts_ms / 1000))


GET = [
    "get",
    "--namespace",
    "Cli/App",
    "--name",
    "Latency",
    "--dimension",
    "Host=a",
    "--start",
    str(BASE_S),
    "--end",
    str(BASE_S + 300),
]


def test_list_filters_and_json(server: RunningServer) -> None:
    result = run(server, "list", "--namespace", "Cli/App", "--json")
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout) == [
        {"namespace": "Cli/App", "metric_name": "Errors", "dimensions": {"Host": "a"}},
        {"namespace": "Cli/App", "metric_name": "Latency", "dimensions": {"Host": "a"}},
        {"namespace": "Cli/App", "metric_name": "Latency", "dimensions": {"Host": "b"}},
    ]
    result = run(server, "list", "--name", "Latency", "--dimension", "Host=b", "--json")
    assert json.loads(result.stdout) == [
        {"namespace": "Cli/App", "metric_name": "Latency", "dimensions": {"Host": "b"}}
    ]
    result = run(server, "list", "--name", "Errors")
    assert result.exit_code == 0, result.output
    assert "Cli/App" in result.stdout and "Cli/Other" in result.stdout
    assert "Host=a" in result.stdout and "2 metrics" in result.stderr


def test_get_json_simple_and_extended_merged(server: RunningServer) -> None:
    result = run(
        server, *GET, "--statistic", "Average", "-s", "Maximum", "-s", "p90", "--format", "json"
    )
    assert result.exit_code == 0, result.output
    answer = json.loads(result.stdout)
    assert answer["label"] == "Latency"
    assert answer["datapoints"] == [
        {
            "timestamp": BASE_MS + m * MIN,
            "average": sum(values) / len(values),
            "maximum": max(values),
            "extended_statistics": {"p90": nearest_rank(values, 0.9)},
            "unit": "Milliseconds",
        }
        for m, values in SAMPLES.items()
    ]


def test_get_csv_with_a_larger_period(server: RunningServer) -> None:
    result = run(
        server, *GET, "--period", "120", "-s", "Sum", "-s", "SampleCount", "--format", "csv"
    )
    assert result.exit_code == 0, result.output
    rows = list(csv.reader(io.StringIO(result.stdout)))
    assert rows[0] == ["timestamp", "Sum", "SampleCount", "unit"]
    expected = []
    for bucket in range(3):  # 120 s buckets: minutes 0-1, 2-3, 4
        values = [v for m, vs in SAMPLES.items() if m // 2 == bucket for v in vs]
        expected.append(
            [iso(BASE_MS + bucket * 2 * MIN), sum(values), float(len(values)), "Milliseconds"]
        )
    assert [[r[0], float(r[1]), float(r[2]), r[3]] for r in rows[1:]] == expected


def test_get_table(server: RunningServer) -> None:
    result = run(server, *GET, "-s", "Minimum", columns=120)
    assert result.exit_code == 0, result.output
    for m, values in SAMPLES.items():
        line = next(line for line in result.stdout.splitlines() if iso(BASE_MS + m * MIN) in line)
        assert f"{min(values):g}" in line and "Milliseconds" in line
    assert "5 datapoints" in result.stderr


def test_get_chart_bars_scale_to_the_terminal(server: RunningServer) -> None:
    result = run(server, *GET, "-s", "Maximum", "--format", "chart", columns=80)
    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    assert lines[0].startswith("Latency Maximum")
    rows = lines[1:]
    assert len(rows) == len(SAMPLES)
    assert all(len(line) <= 80 for line in lines)
    bars = []
    for (m, values), line in zip(SAMPLES.items(), rows, strict=True):
        assert line.startswith(iso(BASE_MS + m * MIN))
        assert line.rstrip().endswith(f"{max(values):g}")
        bars.append(sum(1 for ch in line if ch in "█▏▎▍▌▋▊▉"))
    # Bars grow with the value (0 to the largest): the last is the longest.
    assert bars == sorted(bars) and bars[-1] > bars[0]


def test_render_chart_proportions_and_missing_values() -> None:
    lines = render_chart("M p99", [0, 60_000, 120_000], [10.0, None, 5.0], width=60)
    assert lines[0].startswith("M p99")
    full, missing, half = lines[1:]
    assert full.count("█") == 2 * half.count("█") or abs(full.count("█") - 2 * half.count("█")) <= 1
    assert "█" not in missing and missing.rstrip().endswith("-")
    assert render_chart("M", [], [], width=60) == ["M: no datapoints"]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["-s", "Average", "--period", "7"], "period must be 1, 5, 10, 20, 30 or a multiple of 60"),
        (["-s", "p999x"], "unknown statistic"),
        (["-s", "Average", "--unit", "Parsecs"], "is not a unit"),
    ],
    ids=["bad-period", "bad-statistic", "bad-unit"],
)
def test_get_server_errors(server: RunningServer, args: list[str], message: str) -> None:
    result = run(server, *GET, *args)
    assert result.exit_code == 1
    assert result.stderr.startswith("error: ") and message in result.stderr


def test_get_usage_errors(server: RunningServer) -> None:
    result = run(server, "get", "--namespace", "N", "--name", "M", "-s", "Sum")
    assert result.exit_code == 2  # neither --since nor --start
    result = run(server, *GET, "-s", "Sum", "--dimension", "novalue")
    assert result.exit_code == 2
